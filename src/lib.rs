//! Herald: an authoritative DNS server that tells a fleet which configuration commit each node
//! should run, through one (DNSSEC-signed) TXT record per node.
//!
//! An operator publishes "node `n1` runs commit `3f2a…`" through the admin API; Herald stores it
//! durably in SQLite and serves `n1.<zone> TXT` as `v=herald1 commit=<hex> seq=<n> ts=<unix>`.
//! `../shared/DESIGN.md` of the project is the contract: record format, DNS behaviour, API, CLI.
//!
//! # Layout
//!
//! Data flows one way: API → store (durable) → zone snapshot (prepared answers) → DNS answers.
//! The DNS path never touches SQLite and never signs.
//!
//! - [`record`]: the TXT payload, node labels and commit ids — pure validation and rendering;
//! - [`store`]: SQLite, migrations, nodes and history; every write one fsynced transaction;
//! - [`zone`]: zone files, the immutable snapshot of prepared RRsets, and the publisher that
//!   applies committed changes to it;
//! - [`dns`]: sockets and the lean query path (UDP loop, TCP framing) over prepared answers;
//! - [`api`]: the axum admin API, its auth and errors, and the `herald publish` client;
//! - [`client`]: the node side: query, validate against the trust anchor, state, watch loop;
//! - [`serve`]: wiring for `herald serve`: start-up, sockets, shutdown.
//!
//! `src/main.rs` only parses the command line and calls into these.

pub mod api;
pub mod client;
pub mod config;
pub mod dns;
pub mod dnssec;
pub mod publish;
pub mod record;
pub mod serve;
pub mod store;
pub mod zone;
