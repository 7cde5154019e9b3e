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

/// How `herald check` says it, one line.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Found { commit, seq, .. } => write!(f, "commit={commit} seq={seq}"),
            Outcome::NoRecord => f.write_str("no record (authenticated denial)"),
            Outcome::Bogus { reason } => write!(f, "bogus: {reason}"),
            Outcome::Replay { seq, applied } => write!(
                f,
                "replayed: seq {seq} is below the {applied} already applied"
            ),
            Outcome::Stale {
                seq, age_seconds, ..
            } => write!(
                f,
                "stale: seq {seq} was signed {age_seconds} s ago (more than --max-age)"
            ),
            Outcome::Timeout => f.write_str("no answer in time"),
            Outcome::ServerFailure { rcode } => write!(f, "the server answered {rcode}"),
            Outcome::Unreachable { reason } => write!(f, "unreachable: {reason}"),
        }
    }
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
mod tests;
