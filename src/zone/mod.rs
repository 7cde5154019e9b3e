//! Zones: the zone files, the in-memory snapshot DNS answers from, and the publisher that keeps
//! the snapshot in step with the store.
//!
//! - [`file`] loads and checks `zones/<zone>.zone`;
//! - [`wire`] prepares RRsets in wire format, once, when their data changes;
//! - [`snapshot`] holds the prepared RRsets of every name of a zone at one serial;
//! - [`entry`] packs everything at one name into one block, [`names`] indexes those blocks:
//!   sharded, copy-on-write, one hash probe per lookup;
//! - [`journal`] records each serial change for IXFR;
//! - [`publish`] runs the write path: store, then snapshot, then the caller's answer.
//!
//! DNSSEC signing (issue 3) belongs here too: the signer runs in the publisher, at update time,
//! never on the query path.

pub mod canon;
pub mod chain;
pub mod entry;
pub mod file;
pub mod journal;
pub mod keys;
pub mod names;
pub mod policy;
pub mod publish;
pub mod sign;
pub mod signed;
pub mod snapshot;
pub mod sorted;
#[cfg(test)]
pub mod testing;
pub mod wire;

use std::path::PathBuf;

use thiserror::Error;

pub use file::StaticZone;
pub use publish::{PublishError, Publisher, SharedZones};
pub use snapshot::{ZoneSet, ZoneSnapshot};

/// Default TTL of node TXT records (DESIGN.md, "The record").
pub const DEFAULT_NODE_TTL: u32 = 60;

/// Errors of loading zones and preparing their answers.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ZoneError {
    #[error("cannot read {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("no zone files (*.zone) in {0}")]
    NoZones(PathBuf),
    #[error("cannot parse {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("cannot encode a record: {0}")]
    Encode(String),
    #[error("store: {0}")]
    Store(String),
    #[error("signing key: {0}")]
    Key(#[from] keys::KeyError),
}
