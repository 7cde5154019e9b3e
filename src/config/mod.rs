//! Configuration: how settings are written and where secrets come from.
//!
//! - [`value`] reads the values people write in flags: durations, sizes, address prefixes;
//! - [`secret`] reads and creates secret files (the admin token, signing keys), which only
//!   their owner may read.
//!
//! DESIGN.md's TOML file (`herald serve --config`) will be read here too, merged with flags and
//! `HERALD_*` variables into one validated configuration; until then `herald serve` takes its
//! settings from flags, which `src/main.rs` turns into [`crate::serve::ServeConfig`].

pub mod secret;
pub mod value;
