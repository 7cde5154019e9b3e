//! The write path: store, sign, swap, answer.
//!
//! One thread owns the writing store connection and the working copy ([`SignedZone`]) of every
//! zone. API handlers send it [`Change`]s and wait. It takes every change that is waiting
//! (group commit: one transaction and one fsync for all of them), and inside that transaction
//! applies each change to the store, signs what it changed on a staged copy of the zone, stores
//! the new signatures, and signs the chain links and the SOA once for the group. After the
//! commit it swaps the new [`ZoneSet`] in for the DNS path, and only then answers. So an API 2xx
//! means durable, signed and visible in DNS. If anything fails, the transaction rolls back and
//! the staged copies are dropped: nothing is half-applied.
//!
//! Between groups (at least every [`REFRESH_EVERY`]) the same thread runs a refresh step per
//! zone ([`SignedZone::refresh`]), so re-signing interleaves with publishes and never blocks
//! queries, which read the last published snapshot.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::sync::{oneshot, watch};

use super::ZoneError;
use super::file::StaticZone;
use super::journal::{self, JournalEntry, JournalLimits};
use super::keys::ZoneKey;
use super::policy::ZonePolicy;
use super::sign::{Clock, Signer};
use super::signed::SignedZone;
use super::snapshot::{ZoneSet, ZoneSnapshot, node_key};
use crate::record::NodeLabel;
use crate::store::{self, Applied, Change, Refusal, Store, Writer};

/// At most this many API changes share one transaction.
const MAX_GROUP: usize = 512;
/// How often the refresh step runs.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

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
    /// The store or the signer failed; nothing of the group was written. Carries the message
    /// only, because one failure answers every change of its group.
    #[error("store: {0}")]
    Store(String),
    #[error("signing or preparing the zone failed: {0}")]
    Snapshot(#[from] ZoneError),
    #[error("the publisher has stopped")]
    Stopped,
}

impl From<store::Error> for PublishError {
    fn from(e: store::Error) -> Self {
        Self::Store(e.to_string())
    }
}

/// The DNS path's view: the current [`ZoneSet`], swapped atomically on every change.
pub type SharedZones = Arc<ArcSwap<ZoneSet>>;

struct Job {
    zone: String,
    change: Change,
    reply: oneshot::Sender<Result<Applied, PublishError>>,
}

enum Msg {
    Change(Job),
    /// Finish what came before, then stop; later changes get [`PublishError::Stopped`].
    Stop,
}

/// A handle to send changes to the publisher thread. Cloning is cheap; the thread stops after
/// [`Publisher::stop`] or when the last handle is dropped, in both cases after finishing what it
/// was given.
#[derive(Clone)]
pub struct Publisher {
    jobs: mpsc::Sender<Msg>,
    changes: watch::Receiver<()>,
}

impl Publisher {
    /// Applies `change` to `zone` and returns once it is durable, signed and served.
    pub async fn apply(&self, zone: &str, change: Change) -> Result<Applied, PublishError> {
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

/// What `herald serve` tells the publisher at start.
pub struct Setup<'a> {
    pub zones: &'a [StaticZone],
    /// Settings by zone; zones not listed get [`ZonePolicy::default`].
    pub policies: &'a HashMap<String, ZonePolicy>,
    /// Where the signing keys live (`<data>/keys`).
    pub data_dir: &'a Path,
    pub clock: Arc<dyn Clock>,
    /// How much IXFR journal to keep per zone.
    pub journal: JournalLimits,
}

/// Loads every zone from the store, signs what is not signed yet, then starts the publisher
/// thread. Returns the handle for writers, the shared snapshot for the DNS path, and the
/// thread to join at shutdown.
pub fn start(
    mut store: Store,
    setup: Setup<'_>,
) -> Result<(Publisher, SharedZones, JoinHandle<()>), ZoneError> {
    for name in setup.policies.keys() {
        if !setup.zones.iter().any(|z| &z.name == name) {
            return Err(ZoneError::Store(format!(
                "--dnssec names {name}, which no zone file serves"
            )));
        }
    }
    let mut working = HashMap::new();
    for zone in setup.zones {
        let started = Instant::now();
        let policy = setup.policies.get(&zone.name).cloned().unwrap_or_default();
        let (key, created) =
            ZoneKey::load_or_create(setup.data_dir, &zone.name, &zone.apex, policy.algorithm)?;
        if created {
            tracing::info!(zone = %zone.name, key_tag = key.key_tag, "new signing key; publish its DS: herald key show");
        }
        let signer = Arc::new(Signer::new(Arc::new(key), policy));
        let store_err = |e: store::Error| ZoneError::Store(e.to_string());
        let row = store
            .init_zone(&zone.name, zone.soa.serial, &zone.digest)
            .map_err(store_err)?;
        let stored = store.signatures(&zone.name).map_err(store_err)?;
        // Signatures made now change what the zone served at this serial before the restart,
        // so a secondary that has it must see a new serial (with no journal entry for the
        // step: it gets a full transfer). A zone that never had signatures was never served.
        let served_before = !stored.is_empty();
        let mut builder =
            SignedZone::builder(Arc::new(zone.clone()), signer, stored, setup.clock.now())?;
        builder.reserve(usize::try_from(row.node_count).unwrap_or(0));
        store
            .for_each_stored_node(&zone.name, |n| {
                builder
                    .add_node(n)
                    .map_err(|e| store::Error::Corrupt(e.to_string()))
            })
            .map_err(store_err)?;
        let (mut signed, writes) = builder.finish(row.serial)?;
        if !writes.is_empty() {
            let now = setup.clock.now();
            store
                .write(|w| -> Result<(), PublishError> {
                    w.write_signatures(&zone.name, &writes)?;
                    if served_before {
                        let serial = w.bump_serial(&zone.name)?;
                        let more = signed.finish(serial, now)?;
                        w.write_signatures(&zone.name, &more)?;
                    }
                    Ok(())
                })
                .map_err(|e| ZoneError::Store(e.to_string()))?;
        }
        for r in store.journal(&zone.name).map_err(store_err)? {
            signed.snapshot.journal.insert(
                r.id,
                Arc::new(JournalEntry {
                    serial_from: r.serial_from,
                    serial_to: r.serial_to,
                    created: r.created,
                    diff: r.diff.into(),
                }),
            );
        }
        if let Some(first) = journal::trim(
            &mut signed.snapshot.journal,
            setup.journal,
            u64::from(setup.clock.now()),
        ) {
            store
                .write(|w| w.journal_trim(&zone.name, first))
                .map_err(store_err)?;
        }
        tracing::info!(
            zone = %zone.name,
            serial = signed.snapshot.serial,
            journal = signed.snapshot.journal.len(),
            nodes = row.node_count,
            signed = writes.len(),
            ms = started.elapsed().as_millis() as u64,
            "zone loaded"
        );
        working.insert(zone.name.clone(), signed);
    }
    let set = ZoneSet::new(
        working
            .values()
            .map(|w| Arc::new(w.snapshot.clone()))
            .collect(),
    );
    let shared: SharedZones = Arc::new(ArcSwap::from_pointee(set));
    let (jobs, rx) = mpsc::channel();
    let (changed, changes) = watch::channel(());
    let thread = {
        let shared = shared.clone();
        let clock = setup.clock.clone();
        let limits = setup.journal;
        std::thread::Builder::new()
            .name("herald-publish".into())
            .spawn(move || {
                Worker {
                    store,
                    zones: working,
                    shared,
                    clock,
                    limits,
                    changed,
                }
                .run(rx)
            })
            .map_err(|e| ZoneError::Store(format!("cannot start the publisher thread: {e}")))?
    };
    Ok((Publisher { jobs, changes }, shared, thread))
}

/// The publisher thread's state.
struct Worker {
    store: Store,
    zones: HashMap<String, SignedZone>,
    shared: SharedZones,
    clock: Arc<dyn Clock>,
    limits: JournalLimits,
    /// Marked after every swap.
    changed: watch::Sender<()>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut last_refresh = Instant::now();
        loop {
            match rx.recv_timeout(REFRESH_EVERY) {
                Ok(Msg::Change(first)) => {
                    if self.group(first, &rx) {
                        break;
                    }
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if last_refresh.elapsed() >= REFRESH_EVERY {
                self.refresh();
                last_refresh = Instant::now();
            }
        }
        tracing::debug!("publisher stopped");
    }

    /// Applies `first` and everything else waiting as one group. Returns true when a stop
    /// request came in with the group.
    fn group(&mut self, first: Job, rx: &mpsc::Receiver<Msg>) -> bool {
        let mut group = vec![first];
        let mut stopping = false;
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Msg::Change(job)) => group.push(job),
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        // Refuse what the store need not see: unknown zones and names of the zone file.
        let mut accepted = Vec::with_capacity(group.len());
        for job in group {
            match self.precheck(&job) {
                Ok(()) => accepted.push(job),
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
        if accepted.is_empty() {
            return stopping;
        }
        let now = self.clock.now();
        let started = Instant::now();
        // Time spent preparing and signing, apart from SQLite and the fsync.
        let mut signing = Duration::ZERO;
        let mut staged: HashMap<String, SignedZone> = HashMap::new();
        let zones = &self.zones;
        let limits = self.limits;
        let outcome = self.store.write(|w| -> Result<_, PublishError> {
            let mut results = Vec::with_capacity(accepted.len());
            let mut serials: HashMap<String, u32> = HashMap::new();
            for job in &accepted {
                let result = w.apply(&job.zone, &job.change, u64::from(now))?;
                if let Ok(applied) = &result {
                    let zone = staged
                        .entry(job.zone.clone())
                        .or_insert_with(|| zones[&job.zone].clone());
                    let t = Instant::now();
                    let writes = zone.apply(applied, now)?;
                    signing += t.elapsed();
                    w.write_signatures(&job.zone, &writes)?;
                    serials.insert(job.zone.clone(), applied.serial);
                }
                results.push(result);
            }
            // The chain links and the SOA, once per zone for the whole group; then the journal.
            for (name, zone) in staged.iter_mut() {
                let t = Instant::now();
                let writes = zone.finish(serials[name], now)?;
                signing += t.elapsed();
                w.write_signatures(name, &writes)?;
                record(w, &zones[name].snapshot, &mut zone.snapshot, limits, now)?;
            }
            Ok(results)
        });
        tracing::debug!(
            changes = accepted.len(),
            sign_us = signing.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "group committed"
        );
        match outcome {
            Ok(results) => {
                let touched: Vec<String> = staged.keys().cloned().collect();
                self.zones.extend(staged);
                self.publish(&touched);
                for (job, result) in accepted.into_iter().zip(results) {
                    let _ = job.reply.send(result.map_err(PublishError::from));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, changes = accepted.len(), "write failed; nothing was written");
                let msg = e.to_string();
                for job in accepted {
                    let _ = job.reply.send(Err(PublishError::Store(msg.clone())));
                }
            }
        }
        stopping
    }

    fn precheck(&self, job: &Job) -> Result<(), PublishError> {
        let zone = self
            .zones
            .get(&job.zone)
            .ok_or_else(|| PublishError::UnknownZone(job.zone.clone()))?;
        let clash = |node: &NodeLabel| zone.static_keys().contains(&node_key(node.as_str()));
        let clashing = match &job.change {
            Change::Put { node, .. } => clash(node).then_some(node),
            Change::Delete { .. } => None,
            Change::Batch { set, .. } => set.iter().map(|(n, _)| n).find(|n| clash(n)),
        };
        match clashing {
            Some(node) => Err(PublishError::StaticName(node.to_string())),
            None => Ok(()),
        }
    }

    /// One refresh step for every zone; a zone whose signatures changed gets a new serial.
    fn refresh(&mut self) {
        let names: Vec<String> = self.zones.keys().cloned().collect();
        let mut touched = Vec::new();
        for name in names {
            let now = self.clock.now();
            let mut staged = self.zones[&name].clone();
            let writes = match staged.refresh(now) {
                Ok(None) => continue,
                Ok(Some(writes)) => writes,
                Err(e) => {
                    tracing::error!(zone = %name, error = %e, "refresh failed");
                    continue;
                }
            };
            let served = &self.zones[&name].snapshot;
            let limits = self.limits;
            let result = self.store.write(|w| -> Result<u32, PublishError> {
                w.write_signatures(&name, &writes)?;
                let serial = w.bump_serial(&name)?;
                let more = staged.finish(serial, now)?;
                w.write_signatures(&name, &more)?;
                record(w, served, &mut staged.snapshot, limits, now)?;
                Ok(serial)
            });
            match result {
                Ok(serial) => {
                    tracing::info!(zone = %name, serial, resigned = writes.len(), "signatures refreshed");
                    self.zones.insert(name.clone(), staged);
                    touched.push(name);
                }
                Err(e) => tracing::error!(zone = %name, error = %e, "refresh failed; will retry"),
            }
        }
        self.publish(&touched);
    }

    /// Swaps in a zone set with the `touched` zones' new snapshots.
    fn publish(&self, touched: &[String]) {
        if touched.is_empty() {
            return;
        }
        let unique: HashSet<&String> = touched.iter().collect();
        let mut set = (**self.shared.load()).clone();
        for name in unique {
            set = set.with(Arc::new(self.zones[name].snapshot.clone()));
        }
        self.shared.store(Arc::new(set));
        self.changed.send_replace(());
    }
}

/// Journals the step from `served` to `staged` (RFC 1995): in the store, inside the
/// transaction of the change, and in the staged snapshot, both trimmed to `limits`.
fn record(
    w: &mut Writer<'_>,
    served: &ZoneSnapshot,
    staged: &mut ZoneSnapshot,
    limits: JournalLimits,
    now: u32,
) -> Result<(), store::Error> {
    if served.serial == staged.serial {
        return Ok(());
    }
    let now = u64::from(now);
    let diff = journal::diff(served, staged);
    let id = w.journal_append(&staged.name, served.serial, staged.serial, now, &diff)?;
    staged.journal.insert(
        id,
        Arc::new(JournalEntry {
            serial_from: served.serial,
            serial_to: staged.serial,
            created: now,
            diff: diff.into(),
        }),
    );
    if let Some(first) = journal::trim(&mut staged.journal, limits, now) {
        w.journal_trim(&staged.name, first)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
