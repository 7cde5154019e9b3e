//! DNSSEC for Herald's zones (RFC 4033–4035): keys, the signing policy, the signer, the
//! denial chain's records, and the signed working zone with its refresh.
//!
//! - [`keys`]: combined signing keys, each in a mode-0600 file of the data directory;
//! - [`roll`]: the steps of a key rollover and the [`KeySet`](roll::KeySet) each step signs with;
//! - [`policy`]: per-zone settings (algorithm, NSEC or NSEC3, lifetimes, node TTL);
//! - [`sign`]: RRSIGs with back-dated inception, jittered expiration and a content digest;
//! - [`nsec`]: NSEC and NSEC3 RDATA, neighbours in the chain, hashed owner labels;
//! - [`signed`]: [`SignedZone`], the writer's working copy of a zone: it signs only what a
//!   change touched, builds the zone at start reusing prior signatures, and refreshes
//!   signatures before they expire, a bounded number per step.
//!
//! Everything here takes plain values in (zone files, [`NodeRecord`](crate::record::NodeRecord)s,
//! prior signatures) and gives plain values back (the [`ZoneSnapshot`](crate::zone::ZoneSnapshot)
//! it keeps, the [`NewSignature`]s it made). It never touches SQLite: `crate::publish` joins it
//! with the store. The DNS path never imports it: it reads the prepared snapshot only.

pub mod keys;
pub mod nsec;
pub mod policy;
pub mod roll;
pub mod sign;
pub mod signed;
#[cfg(test)]
pub mod testing;

use std::path::PathBuf;

use thiserror::Error;

use crate::record::RecordError;
use crate::zone::ZoneError;
pub use keys::{KeyError, ZoneKey};
pub use policy::ZonePolicy;
pub use signed::{Builder, NewSignature, PriorNode, PriorSignature, PriorSignatures, SignedZone};

/// Why a zone could not be signed or kept signed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DnssecError {
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A signed RRset could not be prepared in wire format.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error("cannot encode a DNSSEC record")]
    Encode(#[from] hickory_proto::ProtoError),
    /// A node's record read back from the zone is not a Herald record.
    #[error("a node record read back from the zone")]
    Record(#[from] RecordError),
    #[error(
        "{}: stored nodes {nodes} have the names of records in the zone file; rename those \
         records, or start with the old file and delete the nodes first",
        path.display()
    )]
    Collision { path: PathBuf, nodes: String },
    #[error("a signing thread panicked")]
    SigningThread,
    /// The working zone lacks something its own construction guarantees: a bug.
    #[error("the signed zone is inconsistent: {0}")]
    Inconsistent(String),
}
