//! The writer thread: group commit, the refresh step, and the swap (steps 1–7 of the module
//! documentation of [`super`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::keyroll::ZoneRoll;
use super::start::Opener;
use super::{Job, Msg, PublishError, Reloaded, WriteError, keep};
use crate::dnssec::SignedZone;
use crate::dnssec::policy::ZonePolicy;
use crate::metrics::PublishStats;
use crate::record::{Clock, NodeLabel, NodeRecord};
use crate::store::{self, Change, Store, Writer};
use crate::zone::SharedZones;
use crate::zone::ZoneSet;
use crate::zone::file::StaticZone;
use crate::zone::journal::{self, JournalEntry, JournalLimits};
use crate::zone::snapshot::{ZoneSnapshot, node_key};

/// At most this many changes share one transaction.
const MAX_GROUP: usize = 512;
/// A group that changed at least this many nodes hands the memory it freed back to the
/// kernel ([`release_memory`]).
const TRIM_AFTER: usize = 20_000;
/// How often the refresh step runs.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The writer thread's state.
pub(super) struct Worker {
    pub store: Store,
    pub zones: HashMap<String, SignedZone>,
    pub shared: SharedZones,
    pub clock: Arc<dyn Clock>,
    pub limits: JournalLimits,
    /// Marked after every swap.
    pub changed: watch::Sender<()>,
    /// Signatures made, for the metrics.
    pub stats: Arc<PublishStats>,
    /// Opens zones on a reload.
    pub opener: Opener,
    /// Each served zone's file digest, to tell which files a reload changed.
    pub digests: HashMap<String, [u8; 32]>,
    /// A reload that came in while a group was being collected.
    pub pending_reload: Option<(Vec<StaticZone>, HashMap<String, ZonePolicy>, ReloadReply)>,
    /// Each zone's key rollover, for zones that ever rolled a key.
    pub rolls: HashMap<String, ZoneRoll>,
}

/// Where a reload's answer goes.
pub(super) type ReloadReply = tokio::sync::oneshot::Sender<Result<Reloaded, PublishError>>;

impl Worker {
    pub fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut last_refresh = Instant::now();
        loop {
            match rx.recv_timeout(REFRESH_EVERY) {
                Ok(Msg::Change(first)) => {
                    let stopping = self.group(first, &rx);
                    if let Some((zones, policies, reply)) = self.pending_reload.take() {
                        let _ = reply.send(self.reload(zones, policies));
                    }
                    if stopping {
                        break;
                    }
                }
                Ok(Msg::Reload(zones, policies, reply)) => {
                    let _ = reply.send(self.reload(zones, policies));
                }
                Ok(Msg::KeyRoll(zone, request, reply)) => {
                    let _ = reply.send(self.start_roll(&zone, request));
                }
                Ok(Msg::DsSeen(zone, ttl, reply)) => {
                    let _ = reply.send(self.ds_seen(&zone, ttl));
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if last_refresh.elapsed() >= REFRESH_EVERY {
                self.refresh();
                self.roll_tick();
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
                Ok(Msg::Reload(zones, policies, reply)) => {
                    // Not part of the group: right after it.
                    self.pending_reload = Some((zones, policies, reply));
                    break;
                }
                Ok(Msg::KeyRoll(zone, request, reply)) => {
                    // Rare; answered at once, between changes of the group.
                    let _ = reply.send(self.start_roll(&zone, request));
                }
                Ok(Msg::DsSeen(zone, ttl, reply)) => {
                    let _ = reply.send(self.ds_seen(&zone, ttl));
                }
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
        let stats = &*self.stats;
        let outcome = self.store.write(|w| -> Result<_, WriteError> {
            let mut results = Vec::with_capacity(accepted.len());
            let mut serials: HashMap<String, u32> = HashMap::new();
            for job in &accepted {
                let result = w.apply(&job.zone, &job.change, u64::from(now))?;
                // An update whose deletes found nothing changed nothing: no signing, no serial.
                if let Ok(applied) = &result
                    && !(applied.set.is_empty() && applied.deleted.is_empty())
                {
                    let zone = staged
                        .entry(job.zone.clone())
                        .or_insert_with(|| zones[&job.zone].clone());
                    let published = applied
                        .set
                        .iter()
                        .map(|(row, _)| row.clone().into_record())
                        .collect::<Result<Vec<NodeRecord>, store::Error>>()?;
                    let t = Instant::now();
                    let made = zone.apply(&published, &applied.deleted, now)?;
                    signing += t.elapsed();
                    keep(w, &job.zone, &made, stats)?;
                    serials.insert(job.zone.clone(), applied.serial);
                }
                results.push(result);
            }
            // The chain links and the SOA, once per zone for the whole group; then the journal.
            for (name, zone) in staged.iter_mut() {
                let t = Instant::now();
                let made = zone.finish(serials[name], now)?;
                signing += t.elapsed();
                keep(w, name, &made, stats)?;
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
                self.swap(&touched);
                let changed: usize = results
                    .iter()
                    .flatten()
                    .map(|a| a.set.len() + a.deleted.len())
                    .sum();
                for (job, result) in accepted.into_iter().zip(results) {
                    let _ = job.reply.send(result.map_err(PublishError::from));
                }
                if changed >= TRIM_AFTER {
                    release_memory();
                }
            }
            Err(e) => {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    changes = accepted.len(),
                    "write failed; nothing was written"
                );
                let e = Arc::new(e);
                for job in accepted {
                    let _ = job.reply.send(Err(PublishError::Failed(e.clone())));
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
            // Rollouts publish nodes that exist, never zone-file names.
            Change::Delete { .. } | Change::Rollout { .. } => None,
            Change::Batch { set, .. } => set.iter().map(|(n, _)| n).find(|n| clash(n)),
            // An update may not remove a zone-file name either: that is not a node.
            Change::Update { set, delete, .. } => {
                set.iter().map(|(n, _)| n).chain(delete).find(|n| clash(n))
            }
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
            let made = match staged.refresh(now) {
                Ok(None) => {
                    // Nothing due: whatever was at risk has been stored since (a reload, say).
                    if self.stats.set_at_risk(&name, false) {
                        tracing::info!(zone = %name, "zone no longer at risk: nothing left to refresh");
                    }
                    continue;
                }
                Ok(Some(made)) => made,
                Err(e) => {
                    tracing::error!(zone = %name, error = &e as &dyn std::error::Error, "refresh failed");
                    continue;
                }
            };
            let served = &self.zones[&name].snapshot;
            let limits = self.limits;
            let stats = &*self.stats;
            let result = self.store.write(|w| -> Result<u32, WriteError> {
                keep(w, &name, &made, stats)?;
                let serial = w.bump_serial(&name)?;
                let more = staged.finish(serial, now)?;
                keep(w, &name, &more, stats)?;
                record(w, served, &mut staged.snapshot, limits, now)?;
                Ok(serial)
            });
            match result {
                Ok(serial) => {
                    tracing::info!(zone = %name, serial, resigned = made.len(), "signatures refreshed");
                    if self.stats.set_at_risk(&name, false) {
                        tracing::info!(zone = %name, "zone no longer at risk: refreshed signatures are stored again");
                    }
                    self.zones.insert(name.clone(), staged);
                    touched.push(name);
                }
                // Nothing of it is served (what is served must be in the store); the next
                // step, a second later, tries again. Said once, loudly, until it works.
                Err(e) => {
                    if self.stats.set_at_risk(&name, true) {
                        let expires_in = self.zones[&name].snapshot.soonest_expiry(now);
                        tracing::error!(
                            zone = %name,
                            error = &e as &dyn std::error::Error,
                            expires_in_s = expires_in,
                            "zone at risk: refreshed signatures cannot be stored; the served ones \
                             expire unless this recovers; retrying every second"
                        );
                    } else {
                        tracing::debug!(zone = %name, error = &e as &dyn std::error::Error, "refresh failed again");
                    }
                }
            }
        }
        self.swap(&touched);
    }

    /// Serves the zone files `files` (a SIGHUP): rebuilds the zones whose file changed, opens
    /// new ones, drops the ones whose file is gone, and swaps in the whole new set at once. A
    /// zone that cannot be opened fails the reload and leaves every zone as it was.
    ///
    /// Opening a zone writes to the store (its serial, its signatures) as it goes; if one fails
    /// the zones opened before it are still swapped in, so that what is served always matches
    /// the store, and the failure is reported.
    fn reload(
        &mut self,
        files: Vec<StaticZone>,
        policies: HashMap<String, ZonePolicy>,
    ) -> Result<Reloaded, PublishError> {
        let mut done = Reloaded::default();
        let mut opened = Vec::new();
        let mut failed = None;
        for file in &files {
            let new = match self.digests.get(&file.name) {
                Some(d) if *d == file.digest => continue,
                Some(_) => false,
                None => true,
            };
            // A new zone takes its settings from the new configuration.
            if new && let Some(p) = policies.get(&file.name) {
                self.opener.policies.insert(file.name.clone(), p.clone());
            }
            match self.opener.open(&mut self.store, file) {
                Ok((zone, roll)) => {
                    match roll {
                        Some(roll) => self.rolls.insert(file.name.clone(), roll),
                        None => self.rolls.remove(&file.name),
                    };
                    if new {
                        done.added.push(file.name.clone());
                    } else {
                        done.changed.push(file.name.clone());
                    }
                    opened.push((file.name.clone(), file.digest, zone));
                }
                Err(e) => {
                    failed = Some(PublishError::Reload(Arc::new(e)));
                    break;
                }
            }
        }
        if failed.is_none() {
            done.removed = self
                .zones
                .keys()
                .filter(|name| !files.iter().any(|f| &f.name == *name))
                .cloned()
                .collect();
        }
        if done == Reloaded::default() {
            return failed.map_or(Ok(done), Err);
        }
        for name in &done.removed {
            self.zones.remove(name);
            self.rolls.remove(name);
            self.digests.remove(name);
        }
        for (name, digest, zone) in opened {
            self.zones.insert(name.clone(), zone);
            self.digests.insert(name, digest);
        }
        let set = ZoneSet::new(
            self.zones
                .values()
                .map(|z| Arc::new(z.snapshot.clone()))
                .collect(),
        );
        self.shared.store(Arc::new(set));
        self.changed.send_replace(());
        tracing::info!(changed = ?done.changed, added = ?done.added, removed = ?done.removed, "zones reloaded");
        failed.map_or(Ok(done), Err)
    }

    /// Swaps in a zone set with the `touched` zones' new snapshots (step 6).
    pub(super) fn swap(&self, touched: &[String]) {
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
pub(super) fn record(
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

/// Returns the memory a large group freed to the kernel. glibc keeps freed memory in its
/// arenas for reuse, and a group of hundreds of thousands of nodes (a rollout wave) frees
/// more than later groups reuse: four rollouts of a million nodes in waves of up to 500,000
/// took the server from 385 MB PSS to 1.9 GB, and `malloc_trim` brought 1.6 GB back to 0.6
/// (`deploy/bench/rollout-scale`). It walks the heap, so it runs only after such groups, once
/// their callers have their answers.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = Instant::now();
        // SAFETY: malloc_trim takes no pointers; it only returns free pages to the kernel.
        unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            took_us = started.elapsed().as_micros() as u64,
            "freed memory returned"
        );
    }
}
