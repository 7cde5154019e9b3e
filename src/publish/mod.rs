//! The single writer: every change to a zone enters here, and only here are the store and the
//! signing code joined.
//!
//! Changes come from the admin API (`PUT`, `DELETE`, batch), RFC 2136 UPDATE, the PowerDNS
//! routes and rollout waves ([`rollout`], the driver); all of them call [`Publisher::apply`]. One
//! thread (`writer.rs`) owns the writing SQLite connection and the signed working copy of every
//! zone ([`SignedZone`](crate::dnssec::SignedZone)). A publish goes like this:
//!
//! 1. **Queue.** The caller sends its [`Change`] to the thread and waits. The thread takes the
//!    change and every other one waiting, up to 512 (group commit: one transaction and one
//!    fsync for all of them). It refuses at once what the store need not see: a zone it does
//!    not serve, a node named like a record of the zone file.
//! 2. **Store.** It opens one SQLite transaction and applies each change in its own savepoint
//!    ([`store::Writer::apply`]): preconditions (`If-Match`) are checked inside it, the node row
//!    and a history row are written, the zone's serial moves on. A refused change is rolled
//!    back alone and answered with its [`Refusal`]; the rest of the group goes on.
//! 3. **Sign.** For each applied change the zone's working copy, staged for this group, signs
//!    the published nodes' TXT RRsets and marks the chain links that changed
//!    ([`SignedZone::apply`](crate::dnssec::SignedZone::apply)); once per zone and group it signs
//!    those links and the SOA ([`SignedZone::finish`](crate::dnssec::SignedZone::finish)).
//!    Nothing else is signed.
//! 4. **Persist.** The signatures made go into the same transaction (`keep`), so a restart
//!    reuses them; so does the IXFR journal entry, the difference between the snapshot served
//!    and the one staged ([`crate::zone::journal`]), trimmed to its limits.
//! 5. **Commit.** One fsync. If anything failed, the whole transaction rolls back, the staged
//!    copies are dropped, and every change of the group gets [`PublishError::Failed`]: nothing
//!    is half-applied, in SQLite or in memory.
//! 6. **Swap.** The staged snapshots become the served ones: a new
//!    [`ZoneSet`](crate::zone::ZoneSet) is swapped into [`SharedZones`](crate::zone::SharedZones),
//!    which the DNS path reads without locks, and NOTIFY is woken.
//! 7. **Answer.** Only now is each caller answered.
//!
//! So a 2xx means durable (fsynced), signed, and visible: the first DNS query after it gets the
//! new record. Between groups, at least every [`REFRESH_EVERY`], the same thread runs a refresh
//! step per zone ([`SignedZone::refresh`](crate::dnssec::SignedZone::refresh)) through steps 3–6,
//! so re-signing interleaves with publishes and never blocks queries, which read the last
//! swapped-in snapshot.
//!
//! [`start`] builds the working zones from the store at start, reusing every stored signature
//! that still fits, and starts the thread.

mod keyroll;
pub mod reports;
pub mod rollout;
mod start;
mod writer;

use std::sync::Arc;
use std::sync::mpsc;

use thiserror::Error;
use tokio::sync::{oneshot, watch};

use crate::dnssec::{DnssecError, KeyError, NewSignature};
use crate::metrics::{Outcome, PublishStats, Source};
use crate::store::{self, Applied};
use crate::zone::ZoneError;
use std::collections::HashMap;

use crate::dnssec::policy::ZonePolicy;
use crate::zone::file::StaticZone;

pub use crate::store::{Change, Condition, Expect, IfMatch, Refusal, StorageFault};
pub use keyroll::{RollRefusal, RollRequest};
pub use start::{Setup, start};
pub use writer::REFRESH_EVERY;

/// Why a change was not applied.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error("zone {0} is not served")]
    UnknownZone(String),
    #[error("node {0} collides with a name of the zone file")]
    StaticName(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The group's transaction failed and was rolled back: nothing of it was written. Every
    /// change of the group shares the one failure.
    #[error("the write failed; nothing was written")]
    Failed(#[source] Arc<WriteError>),
    #[error("the publisher has stopped")]
    Stopped,
    /// A reload could not open a zone; what was served stays.
    #[error("cannot reload the zones")]
    Reload(#[source] Arc<StartError>),
    #[error(transparent)]
    Roll(#[from] RollRefusal),
}

/// What a reload changed, by zone name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub changed: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// What made a group's write fail.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("the store failed")]
    Store(#[from] store::Error),
    #[error("signing failed")]
    Sign(#[from] DnssecError),
}

impl WriteError {
    /// The disk fault behind the failure, if it was one.
    pub fn fault(&self) -> Option<StorageFault> {
        match self {
            Self::Store(e) => e.fault(),
            Self::Sign(_) => None,
        }
    }
}

/// Why the writer could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("--dnssec names {0}, which no zone file serves")]
    UnknownPolicyZone(String),
    #[error("the signing key of zone {zone}")]
    Key {
        zone: String,
        #[source]
        source: KeyError,
    },
    #[error("zone {zone}")]
    Zone {
        zone: String,
        #[source]
        source: WriteError,
    },
    #[error("cannot start the writer thread")]
    Thread(#[source] std::io::Error),
}

impl From<ZoneError> for WriteError {
    fn from(e: ZoneError) -> Self {
        Self::Sign(e.into())
    }
}

struct Job {
    zone: String,
    change: Change,
    reply: oneshot::Sender<Result<Applied, PublishError>>,
}

enum Msg {
    Change(Job),
    /// The zone files as read again (SIGHUP): zones whose file changed are rebuilt, new ones
    /// opened, missing ones dropped; the answer lists what changed.
    Reload(
        Vec<StaticZone>,
        HashMap<String, ZonePolicy>,
        oneshot::Sender<Result<Reloaded, PublishError>>,
    ),
    /// Start a key rollover, or hurry one (see `keyroll.rs`); the answer is the zone's keys.
    KeyRoll(
        String,
        RollRequest,
        oneshot::Sender<Result<crate::zone::snapshot::KeysView, PublishError>>,
    ),
    /// The parent's DS names the new key, served with this TTL (see `keyroll.rs`).
    DsSeen(
        String,
        u32,
        oneshot::Sender<Result<crate::zone::snapshot::KeysView, PublishError>>,
    ),
    /// Finish what came before, then stop; later changes get [`PublishError::Stopped`].
    Stop,
}

/// A handle to send changes to the writer thread. Cloning is cheap; the thread stops after
/// [`Publisher::stop`] or when the last handle is dropped, in both cases after finishing what it
/// was given.
#[derive(Clone)]
pub struct Publisher {
    jobs: mpsc::Sender<Msg>,
    changes: watch::Receiver<()>,
    stats: Arc<PublishStats>,
}

impl Publisher {
    /// Applies `change` to `zone` and returns once it is durable, signed and served. A batch
    /// is counted as the batch API's, anything else as the native API's.
    pub async fn apply(&self, zone: &str, change: Change) -> Result<Applied, PublishError> {
        let source = match change {
            Change::Batch { .. } => Source::Batch,
            _ => Source::Api,
        };
        self.apply_as(zone, change, source).await
    }

    /// [`Publisher::apply`], counted for `source` in the metrics.
    pub async fn apply_as(
        &self,
        zone: &str,
        change: Change,
        source: Source,
    ) -> Result<Applied, PublishError> {
        let started = std::time::Instant::now();
        let result = self.send(zone, change).await;
        let outcome = match &result {
            Ok(_) => Outcome::Applied,
            Err(PublishError::Failed(_) | PublishError::Stopped) => Outcome::Failed,
            Err(_) => Outcome::Refused,
        };
        self.stats
            .record(source, outcome, started.elapsed().as_micros() as u64);
        result
    }

    async fn send(&self, zone: &str, change: Change) -> Result<Applied, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::Change(Job {
                zone: zone.to_owned(),
                change,
                reply,
            }))
            .map_err(|_| PublishError::Stopped)?;
        answer.await.map_err(|_| PublishError::Stopped)?
    }

    /// The write path's counters, for `/metrics`.
    pub fn stats(&self) -> &Arc<PublishStats> {
        &self.stats
    }

    /// Serves `zones`, the zone files read again: a zone whose file changed is rebuilt from
    /// the store and the new file (its serial moves on), a new zone is opened (and gets a
    /// key), a zone whose file is gone is no longer served. Queries go on meanwhile, from the
    /// snapshot served until the new one is swapped in.
    /// `policies` gives new zones their signing settings; zones served keep theirs.
    pub async fn reload(
        &self,
        zones: Vec<StaticZone>,
        policies: HashMap<String, ZonePolicy>,
    ) -> Result<Reloaded, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::Reload(zones, policies, reply))
            .map_err(|_| PublishError::Stopped)?;
        answer.await.map_err(|_| PublishError::Stopped)?
    }

    /// Starts a key rollover of `zone` (or hurries the running one to revoke its old key) and
    /// returns the zone's keys once the first step is durable and served.
    pub async fn roll_key(
        &self,
        zone: &str,
        request: RollRequest,
    ) -> Result<crate::zone::snapshot::KeysView, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::KeyRoll(zone.to_owned(), request, reply))
            .map_err(|_| PublishError::Stopped)?;
        answer.await.map_err(|_| PublishError::Stopped)?
    }

    /// Records that the parent's DS names the new key of `zone`'s rollover, served with `ttl`.
    pub async fn ds_seen(
        &self,
        zone: &str,
        ttl: u32,
    ) -> Result<crate::zone::snapshot::KeysView, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Msg::DsSeen(zone.to_owned(), ttl, reply))
            .map_err(|_| PublishError::Stopped)?;
        answer.await.map_err(|_| PublishError::Stopped)?
    }

    /// A receiver that is marked changed each time a new zone set is swapped in (for NOTIFY).
    pub fn subscribe(&self) -> watch::Receiver<()> {
        let mut rx = self.changes.clone();
        rx.mark_unchanged();
        rx
    }

    /// Asks the thread to stop once the changes already sent are done.
    pub fn stop(&self) {
        let _ = self.jobs.send(Msg::Stop);
    }
}

/// Stores the signatures a [`SignedZone`] made, in the transaction of the change they belong
/// to (step 4 above), and counts them.
fn keep(
    w: &mut store::Writer<'_>,
    zone: &str,
    signatures: &[NewSignature],
    stats: &PublishStats,
) -> Result<(), store::Error> {
    stats.signed(signatures.len());
    for s in signatures {
        match s {
            NewSignature::NodeTxt { node, seq, rrsig } => {
                w.set_node_txt_sig(zone, node, *seq, rrsig)?
            }
            NewSignature::NodeDenial { node, next, rrsig } => {
                w.set_node_denial_sig(zone, node, next, rrsig)?
            }
            NewSignature::Rrset {
                owner,
                rtype,
                digest,
                rrsig,
            } => w.put_signature(zone, owner, *rtype, digest, rrsig)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
