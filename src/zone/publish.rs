//! The write path: store first, then the snapshot, then the answer to the caller.
//!
//! One thread owns the writing store connection and the working copy of every zone. API handlers
//! send it [`Change`]s and wait. It takes every change that is waiting (group commit: one
//! transaction and one fsync for all of them), commits them to SQLite, applies the committed ones
//! to the zone snapshots, swaps the new [`ZoneSet`] in for the DNS path, and only then answers.
//! So an API 2xx means both "durable" and "visible in DNS".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::sync::oneshot;

use super::ZoneError;
use super::file::StaticZone;
use super::snapshot::{NameKey, ZoneSet, ZoneSnapshot, node_key, static_keys};
use crate::record::{Commit, NodeLabel, Payload};
use crate::store::{self, Applied, Change, NodeRow, Refusal, Store};

/// At most this many API changes share one transaction.
const MAX_GROUP: usize = 512;

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
    /// The store failed; nothing of the change was written. Carries the message only, because
    /// one failed transaction answers every change of its group.
    #[error("store: {0}")]
    Store(String),
    #[error("updating the DNS snapshot failed: {0}")]
    Snapshot(#[from] ZoneError),
    #[error("the publisher has stopped")]
    Stopped,
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
}

impl Publisher {
    /// Applies `change` to `zone` and returns once it is durable and served.
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

    /// Asks the thread to stop once the changes already sent are done.
    pub fn stop(&self) {
        let _ = self.jobs.send(Msg::Stop);
    }
}

/// A zone as the publisher holds it: the working snapshot and the names nodes may not take.
struct WorkingZone {
    snapshot: ZoneSnapshot,
    static_keys: HashSet<NameKey>,
}

/// Loads every zone from the store into snapshots, then starts the publisher thread.
///
/// Returns the handle for writers, the shared snapshot for the DNS path, and the thread to join
/// at shutdown.
pub fn start(
    mut store: Store,
    zones: &[StaticZone],
    node_ttl: u32,
) -> Result<(Publisher, SharedZones, JoinHandle<()>), ZoneError> {
    let mut working = HashMap::new();
    for zone in zones {
        let row = store
            .init_zone(&zone.name, zone.soa.serial, &zone.digest)
            .map_err(|e| ZoneError::Store(e.to_string()))?;
        let mut snapshot = ZoneSnapshot::new(zone, row.serial, node_ttl)?;
        let keys = static_keys(zone);
        let mut collisions = Vec::new();
        store
            .for_each_node(&zone.name, |row| {
                if keys.contains(&node_key(&row.node)) {
                    collisions.push(row.node);
                    return Ok(());
                }
                let payload = payload(&row).map_err(|e| store::Error::Corrupt(e.to_string()))?;
                snapshot
                    .set_node(&row.node, &payload)
                    .map_err(|e| store::Error::Corrupt(e.to_string()))
            })
            .map_err(|e| ZoneError::Store(e.to_string()))?;
        if !collisions.is_empty() {
            return Err(ZoneError::Invalid {
                path: zone.path.clone(),
                msg: format!(
                    "stored nodes {} have the names of records in the zone file; rename those \
                     records, or start with the old file and delete the nodes first",
                    collisions.join(", ")
                ),
            });
        }
        tracing::info!(zone = %zone.name, serial = row.serial, nodes = row.node_count, "zone loaded");
        working.insert(
            zone.name.clone(),
            WorkingZone {
                snapshot,
                static_keys: keys,
            },
        );
    }
    let set = ZoneSet::new(
        working
            .values()
            .map(|w| Arc::new(w.snapshot.clone()))
            .collect(),
    );
    let shared: SharedZones = Arc::new(ArcSwap::from_pointee(set));
    let (jobs, rx) = mpsc::channel();
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("herald-publish".into())
            .spawn(move || run(store, working, shared, rx))
            .map_err(|e| ZoneError::Store(format!("cannot start the publisher thread: {e}")))?
    };
    Ok((Publisher { jobs }, shared, thread))
}

fn payload(row: &NodeRow) -> Result<Payload, crate::record::RecordError> {
    Ok(Payload {
        commit: Commit::parse(&row.commit)?,
        seq: row.seq,
        ts: row.ts,
    })
}

fn run(
    mut store: Store,
    mut zones: HashMap<String, WorkingZone>,
    shared: SharedZones,
    rx: mpsc::Receiver<Msg>,
) {
    let mut stopping = false;
    while !stopping {
        let Ok(Msg::Change(first)) = rx.recv() else {
            break;
        };
        let mut group = vec![first];
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
            match precheck(&zones, &job) {
                Ok(()) => accepted.push(job),
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
        if accepted.is_empty() {
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let batch: Vec<(&str, &Change)> = accepted
            .iter()
            .map(|j| (j.zone.as_str(), &j.change))
            .collect();
        let results = match store.apply(&batch, now) {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, changes = accepted.len(), "store write failed; nothing was written");
                let msg = e.to_string();
                for job in accepted {
                    let _ = job.reply.send(Err(PublishError::Store(msg.clone())));
                }
                continue;
            }
        };
        // Committed: bring the snapshots up to date, swap once, then answer.
        let mut replies = Vec::with_capacity(accepted.len());
        // The last serial of every zone the group changed: its SOA is prepared once.
        let mut touched: HashMap<String, u32> = HashMap::new();
        for (job, result) in accepted.into_iter().zip(results) {
            let result = result.map_err(PublishError::from).and_then(|applied| {
                let zone = zones.get_mut(&job.zone).expect("prechecked zone exists");
                apply_to_snapshot(&mut zone.snapshot, &applied)?;
                touched.insert(job.zone.clone(), applied.serial);
                Ok(applied)
            });
            if let Err(PublishError::Snapshot(e)) = &result {
                tracing::error!(error = %e, zone = %job.zone, "committed change could not be prepared for DNS; a restart rebuilds it from the store");
            }
            replies.push((job.reply, result));
        }
        if !touched.is_empty() {
            let mut set = (**shared.load()).clone();
            for (name, serial) in &touched {
                let zone = zones.get_mut(name).expect("touched zone exists");
                if let Err(e) = zone.snapshot.set_serial(*serial) {
                    tracing::error!(error = %e, zone = %name, "preparing the SOA failed");
                }
                set = set.with(Arc::new(zone.snapshot.clone()));
            }
            shared.store(Arc::new(set));
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }
    tracing::debug!("publisher stopped");
}

fn precheck(zones: &HashMap<String, WorkingZone>, job: &Job) -> Result<(), PublishError> {
    let zone = zones
        .get(&job.zone)
        .ok_or_else(|| PublishError::UnknownZone(job.zone.clone()))?;
    let clash = |node: &NodeLabel| zone.static_keys.contains(&node_key(node.as_str()));
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

fn apply_to_snapshot(snapshot: &mut ZoneSnapshot, applied: &Applied) -> Result<(), PublishError> {
    for node in &applied.deleted {
        snapshot.remove_node(node);
    }
    for (row, _) in &applied.set {
        let payload = payload(row).map_err(|e| ZoneError::Encode(e.to_string()))?;
        snapshot.set_node(&row.node, &payload)?;
    }
    Ok(())
}
