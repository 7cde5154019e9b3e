//! Following the zone's key rollovers: automated updates of DNSSEC trust anchors (RFC 5011).
//!
//! The trust-anchor file only bootstraps a node. From then on the node keeps its own list of
//! the zone's secure entry point keys (SEP zone keys: flags 257, or 385 when revoked) in its
//! state file, and moves each through the states of RFC 5011 §4 whenever it sees the zone's
//! DNSKEY RRset validated by a key it already trusts:
//!
//! - a key seen for the first time is `add_pend`: not trusted yet (RFC 5011 §2.4.1);
//! - it becomes `valid` (a trust anchor) once it has been in validated RRsets for the add
//!   hold-down (`--holddown`, 30 days by default, as RFC 5011 §2.4.1 asks), and in at least
//!   two of them before the one that makes it trusted ("at least two validated DNSKEY RRSets
//!   that contain the new key MUST be seen by the resolver prior to the key's acceptance",
//!   §2.4.1): a node that saw the key once and then nothing for the whole hold-down looks once
//!   more first. A key that leaves the RRset before then is forgotten, so an attacker who once
//!   got a key into a signed RRset must keep it there, unnoticed, for the whole hold-down;
//! - a `valid` key that leaves the RRset is `missing`: still trusted, until it comes back or is
//!   revoked;
//! - a trusted key published with the REVOKE bit that signs the RRset with that revoked form
//!   (its self-signature, RFC 5011 §2.1) is `revoked` at once and never trusted again, nor
//!   used for anything else: not even to check answers when the zone publishes it again
//!   without the REVOKE bit in an RRset another trusted key validates ("MUST NOT be used to
//!   validate any other response", §2.1). A revoked key nobody trusted is ignored. A revoked
//!   key is dropped from the list after the remove hold-down (one more hold-down, RFC 5011
//!   §2.4.2), once the zone no longer publishes it and no trust anchor names it, neither a
//!   DNSKEY nor a DS record of the trust-anchor file (whose stale copy would otherwise make it
//!   trusted again).
//!
//! A DNSKEY RRset that no trusted key validates changes nothing but revocations (a revocation
//! is signed by the revoked key itself, the one key whose word on it counts): a key that was
//! never in a validated RRset is never even recorded.
//!
//! Nor does an older RRset: the state keeps the inception of the newest signature that
//! validated a DNSKEY RRset, and an RRset whose newest trusted signature was made before it
//! (replayed by an attacker, or served by a secondary that has not caught up) still supplies
//! zone keys for the check at hand, but neither adds, forgets, counts nor demotes any key,
//! and is not kept as the validated key set. Replaying last week's still-valid RRset, the one
//! without the new key, thus cannot restart a pending key's hold-down, nor make a trusted key
//! `missing`.
//!
//! The keys trusted are the `valid` and `missing` ones, together with the anchor file's DNSKEY
//! records and the zone keys that match its DS records, except any the list marks revoked.
//! Answers are never checked with these directly: they check the zone's DNSKEY RRset, and the
//! answers are checked with that RRset's zone keys, because during a rollover data is signed
//! by a key that is published, and validated, but not yet a trust anchor.
//!
//! The validated zone keys are kept with the state until the next probe (RFC 5011 §2.3):
//! MAX(floor, MIN(15 days, half the DNSKEY RRset's original TTL, half the time left to its
//! RRSIG's expiration, a tenth of the hold-down)), where the floor is an hour, or a tenth of a
//! shorter hold-down (at least a second): hourly for Herald's defaults. Between probes a check
//! is the one TXT query; a probe adds the DNSKEY query. Kept in the state file, the schedule
//! also holds for `herald watch --once` run by a timer.
//!
//! What an operator needs to know:
//! - a node away (or not yet started) for the whole of a rollover cannot follow it: its
//!   checks fail as bogus and say so, and it needs a fresh trust anchor (`herald key show`) or
//!   a state file from a node that followed;
//! - a rollover must keep the new key published, next to the old one, for at least the
//!   nodes' hold-down plus the DNSKEY TTL before the old key stops signing the DNSKEY RRset;
//! - a key that left the zone without being revoked stays trusted (`missing`), as RFC 5011
//!   wants; revoke a key that may be compromised (`herald key roll --revoke-old`).
//!
//! Times in the state file later than the check's clock (a clock set back, a file copied from
//! a node whose clock ran ahead) are brought back to that clock when the state is next used,
//! so that no hold-down or removal is put off to a time that may never come; a newest
//! inception later than any signature could be now is forgotten, or every RRset would be an
//! older one.
//!
//! Deviations from RFC 5011, both for hold-downs of seconds in tests: the add hold-down is the
//! configured one, not the longer of it and the RRset's TTL (§2.4.1; with the default 30 days
//! no Herald TTL comes near it); and probes come at least ten times per hold-down (§2.3, see
//! [`probe_interval`]).

use std::fmt;

use hickory_proto::dnssec::PublicKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::anchor::{TrustAnchors, dnskey_rdata};
use super::validate::{Bogus, Context, serial_after, verify_revocation, verify_rrset};

/// The REVOKE flag of a DNSKEY (bit 8, RFC 5011 §7).
pub const REVOKE: u16 = 0x0080;

/// RFC 5011 §2.4.1's add hold-down, and Herald's default.
pub const DEFAULT_HOLDDOWN: u32 = 30 * 86_400;

/// The longest time between probes (RFC 5011 §2.3).
const MAX_PROBE_INTERVAL: u32 = 15 * 86_400;

/// Where a tracked key stands (RFC 5011 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Seen in a validated RRset; waiting for the add hold-down.
    AddPend,
    /// A trust anchor.
    Valid,
    /// A trust anchor that the zone no longer publishes.
    Missing,
    /// Revoked by its own signature: never trusted again.
    Revoked,
}

impl KeyState {
    /// Whether a key in this state validates the DNSKEY RRset.
    pub fn trusted(self) -> bool {
        matches!(self, KeyState::Valid | KeyState::Missing)
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyState::AddPend => "add_pend",
            KeyState::Valid => "valid",
            KeyState::Missing => "missing",
            KeyState::Revoked => "revoked",
        })
    }
}

/// A DNSKEY kept in the state file as its presentation RDATA (`257 3 13 <base64>`), which is
/// what `herald key show` prints after the class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dnskey(pub DNSKEY);

impl From<Dnskey> for String {
    fn from(k: Dnskey) -> String {
        k.0.to_string()
    }
}

impl TryFrom<String> for Dnskey {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        dnskey_rdata(&fields)
            .map(Dnskey)
            .map_err(|e| format!("DNSKEY {text:?}: {e}"))
    }
}

/// One SEP key the node tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedKey {
    /// The key in its unrevoked form: a key is the same key with or without the REVOKE bit
    /// (RFC 5011 §2.1), so it is known by its algorithm and public key alone.
    pub dnskey: Dnskey,
    /// Its key tag in that form, for people reading the file (a revoked key's RRSIGs carry
    /// another tag, usually this one plus 128).
    pub tag: u16,
    pub state: KeyState,
    /// Unix seconds: when a validated RRset first showed it.
    pub first_seen: u64,
    /// Unix seconds: when it entered its state.
    pub last_change: u64,
    /// How many validated DNSKEY RRsets showed it (counted until it is trusted: that is what
    /// the hold-down needs).
    pub seen: u32,
}

/// The zone keys of the DNSKEY RRset validated last, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedKeys {
    /// Zone keys without the REVOKE bit: the keys answers may be signed with.
    pub dnskeys: Vec<Dnskey>,
    /// Unix seconds: when the RRset was validated.
    pub at: u64,
    /// Unix seconds: when to fetch the DNSKEY RRset again (RFC 5011 §2.3).
    pub next_probe: u64,
    /// Unix seconds: when the signature that validated it expires.
    pub expires: u64,
}

/// A node's RFC 5011 view of one zone: the keys it tracks and the validated key set. Kept in
/// the state file; keep it between checks. Read from a file, it must make sense: each key
/// listed once, in its unrevoked form, as a SEP zone key, under its own tag; anything else is
/// refused rather than guessed at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TrustStateFile")]
pub struct TrustState {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<TrackedKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<ValidatedKeys>,
    /// Unix seconds: the inception of the newest signature by a trusted key that validated a
    /// DNSKEY RRset. An RRset signed only before it is an older one and changes no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnskey_inception: Option<u32>,
}

/// [`TrustState`] as read, before it is checked.
#[derive(Deserialize)]
struct TrustStateFile {
    #[serde(default)]
    keys: Vec<TrackedKey>,
    #[serde(default)]
    validated: Option<ValidatedKeys>,
    #[serde(default)]
    dnskey_inception: Option<u32>,
}

impl TryFrom<TrustStateFile> for TrustState {
    type Error = String;

    fn try_from(file: TrustStateFile) -> Result<Self, String> {
        for (i, entry) in file.keys.iter().enumerate() {
            let key = &entry.dnskey.0;
            if key.revoke() {
                return Err(format!(
                    "tracked key {key} has the REVOKE bit; keys are kept in their unrevoked form"
                ));
            }
            if !tracked(key) {
                return Err(format!("tracked key {key} is not a SEP zone key"));
            }
            if entry.tag != tag(key) {
                return Err(format!(
                    "tracked key {key} is listed with tag {}; its tag is {}",
                    entry.tag,
                    tag(key)
                ));
            }
            if file.keys[..i].iter().any(|t| same_key(&t.dnskey.0, key)) {
                return Err(format!("key {} is listed twice", entry.tag));
            }
        }
        Ok(TrustState {
            keys: file.keys,
            validated: file.validated,
            dnskey_inception: file.dnskey_inception,
        })
    }
}

/// One transition of a tracked key, with the reason that is logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The key's tag in its unrevoked form.
    pub tag: u16,
    pub algorithm: u8,
    /// `None`: the key was not tracked before.
    pub from: Option<KeyState>,
    /// `None`: the key is no longer tracked.
    pub to: Option<KeyState>,
    pub reason: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Change {
    /// Logs the change at info level, for `herald check` and `herald watch`.
    pub fn log(&self, zone: &str) {
        tracing::info!(
            zone,
            tag = self.tag,
            algorithm = self.algorithm,
            from = %self.from.map_or("none".into(), |s| s.to_string()),
            to = %self.to.map_or("none".into(), |s| s.to_string()),
            "trust anchor: {}",
            self.reason
        );
    }
}

/// Why the DNSKEY RRset cannot be used.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("the DNSKEY answer for {0} holds no DNSKEY records")]
    NoKeys(Box<Name>),
    /// None of the keys this node trusts signs the RRset, nor is in it.
    #[error(
        "no trusted key signs the DNSKEY RRset of {zone} (trusted: {}; the zone's keys: {}): {}",
        list(trusted),
        list(published),
        if *revoked {
            "every key this node trusted was revoked; give it a fresh trust anchor \
             (herald key show)"
        } else {
            "the key was rolled while this node was away, or the trust anchor is not this \
             zone's; give it a fresh trust anchor (herald key show)"
        }
    )]
    Untrusted {
        zone: Box<Name>,
        /// The trusted keys' tags (DS anchors as `DS <tag>`).
        trusted: Vec<String>,
        /// The tags of the keys in the RRset.
        published: Vec<String>,
        /// Whether the node trusts nothing because everything it trusted was revoked.
        revoked: bool,
    },
    /// A trusted key is there, but its signature does not hold.
    #[error("the DNSKEY RRset of {zone} is not validly signed by a trusted key")]
    Signature {
        zone: Box<Name>,
        #[source]
        problem: Bogus,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// One DNSKEY answer to take in.
pub struct Probe<'a> {
    /// The zone's apex.
    pub zone: &'a Name,
    /// The answer section: the DNSKEY RRset and its RRSIGs.
    pub answers: &'a [Record],
    pub anchors: &'a TrustAnchors,
    /// The add hold-down (and remove hold-down), in seconds.
    pub holddown: u32,
    /// Unix seconds.
    pub now: u32,
    /// Clock difference tolerated against signature times.
    pub skew: u32,
}

/// What a probe did.
#[derive(Debug)]
pub struct Observed {
    /// The transitions it made, in order (revocations count even when the RRset is refused).
    pub changes: Vec<Change>,
    /// The zone keys of the validated RRset, or why it was refused.
    pub result: Result<Vec<DNSKEY>, TrustError>,
}

/// A key's identity: algorithm and public key, whatever its flags (RFC 5011 §2.1).
fn same_key(a: &DNSKEY, b: &DNSKEY) -> bool {
    a.public_key().algorithm() == b.public_key().algorithm()
        && a.public_key().public_bytes() == b.public_key().public_bytes()
}

/// `key` without the REVOKE bit.
fn unrevoked(key: &DNSKEY) -> DNSKEY {
    DNSKEY::with_flags(key.flags() & !REVOKE, key.public_key().clone())
}

/// The key tag, 0 for a key whose RDATA cannot be encoded (never one that was received).
fn tag(key: &DNSKEY) -> u16 {
    key.calculate_key_tag().unwrap_or(0)
}

fn alg(key: &DNSKEY) -> u8 {
    u8::from(key.public_key().algorithm())
}

/// Only SEP zone keys are tracked: the keys a parent or an anchor points at (RFC 5011 §1,
/// RFC 4034 §2.1.1), and a key without the Zone Key bit could never validate anything.
fn tracked(key: &DNSKEY) -> bool {
    key.secure_entry_point() && key.zone_key()
}

/// `key 12345 (alg 13)`.
fn named(key: &DNSKEY) -> String {
    format!("key {} (alg {})", tag(key), alg(key))
}

/// RFC 5011 §2.3's probe interval, in seconds: MAX(floor, MIN(15 days, OrigTTL/2, time to
/// expiration/2, hold-down/10)). The floor is an hour, or a tenth of a shorter hold-down, and
/// at least a second. The hold-down/10 term is Herald's: it keeps several probes within one
/// hold-down whatever the TTL (RFC 5011's 15 days to 30 days gives two), so that a hold-down of
/// seconds, in tests, probes every second or so; with the default 30 days it is 3 days and
/// changes nothing for TTLs under 6 days.
pub fn probe_interval(original_ttl: u32, expires_in: u32, holddown: u32) -> u32 {
    let floor = (holddown / 10).clamp(1, 3600);
    MAX_PROBE_INTERVAL
        .min(original_ttl / 2)
        .min(expires_in / 2)
        .min(holddown / 10)
        .max(floor)
}

impl TrustState {
    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.validated.is_none() && self.dnskey_inception.is_none()
    }

    /// The validated zone keys, if they may still be used at `now` without a probe; never a
    /// key this state marks revoked (RFC 5011 §2.1), whatever the kept set says.
    pub fn fresh_keys(&self, now: u32) -> Option<Vec<DNSKEY>> {
        let v = self.validated.as_ref()?;
        let now = u64::from(now);
        // A clock set back to before the validation also asks again.
        (v.at <= now && now < v.next_probe && now < v.expires).then(|| {
            v.dnskeys
                .iter()
                .map(|k| k.0.clone())
                .filter(|k| !self.revoked(k))
                .collect()
        })
    }

    /// Whether this state marks `key` (either form) revoked.
    fn revoked(&self, key: &DNSKEY) -> bool {
        self.find(key).is_some_and(|t| t.state == KeyState::Revoked)
    }

    /// Takes a key just revoked out of the kept validated key set, at once: answers checked
    /// before the next probe must not be checked with it (RFC 5011 §2.1).
    fn drop_validated(&mut self, key: &DNSKEY) {
        if let Some(v) = &mut self.validated {
            v.dnskeys.retain(|k| !same_key(&k.0, key));
            if v.dnskeys.is_empty() {
                self.validated = None;
            }
        }
    }

    /// Brings times later than the check's clock back to it: a clock set back, or a state file
    /// from a node whose clock ran ahead, must not put off a hold-down or a removal
    /// indefinitely. An inception later than any signature that could verify now (the clock
    /// plus the skew) is forgotten: kept, it would make every RRset an older one until the
    /// zone signs past it; the next validated RRset sets it again.
    fn clamp(&mut self, now: u32, skew: u32) {
        let now64 = u64::from(now);
        for entry in &mut self.keys {
            entry.first_seen = entry.first_seen.min(now64);
            entry.last_change = entry.last_change.min(now64);
        }
        let latest = now.wrapping_add(skew);
        if let Some(i) = self.dnskey_inception
            && serial_after(i, latest)
        {
            self.dnskey_inception = None;
        }
    }

    /// The tracked entry of `key` (either form).
    fn find(&self, key: &DNSKEY) -> Option<&TrackedKey> {
        self.keys.iter().find(|t| same_key(&t.dnskey.0, key))
    }

    fn find_mut(&mut self, key: &DNSKEY) -> Option<&mut TrackedKey> {
        self.keys.iter_mut().find(|t| same_key(&t.dnskey.0, key))
    }

    /// The state of `key`: its entry's, or `valid` for a trust anchor the list does not hold.
    fn effective(&self, key: &DNSKEY, anchor: bool) -> Option<KeyState> {
        self.find(key)
            .map(|t| t.state)
            .or(anchor.then_some(KeyState::Valid))
    }

    /// The keys that may validate the DNSKEY RRset: `valid` and `missing` keys, the anchor
    /// file's keys and the published keys a DS anchor names, except revoked ones.
    pub fn trusted(
        &self,
        zone: &Name,
        anchors: &TrustAnchors,
        published: &[DNSKEY],
    ) -> Vec<DNSKEY> {
        let mut out: Vec<DNSKEY> = Vec::new();
        let listed = self
            .keys
            .iter()
            .filter(|t| t.state.trusted())
            .map(|t| t.dnskey.0.clone());
        let from_ds = published
            .iter()
            .map(unrevoked)
            .filter(|k| is_ds_anchor(zone, anchors, k));
        for key in listed.chain(anchors.dnskeys.iter().cloned()).chain(from_ds) {
            let revoked = self
                .find(&key)
                .is_some_and(|t| t.state == KeyState::Revoked);
            if !revoked && !out.iter().any(|k| same_key(k, &key)) {
                out.push(key);
            }
        }
        out
    }

    /// Takes in one DNSKEY answer (RFC 5011 §2.3 "active refresh"): applies revocations that
    /// their own keys signed, then, if a trusted key validates the RRset, the transitions of
    /// RFC 5011 §4 for every tracked key, and keeps the RRset's zone keys until the next probe.
    pub fn observe(&mut self, p: &Probe<'_>) -> Observed {
        let mut changes = Vec::new();
        self.clamp(p.now, p.skew);
        let now = u64::from(p.now);
        let rrset: Vec<&Record> = p
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY && r.name.eq_ignore_root(p.zone))
            .collect();
        let published: Vec<DNSKEY> = rrset
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        if published.is_empty() {
            return Observed {
                changes,
                result: Err(TrustError::NoKeys(Box::new(p.zone.clone()))),
            };
        }
        let cx = |keys| Context {
            qname: p.zone,
            zone: p.zone,
            keys,
            now: p.now,
            skew: p.skew,
        };

        // Revocations first (RFC 5011 §2.1, §4 "Valid/Missing → Revoked"): the revoked key's
        // own signature is the proof, whoever else signs; a revoked key not trusted is ignored.
        for key in published.iter().filter(|k| k.revoke() && tracked(k)) {
            let anchor = is_anchor(p.zone, p.anchors, &unrevoked(key));
            if !self.effective(key, anchor).is_some_and(KeyState::trusted) {
                continue;
            }
            if verify_revocation(&rrset, p.answers, key, &cx(std::slice::from_ref(key))).is_err() {
                continue;
            }
            let base = unrevoked(key);
            let reason = format!(
                "{} revoked by its own signature (RFC 5011 §2.1); never trusted again",
                named(&base)
            );
            let from = self.set(&base, KeyState::Revoked, now);
            self.drop_validated(&base);
            changes.push(change(&base, from, Some(KeyState::Revoked), reason));
        }

        let trusted = self.trusted(p.zone, p.anchors, &published);
        let verified =
            match verify_rrset(p.zone, RecordType::DNSKEY, &rrset, p.answers, &cx(&trusted)) {
                Ok(v) => v,
                Err(problem) => {
                    return Observed {
                        changes,
                        result: Err(self.refusal(p, &trusted, &published, problem)),
                    };
                }
            };

        // An RRset signed before the newest one taken in is an older one (replayed, or from a
        // lagging server): its zone keys may check this answer, but it changes no key.
        let older = self
            .dnskey_inception
            .is_some_and(|last| serial_after(last, verified.inception));
        if older {
            tracing::debug!(
                zone = %p.zone,
                inception = verified.inception,
                newest = self.dnskey_inception,
                "an older DNSKEY RRset than the newest seen; no key changes"
            );
            let zone_keys = self.zone_keys(&published);
            return Observed {
                changes,
                result: Ok(zone_keys),
            };
        }
        self.dnskey_inception = Some(verified.inception);

        // RFC 5011 §4 for every SEP key in the validated RRset.
        for key in published.iter().filter(|k| tracked(k) && !k.revoke()) {
            let anchor = is_anchor(p.zone, p.anchors, key);
            let holddown = u64::from(p.holddown);
            let Some(entry) = self.find_mut(key) else {
                if anchor {
                    let reason = format!("{} trusted: it is a trust anchor", named(key));
                    self.set(key, KeyState::Valid, now);
                    changes.push(change(key, None, Some(KeyState::Valid), reason));
                } else {
                    let reason = format!(
                        "{} seen for the first time; trusted after the hold-down at {}",
                        named(key),
                        utc(now + holddown)
                    );
                    self.set(key, KeyState::AddPend, now);
                    changes.push(change(key, None, Some(KeyState::AddPend), reason));
                }
                continue;
            };
            let reason = match entry.state {
                // RFC 5011 §2.4.1: the whole hold-down, and two validated RRsets with the key
                // before the one that makes it trusted.
                KeyState::AddPend => {
                    let before = entry.seen;
                    entry.seen = entry.seen.saturating_add(1);
                    let waited = now.saturating_sub(entry.first_seen);
                    if waited >= holddown && before >= 2 {
                        format!(
                            "{} trusted: seen for {} in {} validated DNSKEY RRsets",
                            named(key),
                            span(waited),
                            entry.seen
                        )
                    } else if anchor {
                        format!("{} trusted: it is a trust anchor", named(key))
                    } else {
                        continue;
                    }
                }
                KeyState::Missing => format!("{} published again; trusted as before", named(key)),
                // A revoked key stays revoked, even if the zone publishes it unrevoked again.
                KeyState::Valid | KeyState::Revoked => continue,
            };
            let from = entry.state;
            entry.state = KeyState::Valid;
            entry.last_change = now;
            changes.push(change(key, Some(from), Some(KeyState::Valid), reason));
        }

        // Tracked keys the RRset no longer holds (in either form).
        let mut kept = Vec::with_capacity(self.keys.len());
        for mut entry in std::mem::take(&mut self.keys) {
            let key = entry.dnskey.0.clone();
            let unrevoked_there = published.iter().any(|k| !k.revoke() && same_key(k, &key));
            let there = published.iter().any(|k| same_key(k, &key));
            match entry.state {
                KeyState::AddPend if !unrevoked_there => {
                    let reason = format!(
                        "{} no longer published before its hold-down ended; forgotten",
                        named(&key)
                    );
                    changes.push(change(&key, Some(KeyState::AddPend), None, reason));
                    continue;
                }
                KeyState::Valid if !unrevoked_there => {
                    entry.state = KeyState::Missing;
                    entry.last_change = now;
                    let reason = format!(
                        "{} no longer published; still trusted until it is revoked",
                        named(&key)
                    );
                    changes.push(change(
                        &key,
                        Some(KeyState::Valid),
                        Some(KeyState::Missing),
                        reason,
                    ));
                }
                // Never while a trust anchor, DNSKEY or DS, names it: it would be trusted again.
                KeyState::Revoked
                    if !there
                        && now.saturating_sub(entry.last_change) >= u64::from(p.holddown)
                        && !is_anchor(p.zone, p.anchors, &key) =>
                {
                    let reason = format!(
                        "{} removed: revoked {} ago and no longer published",
                        named(&key),
                        span(now.saturating_sub(entry.last_change))
                    );
                    changes.push(change(&key, Some(KeyState::Revoked), None, reason));
                    continue;
                }
                _ => {}
            }
            kept.push(entry);
        }
        self.keys = kept;

        let zone_keys = self.zone_keys(&published);
        let expires_in = verified.expiration.wrapping_sub(p.now);
        let expires_in = if (expires_in as i32) < 0 {
            0
        } else {
            expires_in
        };
        self.validated = Some(ValidatedKeys {
            dnskeys: zone_keys.iter().cloned().map(Dnskey).collect(),
            at: now,
            next_probe: now
                + u64::from(probe_interval(
                    verified.original_ttl,
                    expires_in,
                    p.holddown,
                )),
            expires: now + u64::from(expires_in),
        });
        Observed {
            changes,
            result: Ok(zone_keys),
        }
    }

    /// The keys of a validated RRset that answers may be signed with: zone keys without the
    /// REVOKE bit, and none that this state marks revoked, even published unrevoked again
    /// (RFC 5011 §2.1: a revoked key "MUST NOT be used to validate any other response").
    fn zone_keys(&self, published: &[DNSKEY]) -> Vec<DNSKEY> {
        published
            .iter()
            .filter(|k| k.zone_key() && !k.revoke() && !self.revoked(k))
            .cloned()
            .collect()
    }

    /// Puts `key` (unrevoked form) in `state` at `now`, adding it if new; its previous state.
    fn set(&mut self, key: &DNSKEY, state: KeyState, now: u64) -> Option<KeyState> {
        if let Some(entry) = self.find_mut(key) {
            let from = entry.state;
            entry.state = state;
            entry.last_change = now;
            return Some(from);
        }
        let key = unrevoked(key);
        self.keys.push(TrackedKey {
            tag: tag(&key),
            dnskey: Dnskey(key),
            state,
            first_seen: now,
            last_change: now,
            seen: 1,
        });
        None
    }

    /// Why no trusted key validates the RRset.
    fn refusal(
        &self,
        p: &Probe<'_>,
        trusted: &[DNSKEY],
        published: &[DNSKEY],
        problem: Bogus,
    ) -> TrustError {
        let zone = Box::new(p.zone.clone());
        // A trusted key is in the RRset: its signature is what failed.
        if published
            .iter()
            .any(|k| !k.revoke() && trusted.iter().any(|t| same_key(t, k)))
        {
            return TrustError::Signature { zone, problem };
        }
        let mut names: Vec<String> = trusted.iter().map(|k| tag(k).to_string()).collect();
        names.extend(
            p.anchors
                .ds
                .iter()
                .filter(|ds| {
                    !published
                        .iter()
                        .any(|k| ds.covers(p.zone, &unrevoked(k)).unwrap_or(false))
                })
                .map(|ds| format!("DS {}", ds.key_tag())),
        );
        TrustError::Untrusted {
            zone,
            trusted: names,
            published: published
                .iter()
                .map(|k| {
                    if k.revoke() {
                        format!("{} (revoked)", tag(k))
                    } else {
                        tag(k).to_string()
                    }
                })
                .collect(),
            revoked: trusted.is_empty() && self.keys.iter().any(|t| t.state == KeyState::Revoked),
        }
    }
}

/// Whether `key` (unrevoked form) is a trust anchor: in the anchor file, or named by its DS.
fn is_anchor(zone: &Name, anchors: &TrustAnchors, key: &DNSKEY) -> bool {
    anchors.dnskeys.iter().any(|a| same_key(a, key)) || is_ds_anchor(zone, anchors, key)
}

/// Whether a DS anchor names `key` (the digest covers the flags: the unrevoked form).
fn is_ds_anchor(zone: &Name, anchors: &TrustAnchors, key: &DNSKEY) -> bool {
    anchors
        .ds
        .iter()
        .any(|ds| ds.covers(zone, key).unwrap_or(false))
}

fn change(key: &DNSKEY, from: Option<KeyState>, to: Option<KeyState>, reason: String) -> Change {
    Change {
        tag: tag(&unrevoked(key)),
        algorithm: alg(key),
        from,
        to,
        reason,
    }
}

/// A span of seconds in its two largest units: `30d`, `2d 3h`, `1m 5s`, `2s`.
fn span(secs: u64) -> String {
    let units = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, (unit, size)| {
            let n = *left / size;
            *left %= size;
            Some((n, unit))
        })
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

/// Unix seconds as `2026-11-25 08:00:00 UTC` (days to civil date: H. Hinnant's algorithm, to
/// spare a date crate for one log line).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests;
