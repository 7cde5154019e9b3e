//! Start-up of the writer: every zone built from its file and the store, signed where no
//! stored signature still fits, before anything is served.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::keyroll::{ZoneRoll, load_keys, roll_from_row, view};
use super::writer::Worker;
use super::{Publisher, StartError, WriteError, keep};
use crate::dnssec::roll::KeySet;
use crate::dnssec::{
    PriorNode, PriorSignature, PriorSignatures, SignedZone, ZoneKey, ZonePolicy, sign::Signer,
};
use crate::metrics::PublishStats;
use crate::record::Clock;
use crate::store::{self, Store, StoredNode, StoredSig};
use crate::zone::file::StaticZone;
use crate::zone::journal::{self, JournalEntry, JournalLimits};
use crate::zone::{SharedZones, ZoneSet};

/// What `herald serve` tells the writer at start.
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

/// Loads every zone from the store, signs what is not signed yet, then starts the writer
/// thread. Returns the handle for writers, the shared snapshot for the DNS path, and the
/// thread to join at shutdown.
pub fn start(
    mut store: Store,
    setup: Setup<'_>,
) -> Result<(Publisher, SharedZones, JoinHandle<()>), StartError> {
    for name in setup.policies.keys() {
        if !setup.zones.iter().any(|z| &z.name == name) {
            return Err(StartError::UnknownPolicyZone(name.clone()));
        }
    }
    let stats = Arc::new(PublishStats::default());
    let opener = Opener {
        policies: setup.policies.clone(),
        data_dir: setup.data_dir.to_owned(),
        clock: setup.clock.clone(),
        limits: setup.journal,
        stats: stats.clone(),
    };
    let mut working = HashMap::new();
    let mut digests = HashMap::new();
    let mut rolls = HashMap::new();
    for zone in setup.zones {
        let (signed, roll) = opener.open(&mut store, zone)?;
        working.insert(zone.name.clone(), signed);
        rolls.extend(roll.map(|r| (zone.name.clone(), r)));
        digests.insert(zone.name.clone(), zone.digest);
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
    let worker = Worker {
        store,
        zones: working,
        shared: shared.clone(),
        clock: setup.clock.clone(),
        limits: setup.journal,
        changed,
        stats: stats.clone(),
        opener,
        digests,
        pending_reload: None,
        rolls,
    };
    let thread = std::thread::Builder::new()
        .name("herald-publish".into())
        .spawn(move || worker.run(rx))
        .map_err(StartError::Thread)?;
    Ok((
        Publisher {
            jobs,
            changes,
            stats,
        },
        shared,
        thread,
    ))
}

/// Opens zones: at start, and when their file changed on a reload.
pub(super) struct Opener {
    pub policies: HashMap<String, ZonePolicy>,
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub limits: JournalLimits,
    pub stats: Arc<PublishStats>,
}

impl Opener {
    /// The zone's signing keys (its first key created on its first start; the ones of its
    /// rollover as the store names them) and its working copy, built from the file and what
    /// the store holds, reusing every stored signature that still fits.
    pub fn open(
        &self,
        store: &mut Store,
        zone: &StaticZone,
    ) -> Result<(SignedZone, Option<ZoneRoll>), StartError> {
        let started = Instant::now();
        let policy = self.policies.get(&zone.name).cloned().unwrap_or_default();
        let key_error = |source| StartError::Key {
            zone: zone.name.clone(),
            source,
        };
        let zone_error = |source: WriteError| StartError::Zone {
            zone: zone.name.clone(),
            source,
        };
        let roll = match store.key_roll(&zone.name) {
            Ok(row) => row
                .map(roll_from_row)
                .transpose()
                .map_err(|e| zone_error(e.into()))?,
            Err(e) => return Err(zone_error(e.into())),
        };
        let keys = match &roll {
            Some(roll) => load_keys(&self.data_dir, &zone.apex, roll).map_err(key_error)?,
            None => {
                let (key, created) = ZoneKey::load_or_create(
                    &self.data_dir,
                    &zone.name,
                    &zone.apex,
                    policy.algorithm,
                )
                .map_err(key_error)?;
                if created {
                    tracing::info!(zone = %zone.name, key_tag = key.key_tag, "new signing key; publish its DS: herald key show");
                }
                KeySet::single(Arc::new(key))
            }
        };
        let signer = Arc::new(Signer::with_keys(keys, policy));
        let loaded = load(store, zone, signer, &*self.clock, self.limits, &self.stats).map_err(
            |source| StartError::Zone {
                zone: zone.name.clone(),
                source,
            },
        )?;
        let mut signed = loaded.zone;
        signed.snapshot.keys = Arc::new(view(&signed, roll.as_ref()));
        tracing::info!(
            zone = %zone.name,
            serial = signed.snapshot.serial,
            journal = signed.snapshot.journal.len(),
            nodes = loaded.nodes,
            signed = loaded.signed,
            ms = started.elapsed().as_millis() as u64,
            "zone loaded"
        );
        Ok((signed, roll.map(|roll| ZoneRoll { roll, mark: 0 })))
    }
}

/// A zone as [`load`] built it.
struct Loaded {
    zone: SignedZone,
    /// Nodes read from the store.
    nodes: u64,
    /// Signatures made because no stored one fitted.
    signed: usize,
}

/// Builds one zone's working copy from its file and what the store holds: its serial, nodes,
/// stored signatures and journal.
fn load(
    store: &mut Store,
    zone: &StaticZone,
    signer: Arc<Signer>,
    clock: &dyn Clock,
    limits: JournalLimits,
    stats: &PublishStats,
) -> Result<Loaded, WriteError> {
    let row = store.init_zone(&zone.name, zone.soa.serial, &zone.digest)?;
    let stored = prior_signatures(store.signatures(&zone.name)?);
    // Signatures made now change what the zone served at this serial before the restart,
    // so a secondary that has it must see a new serial (with no journal entry for the
    // step: it gets a full transfer). A zone that never had signatures was never served.
    let served_before = !stored.is_empty();
    let mut builder = SignedZone::builder(Arc::new(zone.clone()), signer, stored, clock.now())?;
    builder.reserve(usize::try_from(row.node_count).unwrap_or(0));
    store.for_each_stored_node(&zone.name, |n| -> Result<(), WriteError> {
        builder.add_node(prior_node(n)?)?;
        Ok(())
    })?;
    let (mut signed, made) = builder.finish(row.serial)?;
    if !made.is_empty() {
        let now = clock.now();
        store.write(|w| -> Result<(), WriteError> {
            keep(w, &zone.name, &made, stats)?;
            if served_before {
                let serial = w.bump_serial(&zone.name)?;
                let more = signed.finish(serial, now)?;
                keep(w, &zone.name, &more, stats)?;
            }
            Ok(())
        })?;
    }
    for r in store.journal(&zone.name)? {
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
    if let Some(first) = journal::trim(&mut signed.snapshot.journal, limits, u64::from(clock.now()))
    {
        store.write(|w| w.journal_trim(&zone.name, first))?;
    }
    Ok(Loaded {
        zone: signed,
        nodes: row.node_count,
        signed: made.len(),
    })
}

/// The store's signatures of zone-file and apex RRsets, as the signer takes them.
fn prior_signatures(stored: HashMap<(Vec<u8>, u16), StoredSig>) -> PriorSignatures {
    stored
        .into_iter()
        .map(|(k, s)| {
            let sig = PriorSignature {
                digest: s.digest,
                rrsig: s.rrsig,
            };
            (k, sig)
        })
        .collect()
}

/// A stored node as the signer takes it.
fn prior_node(n: StoredNode) -> Result<PriorNode, store::Error> {
    Ok(PriorNode {
        record: n.row.into_record()?,
        txt_sig: n.txt_sig_seq.zip(n.txt_sig),
        denial_sig: n.denial_next.zip(n.denial_sig),
    })
}
