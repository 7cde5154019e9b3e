//! Configuration: how settings are written and where secrets come from.
//!
//! - [`value`] reads the values people write in flags: durations, sizes, address prefixes;
//! - [`secret`] reads and creates secret files (the admin token, signing keys), which only
//!   their owner may read;
//! - [`file`] reads the TOML configuration file (`herald serve --config`), checking every value
//!   as it reads, so errors name the line and the key.
//!
//! Merging the file with flags and `HERALD_*` variables into the server's configuration, and
//! building the DNS and signing values from it, is `crate::serve::settings`'s job: this part
//! knows only plain values.

pub mod file;
pub mod secret;
pub mod value;
