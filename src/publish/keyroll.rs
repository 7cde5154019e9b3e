//! Key rollovers on the writer thread: starting one (`herald key roll`, `POST
//! /v1/zones/{zone}/keys/roll`) and moving it on, step by step, as its waits end.
//!
//! The steps and their timing are [`crate::dnssec::roll`]'s. Each step is one transaction, like
//! a publish: the `key_roll` row, the signatures of the new apex key RRsets, a new serial and
//! its journal entry commit together, and only then is the new snapshot served, so a restart
//! resumes at the step the store holds and secondaries follow every step by IXFR. The
//! re-signing a switch needs is not done here but by the refresh sweep, a bounded number of
//! signatures per second ([`SignedZone::refresh`]); the switch's re-signing counts as complete
//! once a sweep that started after it has gone over every name.

use std::sync::Arc;

use hickory_proto::dnssec::Algorithm;
use thiserror::Error;

use super::writer::{Worker, record};
use super::{PublishError, WriteError, keep};
use crate::dnssec::keys::first_key_file;
use crate::dnssec::roll::{KeySet, Roll, Step, Timings};
use crate::dnssec::sign::Signer;
use crate::dnssec::{DnssecError, KeyError, SignedZone, ZoneKey};
use crate::store::KeyRollRow;
use crate::zone::snapshot::{KeysView, RollView};

/// What `herald key roll` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollRequest {
    /// The new key's algorithm; the current one's when `None`.
    pub algorithm: Option<Algorithm>,
    /// Publish the old key revoked at the end (RFC 5011 §2.1). Given to a rollover that is
    /// already running, it also cuts its waits short: see [`Worker::start_roll`].
    pub revoke_old: bool,
    /// Keep the old key until the parent's DS names the new one ([`Worker::ds_seen`]).
    pub wait_ds: bool,
}

/// A rollover request that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RollRefusal {
    #[error(
        "an algorithm change ({from} to {to}) cannot end by revoking the old key: roll the \
         algorithm first, then the key with --revoke-old"
    )]
    Algorithm { from: u8, to: u8 },
    #[error(
        "a key rollover is already at step {step}; give --revoke-old to end it early with the \
         old key revoked, or wait until it is done"
    )]
    Running { step: &'static str },
    #[error("no key rollover waits for the parent's DS (start one with --wait-ds)")]
    NotWaiting,
}

/// A zone's rollover as the writer keeps it.
#[derive(Debug, Clone)]
pub(super) struct ZoneRoll {
    pub roll: Roll,
    /// The zone's sweep count when its keys last changed (see [`SignedZone::sweeps`]).
    pub mark: u64,
}

/// The rollover state of `row`, or why it cannot be read.
pub(super) fn roll_from_row(row: KeyRollRow) -> Result<Roll, DnssecError> {
    let step = Step::parse(&row.step).ok_or_else(|| {
        DnssecError::Inconsistent(format!("key_roll step {:?} is not known", row.step))
    })?;
    Ok(Roll {
        active: row.active,
        other: row.other,
        step,
        revoke_old: row.revoke_old,
        started_at: row.started_at,
        step_at: row.step_at,
        resigned_at: row.resigned_at,
        wait_ds: row.wait_ds,
        ds_seen_at: row.ds_seen_at,
        algorithm_change: row.algorithm_change,
    })
}

fn row_of(roll: &Roll) -> KeyRollRow {
    KeyRollRow {
        active: roll.active.clone(),
        other: roll.other.clone(),
        step: roll.step.as_str().to_owned(),
        revoke_old: roll.revoke_old,
        started_at: roll.started_at,
        step_at: roll.step_at,
        resigned_at: roll.resigned_at,
        wait_ds: roll.wait_ds,
        ds_seen_at: roll.ds_seen_at,
        algorithm_change: roll.algorithm_change,
    }
}

/// The keys that `roll`'s step publishes, loaded from their files.
pub(super) fn load_keys(
    data_dir: &std::path::Path,
    apex: &hickory_proto::rr::Name,
    roll: &Roll,
) -> Result<KeySet, KeyError> {
    let active = Arc::new(ZoneKey::load_named(data_dir, &roll.active, apex)?);
    let other = match &roll.other {
        Some(file) => Some(Arc::new(ZoneKey::load_named(data_dir, file, apex)?)),
        None => None,
    };
    Ok(KeySet::at(roll.step, active, other))
}

/// The keys and rollover for the API.
pub(super) fn view(zone: &SignedZone, roll: Option<&Roll>) -> KeysView {
    let timings = zone.roll_timings();
    KeysView {
        keys: zone.signer().keys().view(),
        rollover: roll.map(|r| RollView {
            step: r.step.as_str(),
            started_at: r.started_at,
            step_at: r.step_at,
            next_step_at: r.next_at(&timings),
            waiting_for: waiting_for(r, &timings),
            revoke_old: r.revoke_old,
            wait_ds: r.wait_ds,
            ds_seen_at: r.ds_seen_at,
        }),
    }
}

fn waiting_for(r: &Roll, t: &Timings) -> String {
    match r.step {
        Step::Sigs if r.resigned_at.is_none() => "the refresh sweep to sign every RRset with \
            the new key too, before it is published (an algorithm change, RFC 6781 §4.1.4)"
            .into(),
        Step::Sigs => format!(
            "the single-signed data to leave the caches ({} s after the re-signing), then the \
             new key is published",
            t.retire_wait()
        ),
        Step::Unpublish => format!(
            "the old DNSKEY to leave the caches ({} s), then its signatures are dropped",
            u64::from(t.propagation) + u64::from(t.dnskey_ttl)
        ),
        Step::Publish => format!(
            "the new key to be published for {} s (propagation {} s, DNSKEY TTL {} s, the nodes' \
             hold-down {} s and two probes of {} s), then it signs",
            t.publish_wait(),
            t.propagation,
            t.dnskey_ttl,
            t.holddown,
            t.probe()
        ),
        Step::Switch if r.resigned_at.is_none() => format!(
            "the refresh sweep to re-sign every RRset with the new key{}",
            if r.waits_for_ds() {
                ", and the parent's DS to name it"
            } else {
                ""
            }
        ),
        Step::Switch if r.waits_for_ds() => "the parent's DS to name the new key (herald key \
             roll --wait-ds --parent ADDR checks and says so)"
            .into(),
        Step::Switch => format!(
            "the old key's signatures to leave the caches ({} s after the re-signing), then \
             the old key is {}",
            t.retire_wait(),
            if r.revoke_old { "revoked" } else { "removed" }
        ),
        Step::Revoke => format!(
            "every node to see the revoked key ({} s), then it is removed",
            t.revoke_wait()
        ),
        Step::Done => "nothing: the rollover is done".into(),
    }
}

impl Worker {
    /// Starts a rollover of `zone`'s key, or, with `revoke_old`, hurries a running one to the
    /// revocation of its old key: the publish wait is cut short (the new key signs at once),
    /// and the old key is revoked once the new one has re-signed everything and the old
    /// signatures have left the caches. Nodes that have not yet trusted the new key then lose
    /// their only trusted key and need a fresh anchor: that is the price of an emergency.
    pub(super) fn start_roll(
        &mut self,
        zone: &str,
        req: RollRequest,
    ) -> Result<KeysView, PublishError> {
        let signed = self
            .zones
            .get(zone)
            .ok_or_else(|| PublishError::UnknownZone(zone.to_owned()))?;
        let now = u64::from(self.clock.now());
        let current = self.rolls.get(zone).map(|r| r.roll.clone());
        if let Some(running) = current.as_ref().filter(|r| r.running()) {
            if !req.revoke_old {
                return Err(RollRefusal::Running {
                    step: running.step.as_str(),
                }
                .into());
            }
            if running.algorithm_change {
                let from = u8::from(signed.signer().key().algorithm);
                let to = signed
                    .signer()
                    .keys()
                    .other()
                    .map_or(from, |k| u8::from(k.algorithm));
                return Err(RollRefusal::Algorithm { from, to }.into());
            }
            let mut next = running.clone();
            next.revoke_old = true;
            if next.step == Step::Publish {
                next = next
                    .advance(u64::MAX / 2, &signed.roll_timings())
                    .expect("a publish step always advances");
                next.step_at = now;
            }
            tracing::warn!(
                zone,
                step = next.step.as_str(),
                "key rollover hurried: the old key will be revoked as soon as the new one signs everything"
            );
            self.set_roll(zone, next).map_err(failed)?;
            return Ok(self.zones[zone].snapshot.keys.as_ref().clone());
        }
        let key = signed.signer().key();
        let from = u8::from(key.algorithm);
        let algorithm = req.algorithm.unwrap_or(key.algorithm);
        let to = u8::from(algorithm);
        if from != to && req.revoke_old {
            return Err(RollRefusal::Algorithm { from, to }.into());
        }
        let active = current
            .map(|r| r.active)
            .unwrap_or_else(|| first_key_file(zone));
        let taken = [key.key_tag, key.revoked_tag];
        let new = ZoneKey::generate(
            &self.opener.data_dir,
            zone,
            &signed.snapshot.apex,
            algorithm,
            &taken,
        )
        .map_err(|e| failed(DnssecError::from(e).into()))?;
        tracing::info!(
            zone,
            new_key = new.key_tag,
            old_key = key.key_tag,
            "key rollover started: the new key is published"
        );
        let roll = if from == to {
            Roll::start(active, new.file_name(), req.revoke_old, req.wait_ds, now)
        } else {
            tracing::info!(
                zone,
                from,
                to,
                "an algorithm change: the new key signs the data first"
            );
            Roll::start_algorithm_change(active, new.file_name(), req.wait_ds, now)
        };
        self.set_roll(zone, roll).map_err(failed)?;
        Ok(self.zones[zone].snapshot.keys.as_ref().clone())
    }

    /// Records that the parent's DS names the new key, as `herald key roll --wait-ds` saw it,
    /// with the TTL it is served with: the old key may go once that DS is in every cache.
    pub(super) fn ds_seen(&mut self, zone: &str, ttl: u32) -> Result<KeysView, PublishError> {
        if !self.zones.contains_key(zone) {
            return Err(PublishError::UnknownZone(zone.to_owned()));
        }
        let mut roll = match self.rolls.get(zone) {
            Some(r) if r.roll.running() && r.roll.wait_ds => r.roll.clone(),
            _ => return Err(RollRefusal::NotWaiting.into()),
        };
        let now = u64::from(self.clock.now());
        if roll.ds_seen_at.is_none() {
            roll.ds_seen_at = Some(now + u64::from(ttl));
            tracing::info!(zone, ttl, "key rollover: the parent's DS names the new key");
            self.note_roll(zone, roll).map_err(failed)?;
        }
        Ok(self.zones[zone].snapshot.keys.as_ref().clone())
    }

    /// Moves every running rollover on whose time has come; called with each refresh step.
    pub(super) fn roll_tick(&mut self) {
        let names: Vec<String> = self
            .rolls
            .iter()
            .filter(|(_, r)| r.roll.running())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(zone) = self.zones.get(&name) else {
                continue;
            };
            let now = u64::from(self.clock.now());
            let zr = &self.rolls[&name];
            let mut roll = zr.roll.clone();
            if matches!(roll.step, Step::Switch | Step::Sigs)
                && roll.resigned_at.is_none()
                && zone.sweeps() > zr.mark
            {
                tracing::info!(zone = %name, "key rollover: every RRset is signed by the new key");
                roll.resigned_at = Some(now);
            }
            let next = roll.advance(now, &zone.roll_timings());
            let changed = next.is_some() || roll != zr.roll;
            if !changed {
                continue;
            }
            let result = match next {
                Some(next) => {
                    tracing::info!(zone = %name, step = next.step.as_str(), "key rollover: next step");
                    self.set_roll(&name, next)
                }
                None => self.note_roll(&name, roll),
            };
            if let Err(e) = result {
                tracing::error!(zone = %name, error = &e as &dyn std::error::Error, "key rollover step failed; retrying");
            }
        }
    }

    /// Records a change of `zone`'s rollover that does not change its keys.
    fn note_roll(&mut self, zone: &str, roll: Roll) -> Result<(), WriteError> {
        self.store.write(|w| w.set_key_roll(zone, &row_of(&roll)))?;
        let signed = self.zones.get_mut(zone).expect("the zone is served");
        signed.snapshot.keys = Arc::new(view(signed, Some(&roll)));
        let mark = self.rolls.get(zone).map_or(0, |r| r.mark);
        self.rolls.insert(zone.to_owned(), ZoneRoll { roll, mark });
        self.swap(&[zone.to_owned()]);
        Ok(())
    }

    /// Makes `roll` the zone's state: its keys sign, its row is stored, with a new serial.
    fn set_roll(&mut self, zone: &str, roll: Roll) -> Result<(), WriteError> {
        let now = self.clock.now();
        let served = &self.zones[zone];
        let keys = load_keys(&self.opener.data_dir, &served.snapshot.apex, &roll)
            .map_err(DnssecError::from)?;
        let signer = Arc::new(Signer::with_keys(keys, served.signer().policy().clone()));
        let mut staged = served.clone();
        let limits = self.limits;
        let stats = &*self.stats;
        self.store.write(|w| -> Result<(), WriteError> {
            let made = staged.set_signer(signer, now)?;
            keep(w, zone, &made, stats)?;
            w.set_key_roll(zone, &row_of(&roll))?;
            let serial = w.bump_serial(zone)?;
            let more = staged.finish(serial, now)?;
            keep(w, zone, &more, stats)?;
            record(w, &served.snapshot, &mut staged.snapshot, limits, now).map_err(WriteError::from)
        })?;
        staged.snapshot.keys = Arc::new(view(&staged, Some(&roll)));
        let mark = staged.sweeps();
        self.zones.insert(zone.to_owned(), staged);
        self.rolls.insert(zone.to_owned(), ZoneRoll { roll, mark });
        self.swap(&[zone.to_owned()]);
        Ok(())
    }
}

fn failed(e: WriteError) -> PublishError {
    PublishError::Failed(Arc::new(e))
}
