//! Zones as the DNS path reads them: the zone files, and the immutable snapshot of prepared
//! answers that every query is answered from.
//!
//! - [`file`](mod@file) loads and checks `zones/<zone>.zone`;
//! - [`snapshot`] holds the prepared RRsets of every name of a zone at one serial, and the set
//!   of served zones that the writer swaps in atomically ([`SharedZones`]);
//! - [`wire`] prepares RRsets in wire format, once, when their data changes;
//! - [`entry`] packs everything at one name into one block, [`names`] indexes those blocks:
//!   sharded, copy-on-write, one hash probe per lookup;
//! - [`chain`] is the NSEC/NSEC3 chain the snapshot holds, kept in canonical order ([`canon`])
//!   in a persistent sorted map ([`sorted`]);
//! - [`journal`] is the in-memory part of the IXFR journal: each serial change's difference.
//!
//! Everything here is data and lookups. What fills a snapshot with signed records is
//! [`crate::dnssec`]; what decides when is the writer in [`crate::publish`]. Nothing here
//! touches SQLite or key material.

pub mod canon;
pub mod chain;
pub mod entry;
pub mod file;
pub mod journal;
pub mod names;
pub mod order;
pub mod snapshot;
pub mod sorted;
pub mod wire;

use std::path::PathBuf;

use hickory_proto::rr::RecordType;
use thiserror::Error;

pub use file::StaticZone;
pub use snapshot::{SharedZones, ZoneSet, ZoneSnapshot};

/// Errors of loading zone files and preparing their answers.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ZoneError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("no zone files (*.zone) in {0}")]
    NoZones(PathBuf),
    #[error("cannot parse {path}")]
    Parse {
        path: PathBuf,
        #[source]
        cause: hickory_proto::serialize::txt::ParseError,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("{path}: the file name is not <zone>.zone with a valid zone name")]
    FileName {
        path: PathBuf,
        #[source]
        cause: Option<crate::record::RecordError>,
    },
    #[error("cannot encode a record")]
    Encode(#[from] hickory_proto::ProtoError),
    /// A record or RRset longer than a DNS message can carry.
    #[error("{0} record or RRset too large")]
    TooLarge(RecordType),
    #[error("a name longer than 255 octets")]
    NameTooLong,
    #[error("more names in an RRset than compression can point to")]
    TooManyNames,
    /// RFC 4034 §3: an RRSIG's TTL is the TTL of the RRset it covers.
    #[error("the RRSIGs of a {0} RRset have a TTL other than the RRset's")]
    SigTtl(RecordType),
}
