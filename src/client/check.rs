//! One check: ask each server in turn until one gives a trustworthy answer.
//!
//! Answers are checked with the zone keys of a DNSKEY RRset that a trusted key validated
//! ([`super::trust`]), never with the trust anchors directly: during a key rollover the zone
//! signs with a key that is published and validated but not yet a trust anchor. That key set
//! is kept in the trust state until the next RFC 5011 probe, so the DNSKEY RRset is fetched (one
//! more query, to the same server) only when no validated set is kept, when the probe is due,
//! or when an answer is signed by a key the set does not hold. That last look is taken once
//! per check, and once per server at most: a server whose DNSKEY answer does not validate
//! (a broken or hostile one, asked first) does not use it up for the servers after it.
//!
//! A DNSKEY RRset older than the newest one taken in (a secondary that has not caught up)
//! checks the answer at hand but is not kept ([`super::trust`]): the next check looks again.
//!
//! Any response with a record of a class other than IN in its answer or authority section is
//! refused before anything in it is read (see [`super::validate`]: no signature covers such a
//! record).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use super::anchor::TrustAnchors;
use super::transport::{CookieJar, TransportError, exchange_with};
use super::trust::{Change, Probe, TrustState};
use super::validate::{Context, Verdict, only_class_in, unknown_signers, verify_answer};
use crate::record::NodeLabel;

/// Where to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// A recursive resolver (RD and CD set) rather than an authoritative server.
    pub recursive: bool,
}

/// What a [`Checker`] checks, and against what.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Tried in order; the first trustworthy answer wins.
    pub targets: Vec<Target>,
    /// The zone, fully qualified (`example.test.`).
    pub zone: Name,
    pub node: NodeLabel,
    pub anchors: TrustAnchors,
    /// How long to wait for each server.
    pub timeout: Duration,
    /// An answer whose signature was made longer ago than this is stale: its server has
    /// stopped refreshing. Keep it above the server's refresh time (7 days by default).
    pub max_age: Duration,
    /// Clock difference tolerated against signature times.
    pub skew: Duration,
    /// RFC 5011's add hold-down: how long a new key must be seen, in DNSKEY RRsets validated
    /// by a trusted key, before it is trusted; also the remove hold-down of revoked keys, and
    /// a tenth of it (up to an hour) is the shortest time between probes. At least a second.
    pub holddown: Duration,
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A validly signed record.
    Found {
        commit: String,
        seq: u64,
        ts: u64,
        inception: u32,
    },
    /// Authenticated denial: the node has no record.
    NoRecord,
    /// The answer does not validate: bad or missing signature, unknown key, expired.
    Bogus { reason: String },
    /// A valid record with a lower seq than the one already applied.
    Replay { seq: u64, applied: u64 },
    /// A valid record signed longer ago than `max_age`.
    Stale {
        seq: u64,
        inception: u32,
        age_seconds: u64,
    },
    /// No answer in time.
    Timeout,
    /// The server answered SERVFAIL, REFUSED or another error code.
    ServerFailure { rcode: String },
    /// The server could not be reached.
    Unreachable { reason: String },
}

impl Outcome {
    /// The `herald check` exit code (DESIGN.md): 0 found, 3 no record, 4 validation failed
    /// (bogus, replayed, stale), 5 no server answered.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Found { .. } => 0,
            Outcome::NoRecord => 3,
            Outcome::Bogus { .. } | Outcome::Replay { .. } | Outcome::Stale { .. } => 4,
            Outcome::Timeout | Outcome::ServerFailure { .. } | Outcome::Unreachable { .. } => 5,
        }
    }

    /// Whether this answer settles the check (no need to ask another server).
    fn settles(&self) -> bool {
        matches!(self, Outcome::Found { .. } | Outcome::NoRecord)
    }

    /// Which failure to report when every server failed: a validation failure outranks "no
    /// answer", because it means someone answered wrongly.
    fn rank(&self) -> u8 {
        match self {
            Outcome::Replay { .. } => 6,
            Outcome::Bogus { .. } => 5,
            Outcome::Stale { .. } => 4,
            Outcome::ServerFailure { .. } => 3,
            Outcome::Timeout => 2,
            Outcome::Unreachable { .. } => 1,
            Outcome::Found { .. } | Outcome::NoRecord => 0,
        }
    }
}

/// One server's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub server: SocketAddr,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    pub tcp: bool,
}

/// The result of a check.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The node's owner name.
    pub name: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The server whose answer settled the check.
    pub server: Option<SocketAddr>,
    /// Every server asked, in order.
    pub attempts: Vec<Attempt>,
    /// The trust-anchor transitions this check made (RFC 5011), in order; the caller logs them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust_changes: Vec<Change>,
    /// Whether the trust state changed (a transition, or a new validated key set and probe
    /// time): the caller saves it.
    #[serde(skip)]
    pub trust_changed: bool,
}

impl Report {
    pub fn exit_code(&self) -> u8 {
        self.outcome.exit_code()
    }

    /// Bytes sent and received over all attempts.
    pub fn bytes(&self) -> (usize, usize) {
        self.attempts
            .iter()
            .fold((0, 0), |(s, r), a| (s + a.bytes_sent, r + a.bytes_received))
    }
}

/// Checks one node's record. Cheap to keep and reuse (it keeps the servers' DNS cookies); the
/// validated key set lives in the [`TrustState`] handed to each check.
pub struct Checker {
    config: CheckConfig,
    qname: Name,
    /// The DNS cookies of the servers asked, for as long as the checker lives.
    cookies: CookieJar,
}

/// What one check carries from server to server.
struct Round<'a> {
    trust: &'a mut TrustState,
    changes: Vec<Change>,
    /// Whether this check already fetched, and validated, the DNSKEY RRset again for an
    /// unknown signer. A refresh that failed leaves it unset: the next server may still look.
    refreshed: bool,
}

impl Checker {
    pub fn new(config: CheckConfig) -> Self {
        let qname = config
            .zone
            .prepend_label(config.node.as_str())
            .expect("a node label fits under a zone name");
        Self {
            config,
            qname,
            cookies: CookieJar::default(),
        }
    }

    /// The node's fully qualified name.
    pub fn name(&self) -> &Name {
        &self.qname
    }

    /// Asks the targets in order. `applied` is the seq already applied, for replay detection;
    /// `trust` is the zone's trust state, which the check updates (keep it between checks,
    /// and save it when the report says it changed); `now` is the local clock in unix seconds.
    pub fn check(&self, applied: Option<u64>, trust: &mut TrustState, now: u32) -> Report {
        let before = trust.clone();
        let mut round = Round {
            trust,
            changes: Vec::new(),
            refreshed: false,
        };
        let mut attempts = Vec::new();
        let mut server = None;
        for target in &self.config.targets {
            let attempt = self.ask(*target, applied, now, &mut round);
            let settles = attempt.outcome.settles();
            attempts.push(attempt);
            if settles {
                server = attempts.last().map(|a| a.server);
                break;
            }
        }
        let outcome = match server {
            Some(_) => attempts.last().map(|a| a.outcome.clone()),
            None => attempts
                .iter()
                .max_by_key(|a| a.outcome.rank())
                .map(|a| a.outcome.clone()),
        }
        .unwrap_or(Outcome::Unreachable {
            reason: "no servers given".into(),
        });
        Report {
            name: self.qname.to_ascii(),
            outcome,
            server,
            attempts,
            trust_changed: *round.trust != before,
            trust_changes: round.changes,
        }
    }

    fn ask(
        &self,
        target: Target,
        applied: Option<u64>,
        now: u32,
        round: &mut Round<'_>,
    ) -> Attempt {
        let mut attempt = Attempt {
            server: target.addr,
            outcome: Outcome::Timeout,
            bytes_sent: 0,
            bytes_received: 0,
            tcp: false,
        };
        let (mut keys, mut probed) = match round.trust.fresh_keys(now) {
            Some(keys) => (keys, false),
            None => match self.probe(target, now, round, &mut attempt) {
                Ok(keys) => (keys, true),
                Err(outcome) => {
                    attempt.outcome = outcome;
                    return attempt;
                }
            },
        };
        let response = match self.query(target, &self.qname, RecordType::TXT, &mut attempt) {
            Ok(m) => m,
            Err(outcome) => {
                attempt.outcome = outcome;
                return attempt;
            }
        };
        let skew = self.config.skew.as_secs() as u32;
        let verify = |keys: &[DNSKEY]| {
            verify_answer(
                &response,
                &Context {
                    qname: &self.qname,
                    zone: &self.config.zone,
                    keys,
                    now,
                    skew,
                },
            )
        };
        let mut verdict = verify(&keys);
        // Signed by a key the kept set does not hold: the zone may have rolled its key since
        // the last probe. Look once, then judge the same answer again.
        if matches!(verdict, Verdict::Bogus(_))
            && !probed
            && !round.refreshed
            && !unknown_signers(&response, &self.config.zone, &keys).is_empty()
        {
            keys = match self.probe(target, now, round, &mut attempt) {
                Ok(keys) => {
                    round.refreshed = true;
                    keys
                }
                Err(outcome) => {
                    attempt.outcome = outcome;
                    return attempt;
                }
            };
            probed = true;
            verdict = verify(&keys);
        }
        tracing::debug!(server = %target.addr, probed, "checked");
        attempt.outcome = match verdict {
            Verdict::Found { payload, inception } => {
                let age = u64::from(now.wrapping_sub(inception));
                if applied.is_some_and(|a| payload.seq < a) {
                    Outcome::Replay {
                        seq: payload.seq,
                        applied: applied.unwrap_or_default(),
                    }
                } else if (now.wrapping_sub(inception) as i32) > 0
                    && age > self.config.max_age.as_secs()
                {
                    Outcome::Stale {
                        seq: payload.seq,
                        inception,
                        age_seconds: age,
                    }
                } else {
                    Outcome::Found {
                        commit: payload.commit.to_string(),
                        seq: payload.seq,
                        ts: payload.ts,
                        inception,
                    }
                }
            }
            Verdict::NoRecord => Outcome::NoRecord,
            Verdict::Bogus(reason) => Outcome::Bogus {
                reason: chain(&reason),
            },
            Verdict::ServerFailure(rcode) => Outcome::ServerFailure {
                rcode: rcode.to_string(),
            },
        };
        attempt
    }

    /// One query with DO set (and RD and CD for a resolver, so that it hands over the records
    /// and signatures for us to check ourselves).
    fn query(
        &self,
        target: Target,
        name: &Name,
        rtype: RecordType,
        attempt: &mut Attempt,
    ) -> Result<Message, Outcome> {
        let mut q = Message::query();
        q.metadata.recursion_desired = target.recursive;
        q.metadata.checking_disabled = target.recursive;
        q.add_query(Query::query(name.clone(), rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(true);
        q.set_edns(edns);
        match exchange_with(target.addr, &q, self.config.timeout, Some(&self.cookies)) {
            Ok(x) => {
                attempt.bytes_sent += x.bytes_sent;
                attempt.bytes_received += x.bytes_received;
                attempt.tcp |= x.tcp;
                // Nothing of another class is signed (RFC 4034 §3.1.8.1): refuse it all.
                only_class_in(&x.response).map_err(|e| Outcome::Bogus { reason: chain(&e) })?;
                Ok(x.response)
            }
            Err(TransportError::Timeout(_)) => Err(Outcome::Timeout),
            Err(e) => Err(Outcome::Unreachable { reason: chain(&e) }),
        }
    }

    /// Fetches the zone's DNSKEY RRset from `target` and hands it to the trust state (RFC 5011
    /// §2.3's probe); the zone keys that a trusted key validated.
    fn probe(
        &self,
        target: Target,
        now: u32,
        round: &mut Round<'_>,
        attempt: &mut Attempt,
    ) -> Result<Vec<DNSKEY>, Outcome> {
        let zone = &self.config.zone;
        let m = self.query(target, zone, RecordType::DNSKEY, attempt)?;
        if m.metadata.response_code != ResponseCode::NoError {
            return Err(Outcome::ServerFailure {
                rcode: m.metadata.response_code.to_string(),
            });
        }
        let observed = round.trust.observe(&Probe {
            zone,
            answers: &m.answers,
            anchors: &self.config.anchors,
            holddown: u32::try_from(self.config.holddown.as_secs())
                .unwrap_or(u32::MAX)
                .max(1),
            now,
            skew: self.config.skew.as_secs() as u32,
        });
        round.changes.extend(observed.changes);
        observed
            .result
            .map_err(|e| Outcome::Bogus { reason: chain(&e) })
    }
}

/// An error and its causes, as one line for a report: `a: b: c`.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{FakeServer, Key, apex, dnskey_answer, txt_answer};
    use crate::client::trust::KeyState;
    use hickory_proto::rr::Record;

    const T0: u32 = 1_800_000_000;

    fn checker(targets: &[&FakeServer], anchors: &[DNSKEY], holddown: u64) -> Checker {
        Checker::new(CheckConfig {
            targets: targets
                .iter()
                .map(|s| Target {
                    addr: s.addr,
                    recursive: false,
                })
                .collect(),
            zone: apex(),
            node: NodeLabel::parse("n1").unwrap(),
            anchors: TrustAnchors {
                dnskeys: anchors.to_vec(),
                ds: Vec::new(),
            },
            timeout: Duration::from_secs(1),
            max_age: Duration::from_secs(8 * 86_400),
            skew: Duration::from_secs(300),
            holddown: Duration::from_secs(holddown),
        })
    }

    fn seq(r: &Report) -> u64 {
        match &r.outcome {
            Outcome::Found { seq, .. } => *seq,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    fn key_state(trust: &TrustState, key: &Key) -> Option<KeyState> {
        trust
            .keys
            .iter()
            .find(|t| t.dnskey.0.public_key() == key.dnskey().public_key())
            .map(|t| t.state)
    }

    use RecordType::{DNSKEY as K, TXT as T};

    #[test]
    fn the_dnskey_rrset_is_fetched_once_per_probe() {
        let old = Key::new();
        let server = FakeServer::new();
        let rrset = [old.dnskey()];
        server.serve(K, dnskey_answer(&rrset, &[(&old, &rrset[0])], T0));
        server.serve(T, txt_answer(1, &old, T0));
        let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
        let mut trust = TrustState::default();

        let r = c.check(None, &mut trust, T0);
        assert_eq!((seq(&r), server.asked()), (1, vec![K, T]));
        assert!(r.trust_changed);
        assert_eq!(r.trust_changes.len(), 1, "the anchor is recorded");
        // Within the probe interval (an hour): the TXT query alone, and nothing to save.
        let r = c.check(None, &mut trust, T0 + 600);
        assert_eq!((seq(&r), server.asked()), (1, vec![T]));
        assert!(!r.trust_changed && r.trust_changes.is_empty());
        // The probe is due.
        let r = c.check(None, &mut trust, T0 + 3600);
        assert_eq!((seq(&r), server.asked()), (1, vec![K, T]));
        assert!(r.trust_changed, "a new probe time");
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("trust_changes").is_none() && json.get("trust_changed").is_none());
    }

    /// The server's rollover (DESIGN.md "Key rollover"), step by step, with a hold-down of
    /// ten seconds: no check fails, the node trusts the new key after the hold-down, and the
    /// stale anchor file (the old key only) does not matter.
    #[test]
    fn a_rollover_is_followed_without_a_failed_check() {
        let old = Key::new();
        let new = Key::new();
        let server = FakeServer::new();
        let only_old = [old.dnskey()];
        server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
        server.serve(T, txt_answer(1, &old, T0));
        let c = checker(&[&server], &[old.dnskey()], 10);
        let mut trust = TrustState::default();
        assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);

        // 1. Publish: both keys, both signing the DNSKEY RRset; data still by the old key.
        let both = [old.dnskey(), new.dnskey()];
        server.serve(
            K,
            dnskey_answer(&both, &[(&old, &both[0]), (&new, &both[1])], T0),
        );
        let r = c.check(None, &mut trust, T0 + 1);
        assert_eq!(seq(&r), 1);
        assert!(
            r.trust_changes[0]
                .reason
                .contains("seen for the first time")
        );
        assert_eq!(key_state(&trust, &new), Some(KeyState::AddPend));
        // 2. Switch: data re-signed by the new key, not yet trusted but validated.
        server.serve(T, txt_answer(2, &new, T0));
        server.asked();
        assert_eq!(seq(&c.check(None, &mut trust, T0 + 1)), 2);
        assert_eq!(
            server.asked(),
            [T],
            "the kept key set already holds the new key"
        );
        // Seen again within the hold-down (a probe every second with a hold-down of 10 s).
        c.check(None, &mut trust, T0 + 5);
        let r = c.check(None, &mut trust, T0 + 12);
        assert_eq!(seq(&r), 2);
        assert!(r.trust_changes[0].reason.contains("trusted: seen for 11s"));
        assert_eq!(key_state(&trust, &new), Some(KeyState::Valid));
        // 3. Revoke the old key.
        let revoking = [old.revoked(), new.dnskey()];
        server.serve(
            K,
            dnskey_answer(&revoking, &[(&new, &revoking[1]), (&old, &revoking[0])], T0),
        );
        let r = c.check(None, &mut trust, T0 + 14);
        assert_eq!(seq(&r), 2);
        assert!(
            r.trust_changes[0]
                .reason
                .contains("revoked by its own signature")
        );
        // 4. Done: the new key alone.
        let only_new = [new.dnskey()];
        server.serve(K, dnskey_answer(&only_new, &[(&new, &only_new[0])], T0));
        let r = c.check(None, &mut trust, T0 + 16);
        assert_eq!(seq(&r), 2);
        assert_eq!(key_state(&trust, &old), Some(KeyState::Revoked));
        // The old key, should it sign again, is not believed: not even when the zone (or
        // whoever holds the new key's signature over such an RRset) publishes it again,
        // unrevoked, in a DNSKEY RRset the new key validates (RFC 5011 §2.1).
        let both = [old.dnskey(), new.dnskey()];
        server.serve(K, dnskey_answer(&both, &[(&new, &both[1])], T0 + 17));
        server.serve(T, txt_answer(3, &old, T0));
        server.asked();
        let r = c.check(None, &mut trust, T0 + 18);
        assert!(
            matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("unknown key")),
            "{:?}",
            r.outcome
        );
        assert_eq!(server.asked(), [K, T], "the RRset was validated, and used");
        assert_eq!(key_state(&trust, &old), Some(KeyState::Revoked));
        assert_eq!(trust.fresh_keys(T0 + 18), Some(vec![new.dnskey()]));
    }

    /// A revocation recorded from an RRset that is then refused takes the key out of the kept
    /// key set at once: the next check, before the next probe, does not take its word.
    #[test]
    fn a_key_revoked_by_a_refused_rrset_is_not_used_until_the_next_probe() {
        let old = Key::new();
        let new = Key::new();
        let server = FakeServer::new();
        let only_old = [old.dnskey()];
        server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
        server.serve(T, txt_answer(1, &old, T0));
        let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
        let mut trust = TrustState::default();
        assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);

        // An emergency: the old key revoked, the new one not yet trusted; data by the new key.
        let revoking = [old.revoked(), new.dnskey()];
        server.serve(
            K,
            dnskey_answer(&revoking, &[(&old, &revoking[0]), (&new, &revoking[1])], T0),
        );
        server.serve(T, txt_answer(2, &new, T0));
        let r = c.check(None, &mut trust, T0 + 60);
        assert!(
            matches!(r.outcome, Outcome::Bogus { .. }),
            "{:?}",
            r.outcome
        );
        assert_eq!(key_state(&trust, &old), Some(KeyState::Revoked));
        // Within the probe interval, a record signed by the old key: not believed.
        server.serve(T, txt_answer(3, &old, T0));
        let r = c.check(None, &mut trust, T0 + 120);
        assert!(
            matches!(&r.outcome, Outcome::Bogus { .. }),
            "{:?}",
            r.outcome
        );
    }

    /// RFC 4034 §3.1.8.1: nothing of another class is signed, so a response with such a
    /// record in its answer section is refused, on the DNSKEY query and on the TXT one.
    #[test]
    fn a_response_with_a_record_of_another_class_is_refused() {
        let old = Key::new();
        let forged = Key::new();
        let server = FakeServer::new();
        let only_old = [old.dnskey()];
        let chaos = |mut r: Record| {
            r.dns_class = hickory_proto::rr::DNSClass::CH;
            r
        };
        let mut keys = dnskey_answer(&only_old, &[(&old, &only_old[0])], T0);
        keys.push(chaos(
            crate::client::testing::dnskeys(&[forged.dnskey()]).remove(0),
        ));
        server.serve(K, keys);
        server.serve(T, txt_answer(1, &old, T0));
        let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
        let mut trust = TrustState::default();
        let r = c.check(None, &mut trust, T0);
        assert!(
            matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("class CH")),
            "{:?}",
            r.outcome
        );
        assert_eq!(server.asked(), [K]);
        assert!(trust.is_empty(), "nothing learnt from it");

        server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
        let mut txt = txt_answer(1, &old, T0);
        txt.push(chaos(txt_answer(9, &forged, T0).remove(0)));
        server.serve(T, txt);
        let r = c.check(None, &mut trust, T0);
        assert!(
            matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("class CH")),
            "{:?}",
            r.outcome
        );
        server.serve(T, txt_answer(1, &old, T0));
        assert_eq!(seq(&c.check(None, &mut trust, T0 + 1)), 1);

        // A stray record of another class, of a type the DNSKEY RRset check never reads.
        let mut keys = dnskey_answer(&only_old, &[(&old, &only_old[0])], T0);
        keys.push(chaos(txt_answer(9, &forged, T0).remove(0)));
        server.serve(K, keys);
        let mut fresh = TrustState::default();
        let r = c.check(None, &mut fresh, T0);
        assert!(
            matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("class CH")),
            "{:?}",
            r.outcome
        );
    }

    /// A server whose DNSKEY answer does not validate does not use up the check's one extra
    /// look for a key not seen yet: the next server, honest, still gets it.
    #[test]
    fn a_failed_refresh_does_not_use_up_the_next_servers_look() {
        let old = Key::new();
        let new = Key::new();
        let broken = FakeServer::new();
        let honest = FakeServer::new();
        let only_old = [old.dnskey()];
        for s in [&broken, &honest] {
            s.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
            s.serve(T, txt_answer(1, &old, T0));
        }
        let c = checker(&[&broken, &honest], &[old.dnskey()], 30 * 86_400);
        let mut trust = TrustState::default();
        assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);
        broken.asked();

        // The zone signs with a new key; the first server hands out an unsigned DNSKEY RRset.
        let both = [old.dnskey(), new.dnskey()];
        broken.serve(K, crate::client::testing::dnskeys(&both));
        broken.serve(T, txt_answer(2, &new, T0));
        honest.serve(K, dnskey_answer(&both, &[(&old, &both[0])], T0 + 30));
        honest.serve(T, txt_answer(2, &new, T0));
        let r = c.check(None, &mut trust, T0 + 60);
        assert_eq!(seq(&r), 2, "{:?}", r.attempts);
        assert_eq!(r.server, Some(honest.addr));
        assert_eq!(broken.asked(), [T, K]);
        assert_eq!(honest.asked(), [T, K]);
    }

    #[test]
    fn an_answer_by_an_unknown_key_fetches_the_dnskey_rrset_once_per_check() {
        let old = Key::new();
        let new = Key::new();
        let stranger = Key::new();
        let server = FakeServer::new();
        let only_old = [old.dnskey()];
        server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
        server.serve(T, txt_answer(1, &old, T0));
        let c = checker(&[&server, &server], &[old.dnskey()], 30 * 86_400);
        let mut trust = TrustState::default();
        assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);
        server.asked();

        // The zone published a new key and signs with it, within the probe interval.
        let both = [old.dnskey(), new.dnskey()];
        server.serve(K, dnskey_answer(&both, &[(&old, &both[0])], T0));
        server.serve(T, txt_answer(2, &new, T0));
        let r = c.check(None, &mut trust, T0 + 60);
        assert_eq!(seq(&r), 2);
        assert_eq!(server.asked(), [T, K]);
        assert_eq!(key_state(&trust, &new), Some(KeyState::AddPend));

        // Signed by a key the zone does not publish: one more look, not one per server.
        server.serve(T, txt_answer(3, &stranger, T0));
        let r = c.check(None, &mut trust, T0 + 120);
        assert!(
            matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("unknown key")),
            "{:?}",
            r.outcome
        );
        assert_eq!(server.asked(), [T, K, T]);
        assert_eq!(r.exit_code(), 4);
    }

    #[test]
    fn a_node_that_missed_the_rollover_is_bogus_and_told_why() {
        let old = Key::new();
        let new = Key::new();
        let server = FakeServer::new();
        let only_new = [new.dnskey()];
        server.serve(K, dnskey_answer(&only_new, &[(&new, &only_new[0])], T0));
        server.serve(T, txt_answer(1, &new, T0));
        let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
        let mut trust = TrustState::default();
        let r = c.check(None, &mut trust, T0);
        let Outcome::Bogus { reason } = &r.outcome else {
            panic!("{:?}", r.outcome);
        };
        assert_eq!(
            reason,
            &format!(
                "no trusted key signs the DNSKEY RRset of example.test. (trusted: {}; the zone's \
                 keys: {}): the key was rolled while this node was away, or the trust anchor is \
                 not this zone's; give it a fresh trust anchor (herald key show)",
                old.tag(),
                new.tag()
            )
        );
        assert_eq!(r.exit_code(), 4);
        assert_eq!(
            server.asked(),
            [K],
            "no TXT query without a validated key set"
        );
        assert!(!r.trust_changed && trust.is_empty());

        // A DNSKEY answer without DNSKEY records, or a failing server, is no key set either.
        server.serve(K, Vec::new());
        let r = c.check(None, &mut trust, T0);
        assert!(
            matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("holds no DNSKEY")),
            "{:?}",
            r.outcome
        );
    }
}
