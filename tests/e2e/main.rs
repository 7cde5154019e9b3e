//! End-to-end tests: the real `herald` binary on port 0, driven over HTTP and DNS.
//!
//! One test binary (hickory's layout) so everything compiles once. Tests that need a Debian tool
//! are `#[ignore = "needs <tool>"]`; `.ci/run` installs the tools and runs them too.

mod abuse;
mod api;
mod backup;
mod client;
mod config;
mod cookies;
mod crash;
mod deploy;
mod dig;
mod disk;
mod dns;
mod dnssec;
mod durability;
mod flood;
mod guide;
mod harness;
mod hook;
mod import;
mod keyroll;
mod keyroll_nodes;
mod keyroll_peers;
mod lifecycle;
mod metrics;
mod openapi;
mod pdns;
mod reload;
mod report;
mod rollout;
mod secondary;
mod secrets;
mod tls;
mod ui;
mod update;
