//! Rolling a zone's combined signing key (CSK): the steps, their timing, and which keys each
//! step publishes and signs with.
//!
//! Herald's zones have one CSK, so a rollover follows the CSK scheme of RFC 7583 §3.4: the
//! pre-publication of a ZSK roll (§3.2.1) joined with the double-KSK roll of the DS (§3.3.1).
//! The nodes pin the key itself as a trust anchor and follow it by RFC 5011, so the time the
//! new key must be published before it signs also covers their add hold-down (RFC 5011 §2.4.1,
//! RFC 7583 §3.3.4):
//!
//! | step | DNSKEY RRset | signed by | zone data signed by | CDS/CDNSKEY | next step after |
//! |---|---|---|---|---|---|
//! | `publish` | old, new | old, new | old | none | propagation + DNSKEY TTL + hold-down + 2 probes |
//! | `switch` | new, old | new, old | new, re-signed by the refresh sweep | new | the re-signing is complete, then propagation + the zone's largest TTL |
//! | `revoke` (with `--revoke-old`) | new, old with REVOKE | new, old (self-signed, RFC 5011 §2.1) | new | new | propagation + DNSKEY TTL + 2 probes |
//! | `done` | new | new | new | none | |
//!
//! A change of algorithm (13 to 15, or back) follows the conservative order of RFC 6781
//! §4.1.4, so that no validator ever sees an RRset without a signature of each algorithm of
//! the DNSKEY RRset (RFC 4035 §2.2): a `sigs` step first, in which every RRset gets the new
//! key's signature beside the old one's before the new key is published; the data stays
//! signed by both through `publish` and `switch`; an `unpublish` step removes the old DNSKEY
//! while its signatures stay; and only `done` drops them. Revoking the old key is not offered
//! with an algorithm change.
//!
//! | algorithm change | DNSKEY RRset | the zone's data | next step after |
//! |---|---|---|---|
//! | `sigs` | old | old and new, re-signed by the sweep | the re-signing, then propagation + the zone's largest TTL |
//! | `publish`, `switch` | as above | old and new | as above |
//! | `unpublish` | new | old and new | propagation + DNSKEY TTL |
//! | `done` | new | new, re-signed by the sweep | |
//!
//! "Probe" is the longest interval at which a node asks for the DNSKEY RRset (RFC 5011 §2.3, as
//! `herald watch` computes it): a node must see the new key twice, the hold-down apart, before
//! trusting it, and must see the revoked key once. Nothing here reads a clock or the store:
//! [`Roll::advance`] takes the time and gives the next state, and `crate::publish` makes it
//! durable and re-signs.

use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSKEY;

use super::keys::ZoneKey;
use crate::zone::snapshot::KeyView;

/// A step of a rollover; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Algorithm change only: the new key signs the data too, unpublished.
    Sigs,
    Publish,
    Switch,
    Revoke,
    /// Algorithm change only: the old key's DNSKEY is gone, its signatures stay.
    Unpublish,
    Done,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Sigs => "sigs",
            Step::Publish => "publish",
            Step::Switch => "switch",
            Step::Revoke => "revoke",
            Step::Unpublish => "unpublish",
            Step::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sigs" => Step::Sigs,
            "publish" => Step::Publish,
            "switch" => Step::Switch,
            "revoke" => Step::Revoke,
            "unpublish" => Step::Unpublish,
            "done" => Step::Done,
            _ => return None,
        })
    }
}

/// The waits of a rollover, in seconds, from the zone's policy and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// TTL of the DNSKEY RRset.
    pub dnskey_ttl: u32,
    /// The largest TTL of any signed RRset of the zone.
    pub max_ttl: u32,
    /// How long a change takes to reach every secondary.
    pub propagation: u32,
    /// The nodes' RFC 5011 add hold-down.
    pub holddown: u32,
}

impl Timings {
    /// The longest interval between two DNSKEY probes of a node (RFC 5011 §2.3 with Herald's
    /// floor: an hour, or a tenth of the hold-down when that is shorter).
    pub fn probe(&self) -> u64 {
        let floor = (self.holddown / 10).clamp(1, 3600);
        u64::from(floor.max(self.dnskey_ttl / 2))
    }

    /// How long the new key is published before it signs.
    pub fn publish_wait(&self) -> u64 {
        u64::from(self.propagation)
            + u64::from(self.dnskey_ttl)
            + u64::from(self.holddown)
            + 2 * self.probe()
    }

    /// How long the old key stays published after the new one has re-signed everything: until
    /// every answer signed by the old key has left the caches.
    pub fn retire_wait(&self) -> u64 {
        u64::from(self.propagation) + u64::from(self.max_ttl.max(self.dnskey_ttl))
    }

    /// How long the revoked old key stays published: every node must see it once.
    pub fn revoke_wait(&self) -> u64 {
        u64::from(self.propagation) + u64::from(self.dnskey_ttl) + 2 * self.probe()
    }
}

/// A zone's rollover state, as the store keeps it (`key_roll`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roll {
    /// The key file that signs the zone data.
    pub active: String,
    /// The other key file published: incoming in `publish`, outgoing after.
    pub other: Option<String>,
    pub step: Step,
    /// End with `revoke` rather than a silent removal.
    pub revoke_old: bool,
    pub started_at: u64,
    pub step_at: u64,
    /// When the zone was first found completely re-signed by the new key (in `switch`).
    pub resigned_at: Option<u64>,
    /// Whether the old key stays until the parent's DS names the new one (`--wait-ds`).
    pub wait_ds: bool,
    /// From when the parent's new DS is in every cache: when it was seen, plus its TTL.
    pub ds_seen_at: Option<u64>,
    /// The new key has another algorithm: double signatures (RFC 6781 §4.1.4).
    pub algorithm_change: bool,
}

impl Roll {
    /// A new rollover from `active` to `new`, started at `now`.
    pub fn start(active: String, new: String, revoke_old: bool, wait_ds: bool, now: u64) -> Self {
        Self {
            active,
            other: Some(new),
            step: Step::Publish,
            revoke_old,
            started_at: now,
            step_at: now,
            resigned_at: None,
            wait_ds,
            ds_seen_at: None,
            algorithm_change: false,
        }
    }

    /// A new rollover to a key of another algorithm, which starts by signing the data with
    /// both keys before the new one is published.
    pub fn start_algorithm_change(active: String, new: String, wait_ds: bool, now: u64) -> Self {
        Self {
            step: Step::Sigs,
            algorithm_change: true,
            ..Self::start(active, new, false, wait_ds, now)
        }
    }

    /// Whether the switch still waits for the parent's DS.
    pub fn waits_for_ds(&self) -> bool {
        self.wait_ds && self.ds_seen_at.is_none()
    }

    /// Whether a rollover is under way.
    pub fn running(&self) -> bool {
        self.step != Step::Done
    }

    /// When the next step may begin; `None` when done, or when the switch still waits for its
    /// re-signing to complete.
    pub fn next_at(&self, t: &Timings) -> Option<u64> {
        match self.step {
            // The double-signed data replaces the single-signed data in the caches.
            Step::Sigs => self.resigned_at.map(|r| r + t.retire_wait()),
            Step::Publish => Some(self.step_at + t.publish_wait()),
            Step::Switch if self.waits_for_ds() => None,
            // The old key's signatures leave the caches; so does the old DS, by then.
            Step::Switch => self
                .resigned_at
                .map(|r| (r + t.retire_wait()).max(self.ds_seen_at.unwrap_or(0))),
            Step::Revoke => Some(self.step_at + t.revoke_wait()),
            // The old DNSKEY leaves the caches.
            Step::Unpublish => {
                Some(self.step_at + u64::from(t.propagation) + u64::from(t.dnskey_ttl))
            }
            Step::Done => None,
        }
    }

    /// The next state, if its time has come at `now`.
    pub fn advance(&self, now: u64, t: &Timings) -> Option<Roll> {
        if self.next_at(t).is_none_or(|at| now < at) {
            return None;
        }
        let mut next = self.clone();
        next.step_at = now;
        match self.step {
            Step::Sigs => next.step = Step::Publish,
            Step::Publish => {
                // The new key signs; the old one stays published beside it.
                next.step = Step::Switch;
                next.active = self.other.clone()?;
                next.other = Some(self.active.clone());
                next.resigned_at = None;
            }
            Step::Switch if self.revoke_old => next.step = Step::Revoke,
            Step::Switch if self.algorithm_change => next.step = Step::Unpublish,
            Step::Switch | Step::Revoke | Step::Unpublish => {
                next.step = Step::Done;
                next.other = None;
            }
            Step::Done => return None,
        }
        Some(next)
    }
}

/// The keys of a zone at one step: which signs the data, which else is published or signs,
/// and whether CDS/CDNSKEY records name the signing key.
#[derive(Debug, Clone)]
pub struct KeySet {
    signing: Arc<ZoneKey>,
    /// The other key of a rollover, if the step still has one.
    other: Option<Arc<ZoneKey>>,
    /// Whether `other` is in the DNSKEY RRset (not in `sigs` and `unpublish`).
    other_published: bool,
    /// Whether `other` is published revoked (`revoke`).
    other_revoked: bool,
    /// Whether `other` signs the data too (an algorithm change).
    double: bool,
    cds: bool,
    step: Step,
}

impl KeySet {
    /// A zone with one key and no rollover.
    pub fn single(key: Arc<ZoneKey>) -> Self {
        Self {
            signing: key,
            other: None,
            other_published: false,
            other_revoked: false,
            double: false,
            cds: false,
            step: Step::Done,
        }
    }

    /// The keys of `step`, given the key files it names, loaded. An algorithm change shows in
    /// the keys: while both are there, both sign the data.
    pub fn at(step: Step, active: Arc<ZoneKey>, other: Option<Arc<ZoneKey>>) -> Self {
        let other = other.filter(|_| step != Step::Done);
        let double = other
            .as_ref()
            .is_some_and(|o| o.algorithm != active.algorithm);
        Self {
            signing: active,
            other,
            other_published: !matches!(step, Step::Sigs | Step::Unpublish),
            other_revoked: step == Step::Revoke,
            double,
            cds: matches!(step, Step::Switch | Step::Revoke | Step::Unpublish),
            step,
        }
    }

    /// The published keys (and one that signs unpublished) as the API shows them.
    pub fn view(&self) -> Vec<KeyView> {
        let one = |k: &ZoneKey, tag: u16, state: &'static str| KeyView {
            tag,
            algorithm: u8::from(k.algorithm),
            state,
            file: k.file_name(),
        };
        let mut out = vec![one(&self.signing, self.signing.key_tag, "signing")];
        if let Some(k) = &self.other {
            out.push(match self.step {
                Step::Revoke => one(k, k.revoked_tag, "revoked"),
                Step::Sigs => one(k, k.key_tag, "signing-unpublished"),
                Step::Publish => one(k, k.key_tag, "incoming"),
                Step::Unpublish => one(k, k.key_tag, "unpublished"),
                _ => one(k, k.key_tag, "retiring"),
            });
        }
        out
    }

    /// The key that signs the zone data (with an algorithm change, one of two).
    pub fn signing(&self) -> &ZoneKey {
        &self.signing
    }

    /// The other key of a rollover.
    pub fn other(&self) -> Option<&ZoneKey> {
        self.other.as_deref()
    }

    /// Every key of the DNSKEY RRset, as published.
    pub fn dnskeys(&self) -> Vec<DNSKEY> {
        let mut keys = vec![self.signing.dnskey.clone()];
        if let Some(k) = self.other.as_ref().filter(|_| self.other_published) {
            keys.push(if self.other_revoked {
                k.revoked.clone()
            } else {
                k.dnskey.clone()
            });
        }
        keys
    }

    /// The keys that sign the zone's data, each with its tag: the signing key, and during an
    /// algorithm change the other one too.
    pub fn data_signers(&self) -> Vec<(&ZoneKey, u16)> {
        let mut out = vec![(&*self.signing, self.signing.key_tag)];
        if let Some(k) = self.other.as_ref().filter(|_| self.double) {
            out.push((k, k.key_tag));
        }
        out
    }

    /// The keys that sign the DNSKEY RRset (and CDS/CDNSKEY), each with the tag it signs
    /// under: every published key, a revoked one under its revoked tag (RFC 5011 §2.1), and
    /// every key that signs the data.
    pub fn apex_signers(&self) -> Vec<(&ZoneKey, u16)> {
        let mut out = vec![(&*self.signing, self.signing.key_tag)];
        if let Some(k) = &self.other
            && (self.other_published || self.double)
        {
            out.push((
                k,
                if self.other_revoked {
                    k.revoked_tag
                } else {
                    k.key_tag
                },
            ));
        }
        out
    }

    /// The key CDS and CDNSKEY name, when they are published.
    pub fn cds_key(&self) -> Option<&ZoneKey> {
        self.cds.then_some(&*self.signing)
    }

    /// Whether a stored RRSIG RRset, made by the keys (`algorithm`, `tag`) of `by`, may still
    /// be served: each by a key that is published unrevoked or signs the data, and one by each
    /// algorithm of the DNSKEY RRset (RFC 4035 §2.2).
    pub fn accepts(&self, by: &[(u8, u16)]) -> bool {
        let is =
            |k: &ZoneKey, (alg, tag): (u8, u16)| u8::from(k.algorithm) == alg && k.key_tag == tag;
        let usable = |part: (u8, u16)| {
            is(&self.signing, part)
                || self.other.as_ref().is_some_and(|k| {
                    is(k, part) && ((self.other_published && !self.other_revoked) || self.double)
                })
        };
        let mut needed = vec![u8::from(self.signing.algorithm)];
        if let Some(k) = self
            .other
            .as_ref()
            .filter(|_| self.other_published && !self.other_revoked)
        {
            needed.push(u8::from(k.algorithm));
        }
        !by.is_empty()
            && by.iter().all(|p| usable(*p))
            && needed.iter().all(|alg| by.iter().any(|(a, _)| a == alg))
    }

    /// Whether an RRSIG RRset made by `by` is exactly what the data signers make now; if not,
    /// the refresh sweep makes it again.
    pub fn is_current(&self, by: &[(u8, u16)]) -> bool {
        let want = self.data_signers();
        by.len() == want.len()
            && want
                .iter()
                .all(|(k, tag)| by.contains(&(u8::from(k.algorithm), *tag)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timings = Timings {
        dnskey_ttl: 3600,
        max_ttl: 3600,
        propagation: 3600,
        holddown: 30 * 86_400,
    };

    #[test]
    fn steps_follow_each_other_at_their_times() {
        let r = Roll::start("a.key".into(), "b.key".into(), false, false, 1000);
        assert_eq!(r.next_at(&T), Some(1000 + 3600 + 3600 + 30 * 86_400 + 7200));
        assert!(r.advance(1000 + T.publish_wait() - 1, &T).is_none());
        let s = r.advance(1000 + T.publish_wait(), &T).unwrap();
        assert_eq!(s.step, Step::Switch);
        assert_eq!(
            (s.active.as_str(), s.other.as_deref()),
            ("b.key", Some("a.key"))
        );
        // The switch waits for the re-signing, however long.
        assert_eq!(s.next_at(&T), None);
        assert!(s.advance(u64::MAX / 2, &T).is_none());
        let s = Roll {
            resigned_at: Some(5_000_000),
            ..s
        };
        assert!(s.advance(5_000_000 + 7199, &T).is_none());
        let d = s.advance(5_000_000 + 7200, &T).unwrap();
        assert_eq!(
            (d.step, d.active.as_str(), d.other.clone()),
            (Step::Done, "b.key", None)
        );
        assert!(!d.running());
        assert!(d.advance(u64::MAX / 2, &T).is_none());
    }

    #[test]
    fn revoking_adds_a_step_that_every_node_sees() {
        let r = Roll::start("a.key".into(), "b.key".into(), true, false, 0);
        let s = r.advance(T.publish_wait(), &T).unwrap();
        let s = Roll {
            resigned_at: Some(s.step_at),
            ..s
        };
        let v = s.advance(s.step_at + T.retire_wait(), &T).unwrap();
        assert_eq!((v.step, v.other.as_deref()), (Step::Revoke, Some("a.key")));
        assert!(v.advance(v.step_at + T.revoke_wait() - 1, &T).is_none());
        let d = v.advance(v.step_at + T.revoke_wait(), &T).unwrap();
        assert_eq!(d.step, Step::Done);
    }

    #[test]
    fn waiting_for_the_ds_holds_the_old_key_until_the_new_ds_is_cached() {
        let r = Roll::start("a.key".into(), "b.key".into(), false, true, 0);
        let s = r.advance(T.publish_wait(), &T).unwrap();
        let s = Roll {
            resigned_at: Some(s.step_at),
            ..s
        };
        assert!(s.waits_for_ds());
        assert_eq!(s.next_at(&T), None);
        assert!(s.advance(u64::MAX / 2, &T).is_none());
        // Seen early: the retire wait still applies.
        let seen = Roll {
            ds_seen_at: Some(s.step_at + 1),
            ..s.clone()
        };
        assert_eq!(seen.next_at(&T), Some(s.step_at + T.retire_wait()));
        // Seen late, with a long TTL: until the new DS is in every cache.
        let late = Roll {
            ds_seen_at: Some(s.step_at + 86_400),
            ..s
        };
        assert_eq!(late.next_at(&T), Some(late.step_at + 86_400));
        assert_eq!(
            late.advance(late.step_at + 86_400, &T).unwrap().step,
            Step::Done
        );
    }

    #[test]
    fn probes_scale_down_with_a_short_holddown() {
        let fast = Timings {
            dnskey_ttl: 2,
            max_ttl: 2,
            propagation: 1,
            holddown: 10,
        };
        assert_eq!(fast.probe(), 1);
        assert_eq!(fast.publish_wait(), 1 + 2 + 10 + 2);
        assert_eq!(T.probe(), 3600);
        for s in ["publish", "switch", "revoke", "done"] {
            assert_eq!(Step::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(Step::parse("other"), None);
    }
}
