//! The intake of node reports: UPDATE messages signed with a node's report key
//! (`crate::record::report` has the format; DESIGN.md, "Rollouts").
//!
//! [`super::update`] hands over every UPDATE whose TSIG key is named `<node>._report.<zone>.`.
//! A report is taken when, in this order:
//! 1. the zone is served and the key is the node's: its secret derived from the zone's report
//!    secret verifies the MAC, and the time is within the fudge (RFC 8945 §5.2); otherwise
//!    NOTAUTH with the TSIG error, as for any key, counted `forged` or `badtime`;
//! 2. the message is one report: the zone section names the zone, there are no
//!    prerequisites, and the update section holds one TXT record of class IN owned by the
//!    key's own name, whose text parses (FORMERR, `malformed`). So a node's key reports for
//!    that node only;
//! 3. the zone publishes the node, at a seq at least the report's (REFUSED, `unknown`): a
//!    report for a seq not yet published is not a replay of anything, it is made up;
//! 4. the node is under its rate: [`LIMIT`] reports per [`WINDOW`] seconds (REFUSED,
//!    `limited`). The counts are kept in a fixed table of 2^18 buckets, indexed by a keyed hash of
//!    the node, so their memory does not grow with the fleet; nodes that share a bucket share
//!    its budget, and only a node's own key can spend it;
//! 5. the queue to the report writer has room (SERVFAIL, `dropped`).
//!
//! Then it is answered NOERROR, signed. The writer stores it if it is newer than what the store
//! holds (a higher seq, or the same seq signed later); a replayed message changes nothing and is
//! counted `stale`. Nothing of this touches the served zone or the query path.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::answer::error_answer;
use super::message::rcode;
use super::tsig::{RequestAuth, ResponseSigner, TsigKey, check_request};
use crate::metrics::ReportOutcome;
use crate::publish::reports::{ReportRow, ReportSecretError, ReportSink, load_or_create_secret};
use crate::record::report::{REPORT_LABEL, Report, node_report_secret};
use crate::record::{NodeLabel, Payload, unix_now};
use crate::zone::SharedZones;
use crate::zone::file::StaticZone;
use crate::zone::wire::relative_key;

/// Reports a node may send per window.
pub const LIMIT: u32 = 10;
/// The rate limit's window, in seconds.
pub const WINDOW: u64 = 10;
/// Buckets of the rate limit's table: 2 MiB. With 2^16, a million nodes reporting 20,000 times
/// a second shared ~15 to a bucket, and 112 of a million honest reports were refused; at 2^18
/// a bucket over its limit by chance is a one-in-ten-billion event.
const BUCKETS: usize = 1 << 18;

/// Whether a TSIG key name is a report key's: `<node>._report.<zone>.`.
pub fn is_report_key(name: &Name) -> bool {
    name.num_labels() >= 3
        && name
            .iter()
            .nth(1)
            .is_some_and(|l| l.eq_ignore_ascii_case(REPORT_LABEL.as_bytes()))
}

/// The report intake, shared by the sockets through [`super::update::Updates`].
pub struct Reports {
    zones: SharedZones,
    data_dir: PathBuf,
    /// Per zone (API form), its report secret.
    secrets: arc_swap::ArcSwap<HashMap<String, Arc<[u8]>>>,
    sink: ReportSink,
    limiter: Limiter,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

impl Reports {
    /// The intake for the zones of `files`, creating their report secrets in `data_dir` if
    /// they have none.
    pub fn new(
        zones: SharedZones,
        data_dir: PathBuf,
        files: &[StaticZone],
        sink: ReportSink,
    ) -> Result<Self, ReportSecretError> {
        let reports = Self {
            zones,
            data_dir,
            secrets: arc_swap::ArcSwap::from_pointee(HashMap::new()),
            sink,
            limiter: Limiter::new(),
        };
        reports.set_files(files)?;
        Ok(reports)
    }

    /// Takes the zones served after a reload: loads (or creates) the secrets of new ones.
    pub fn set_files(&self, files: &[StaticZone]) -> Result<(), ReportSecretError> {
        let old = self.secrets.load();
        let mut secrets = HashMap::new();
        for zone in files {
            let secret = match old.get(&zone.name) {
                Some(s) => s.clone(),
                None => load_or_create_secret(&self.data_dir, &zone.name)?.into(),
            };
            secrets.insert(zone.name.clone(), secret);
        }
        self.secrets.store(Arc::new(secrets));
        Ok(())
    }

    /// Answers a report: `key_name` is its TSIG key's name ([`is_report_key`]).
    pub fn answer(
        &self,
        msg: &[u8],
        request: &Message,
        key_name: &Name,
        peer: SocketAddr,
    ) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        let tsig = request.signature();
        let id = request.metadata.id;
        let found = self.key(key_name);
        let keys = found.as_ref().map(|(_, _, k)| std::slice::from_ref(k));
        let auth = check_request(
            keys.unwrap_or(&[]),
            msg,
            tsig.map(|r| &r.data),
            tsig.map(|r| &r.name),
            id,
        );
        let (key, mac) = match auth {
            RequestAuth::Signed { key, mac, .. } => (key, mac),
            RequestAuth::Failed(failure) => {
                let outcome = if failure.error == hickory_proto::rr::rdata::tsig::TsigError::BadTime
                {
                    ReportOutcome::BadTime
                } else {
                    ReportOutcome::Forged
                };
                tracing::debug!(%peer, key = %key_name, error = ?failure.error, "report refused: TSIG failed");
                self.sink.count(outcome);
                failure.answer(msg, &mut out);
                return Some(out);
            }
            // `is_report_key` looked at the TSIG record: there is one.
            RequestAuth::Unsigned => return None,
        };
        let (zone, node, _) = found?;
        let signed = tsig.map_or(0, |r| r.data.time);
        let (code, outcome) = self.take(request, &key.name, &zone, &node, signed);
        if outcome != ReportOutcome::Stored {
            tracing::debug!(%peer, key = %key.name, result = outcome.as_str(), "report not taken");
            self.sink.count(outcome);
        }
        error_answer(msg, code, &mut out);
        match ResponseSigner::new(key, mac, id).sign(&mut out) {
            Ok(()) => Some(out),
            Err(e) => {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "cannot sign a report answer"
                );
                None
            }
        }
    }

    /// The zone, the node and the key a report key name stands for, if the zone is served.
    fn key(&self, name: &Name) -> Option<(String, NodeLabel, TsigKey)> {
        let node = name.iter().next()?;
        let node = NodeLabel::parse(std::str::from_utf8(node).ok()?).ok()?;
        let apex = name.trim_to(usize::from(name.num_labels()) - 2);
        let zone = apex.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let secrets = self.secrets.load();
        let secret = secrets.get(&zone)?;
        let key = TsigKey::hmac_sha256(name.clone(), &node_report_secret(secret, &node));
        Some((zone, node, key))
    }

    /// Checks a verified report and queues it: the answer code, and what became of it
    /// (`Stored` here means queued; the writer counts it when it is written).
    fn take(
        &self,
        request: &Message,
        key_name: &Name,
        zone: &str,
        node: &NodeLabel,
        signed: u64,
    ) -> (u16, ReportOutcome) {
        const MALFORMED: (u16, ReportOutcome) = (rcode::FORMERR, ReportOutcome::Malformed);
        let set = self.zones.load();
        let Some(snapshot) = set.iter().find(|z| &*z.name == zone) else {
            return (rcode::REFUSED, ReportOutcome::Unknown);
        };
        let [zone_q] = request.queries.as_slice() else {
            return MALFORMED;
        };
        if zone_q.query_type() != RecordType::SOA
            || zone_q.query_class() != DNSClass::IN
            || !zone_q.name().eq_ignore_root(&snapshot.apex)
            || !request.answers.is_empty()
        {
            return MALFORMED;
        }
        let [record] = request.authorities.as_slice() else {
            return MALFORMED;
        };
        let (true, DNSClass::IN, RData::TXT(txt)) = (
            record.name.eq_ignore_root(key_name),
            record.dns_class,
            &record.data,
        ) else {
            return MALFORMED;
        };
        let text: Vec<u8> = txt
            .txt_data
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        let Some(report) = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| Report::parse(t).ok())
        else {
            return MALFORMED;
        };
        // The node's published seq, from the snapshot the DNS path serves.
        let owner = Name::from_ascii(node.as_str())
            .ok()
            .and_then(|n| n.append_domain(&snapshot.apex).ok());
        let published = owner
            .and_then(|o| snapshot.lookup(&relative_key(&o, &snapshot.apex)))
            .and_then(|e| e.rrset(RecordType::TXT))
            .and_then(|r| r.records().first_rdata().map(<[u8]>::to_vec))
            .and_then(|rdata| published_seq(&rdata));
        if published.is_none_or(|seq| report.seq > seq) {
            return (rcode::REFUSED, ReportOutcome::Unknown);
        }
        let now = unix_now();
        if !self.limiter.allow(zone, node.as_str(), now) {
            return (rcode::REFUSED, ReportOutcome::Limited);
        }
        let row = ReportRow {
            zone: zone.to_owned(),
            node: node.to_string(),
            seq: report.seq,
            commit: report.commit.to_string(),
            status: report.status.as_str().to_owned(),
            code: report.code,
            at: report.at,
            signed,
            received: now,
        };
        if self.sink.offer(row) {
            (rcode::NOERROR, ReportOutcome::Stored)
        } else {
            // Counted by the sink.
            (rcode::SERVFAIL, ReportOutcome::Stored)
        }
    }
}

/// The seq of a node TXT record's RDATA (one character-string holding the payload).
fn published_seq(rdata: &[u8]) -> Option<u64> {
    let (&len, rest) = rdata.split_first()?;
    let text = std::str::from_utf8(rest.get(..usize::from(len))?).ok()?;
    Payload::parse(text).ok().map(|p| p.seq)
}

/// Per-node report counts in fixed memory: a table of (window, count) buckets indexed by a
/// hash of the node under a key chosen at start, so that no one can aim at a bucket.
struct Limiter {
    /// (window, count); the window number wraps after 1,300 years of 10 s windows.
    buckets: Mutex<Vec<(u32, u32)>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Limiter {
    fn new() -> Self {
        Self {
            buckets: Mutex::new(vec![(0, 0); BUCKETS]),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Counts one report of `node` at `now`; whether it is within the limit.
    fn allow(&self, zone: &str, node: &str, now: u64) -> bool {
        let i = (self.hasher.hash_one((zone, node)) as usize) % BUCKETS;
        let window = (now / WINDOW) as u32;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = &mut buckets[i];
        if bucket.0 != window {
            *bucket = (window, 0);
        }
        if bucket.1 >= LIMIT {
            return false;
        }
        bucket.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_key_names() {
        for (name, yes) in [
            ("n1._report.example.test.", true),
            ("N1._REPORT.example.test.", true),
            ("_report.example.test.", false),
            ("n1.example.test.", false),
            ("xfr.", false),
        ] {
            assert_eq!(
                is_report_key(&Name::from_ascii(name).unwrap()),
                yes,
                "{name}"
            );
        }
    }

    #[test]
    fn the_limit_holds_per_window_and_per_node() {
        let limiter = Limiter::new();
        let t = 1_000 * WINDOW;
        let allowed = (0..LIMIT + 5)
            .filter(|_| limiter.allow("example.test", "n1", t))
            .count();
        assert_eq!(allowed, LIMIT as usize);
        // Another node (almost surely another bucket) is not held back.
        assert!((0..50).any(|i| limiter.allow("example.test", &format!("m{i}"), t)));
        // The next window starts afresh.
        assert!(limiter.allow("example.test", "n1", t + WINDOW));
    }

    #[test]
    fn reads_the_published_seq() {
        let text = format!("v=herald1 commit={} seq=42 ts=1", "a".repeat(40));
        let mut rdata = vec![text.len() as u8];
        rdata.extend_from_slice(text.as_bytes());
        assert_eq!(published_seq(&rdata), Some(42));
        assert_eq!(published_seq(&rdata[..10]), None);
        assert_eq!(published_seq(&[]), None);
    }
}
