//! One check: ask each server in turn until one gives a trustworthy answer.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::Serialize;

use super::anchor::TrustAnchors;
use super::transport::{CookieJar, TransportError, exchange_with};
use super::validate::{Context, Verdict, verify_answer, verify_rrset};
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

/// Checks one node's record. Cheap to keep and reuse: with DS anchors it remembers the zone's
/// validated DNSKEY RRset until its signature expires.
pub struct Checker {
    config: CheckConfig,
    qname: Name,
    /// DNSKEYs validated against a DS anchor, and when that validation expires.
    keys: Mutex<Option<(Vec<DNSKEY>, u32)>>,
    /// The DNS cookies of the servers asked, for as long as the checker lives.
    cookies: CookieJar,
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
            keys: Mutex::new(None),
            cookies: CookieJar::default(),
        }
    }

    /// The node's fully qualified name.
    pub fn name(&self) -> &Name {
        &self.qname
    }

    /// Asks the targets in order. `applied` is the seq already applied, for replay detection;
    /// `now` is the local clock in unix seconds.
    pub fn check(&self, applied: Option<u64>, now: u32) -> Report {
        let mut attempts = Vec::new();
        for target in &self.config.targets {
            let attempt = self.ask(*target, applied, now);
            let settles = attempt.outcome.settles();
            attempts.push(attempt);
            if settles {
                let last = attempts.last().expect("just pushed");
                return Report {
                    name: self.qname.to_ascii(),
                    outcome: last.outcome.clone(),
                    server: Some(last.server),
                    attempts,
                };
            }
        }
        let outcome = attempts
            .iter()
            .max_by_key(|a| a.outcome.rank())
            .map(|a| a.outcome.clone())
            .unwrap_or(Outcome::Unreachable {
                reason: "no servers given".into(),
            });
        Report {
            name: self.qname.to_ascii(),
            outcome,
            server: None,
            attempts,
        }
    }

    fn ask(&self, target: Target, applied: Option<u64>, now: u32) -> Attempt {
        let mut attempt = Attempt {
            server: target.addr,
            outcome: Outcome::Timeout,
            bytes_sent: 0,
            bytes_received: 0,
            tcp: false,
        };
        let keys = match self.trusted_keys(target, now, &mut attempt) {
            Ok(keys) => keys,
            Err(outcome) => {
                attempt.outcome = outcome;
                return attempt;
            }
        };
        let response = match self.query(target, &self.qname, RecordType::TXT, &mut attempt) {
            Ok(m) => m,
            Err(outcome) => {
                attempt.outcome = outcome;
                return attempt;
            }
        };
        let cx = Context {
            qname: &self.qname,
            zone: &self.config.zone,
            keys: &keys,
            now,
            skew: self.config.skew.as_secs() as u32,
        };
        attempt.outcome = match verify_answer(&response, &cx) {
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
                Ok(x.response)
            }
            Err(TransportError::Timeout(_)) => Err(Outcome::Timeout),
            Err(e) => Err(Outcome::Unreachable { reason: chain(&e) }),
        }
    }

    /// The keys answers must be signed with: the DNSKEY anchors as they are, or, when the
    /// anchors are DS records only, the zone's DNSKEY RRset fetched and checked against them
    /// (one more query, remembered for an hour).
    fn trusted_keys(
        &self,
        target: Target,
        now: u32,
        attempt: &mut Attempt,
    ) -> Result<Vec<DNSKEY>, Outcome> {
        let anchors = &self.config.anchors;
        // Pinned DNSKEYs verify answers directly: one query per check.
        if !anchors.dnskeys.is_empty() {
            return Ok(anchors.dnskeys.clone());
        }
        if let Some((keys, until)) = &*self.keys.lock().unwrap_or_else(|p| p.into_inner())
            && (until.wrapping_sub(now) as i32) > 0
        {
            return Ok(keys.clone());
        }
        let zone = &self.config.zone;
        let m = self.query(target, zone, RecordType::DNSKEY, attempt)?;
        if m.metadata.response_code != ResponseCode::NoError {
            return Err(Outcome::ServerFailure {
                rcode: m.metadata.response_code.to_string(),
            });
        }
        let rrset: Vec<&Record> = m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY && r.name.eq_ignore_root(zone))
            .collect();
        let keys: Vec<DNSKEY> = rrset
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        // The keys the DS anchors vouch for; they must sign the DNSKEY RRset.
        let entry: Vec<DNSKEY> = keys
            .iter()
            .filter(|k| {
                anchors
                    .ds
                    .iter()
                    .any(|ds| ds.covers(zone, k).unwrap_or(false))
            })
            .cloned()
            .chain(anchors.dnskeys.iter().cloned())
            .collect();
        if entry.is_empty() {
            return Err(Outcome::Bogus {
                reason: "no DNSKEY of the zone matches the DS trust anchor".into(),
            });
        }
        let cx = Context {
            qname: zone,
            zone,
            keys: &entry,
            now,
            skew: self.config.skew.as_secs() as u32,
        };
        verify_rrset(zone, RecordType::DNSKEY, &rrset, &m.answers, &cx).map_err(|e| {
            Outcome::Bogus {
                reason: format!("DNSKEY: {}", chain(&e)),
            }
        })?;
        let until = now.wrapping_add(3600);
        *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = Some((keys.clone(), until));
        Ok(keys)
    }
}

/// An error and its causes, as one line for a report: `a: b: c`.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
