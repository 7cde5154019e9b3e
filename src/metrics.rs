//! Counters that the hot paths keep for `GET /metrics` (Prometheus text format).
//!
//! The query path counts every answer by transport, query type, RCODE and DO bit, truncated
//! answers, and answer sizes in histogram buckets. It must not slow down for it: each UDP
//! thread owns its own block of counters ([`QueryCounters`]), which only that thread writes
//! (a relaxed load and store, no locked instruction, no cache line shared with another
//! writer); a scrape sums the blocks ([`QueryStats::snapshot`]). TCP connections share one
//! block per listener, written with atomic adds.
//!
//! The write path counts publishes by path and result, the time from a change's arrival at
//! the writer to its answer (durable, signed and visible: the publish-to-visible time), and
//! the signatures made ([`PublishStats`]). The API renders all of it with `prometheus-client`
//! (`crate::api::metrics`), together with what it reads from the zones at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The query types counted by name; the rest are `other`.
pub const QTYPES: [(u16, &str); 10] = [
    (1, "A"),
    (28, "AAAA"),
    (16, "TXT"),
    (6, "SOA"),
    (2, "NS"),
    (48, "DNSKEY"),
    (5, "CNAME"),
    (15, "MX"),
    (255, "ANY"),
    (0, "other"),
];
/// The RCODEs counted by name; the rest are `other`.
pub const RCODES: [(u8, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (255, "other"),
];
/// Upper bounds of the answer size buckets, in bytes (the last one is +Inf).
pub const SIZE_BUCKETS: [u64; 9] = [64, 128, 256, 512, 1024, 1232, 4096, 16384, 65535];
/// The transports, as labels.
pub const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

const CELLS: usize = TRANSPORTS.len() * QTYPES.len() * RCODES.len() * 2;
const SIZES: usize = SIZE_BUCKETS.len() + 1;

/// One block of query counters, written by one thread (or, with [`QueryCounters::add`],
/// shared). Aligned to 128 bytes (two cache lines, what adjacent-line prefetch pairs), so
/// that two threads' blocks never share a line.
#[derive(Debug)]
#[repr(align(128))]
pub struct QueryCounters {
    /// By transport, type, RCODE and DO.
    answers: [AtomicU64; CELLS],
    truncated: [AtomicU64; 2],
    /// By transport: counts per size bucket, then the sum of sizes.
    sizes: [[AtomicU64; SIZES]; 2],
    size_sum: [AtomicU64; 2],
    /// Cookies checked: valid, then not (none yet, stale, foreign); answers the rate limiter
    /// slipped, then dropped.
    shield: [AtomicU64; 4],
}

impl Default for QueryCounters {
    fn default() -> Self {
        Self {
            answers: std::array::from_fn(|_| AtomicU64::new(0)),
            truncated: std::array::from_fn(|_| AtomicU64::new(0)),
            sizes: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            size_sum: std::array::from_fn(|_| AtomicU64::new(0)),
            shield: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The index of a query type among [`QTYPES`].
#[inline]
fn qtype_index(qtype: u16) -> usize {
    QTYPES
        .iter()
        .position(|(t, _)| *t == qtype)
        .unwrap_or(QTYPES.len() - 1)
}

/// The index of an RCODE among [`RCODES`].
#[inline]
fn rcode_index(rcode: u8) -> usize {
    if (rcode as usize) < RCODES.len() - 1 {
        rcode as usize
    } else {
        RCODES.len() - 1
    }
}

#[inline]
fn size_index(len: u64) -> usize {
    SIZE_BUCKETS
        .iter()
        .position(|b| len <= *b)
        .unwrap_or(SIZE_BUCKETS.len())
}

/// Adds one: by the single writer a load and a store, which compile to plain moves.
#[inline]
fn bump(cell: &AtomicU64, by: u64, shared: bool) {
    if shared {
        cell.fetch_add(by, Ordering::Relaxed);
    } else {
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(by),
            Ordering::Relaxed,
        );
    }
}

impl QueryCounters {
    /// Counts one answer sent: `transport` 0 for UDP, 1 for TCP; `answer` the bytes sent.
    /// Only the thread that owns this block may call it.
    #[inline]
    pub fn record(&self, transport: usize, qtype: u16, dnssec_ok: bool, answer: &[u8]) {
        self.count(transport, qtype, dnssec_ok, answer, false);
    }

    /// [`QueryCounters::record`] for a block that several tasks write.
    pub fn add(&self, transport: usize, qtype: u16, dnssec_ok: bool, answer: &[u8]) {
        self.count(transport, qtype, dnssec_ok, answer, true);
    }

    /// Counts a query's cookie; `shared` for a block that several tasks write.
    #[inline]
    pub fn cookie(&self, valid: bool, shared: bool) {
        bump(&self.shield[usize::from(!valid)], 1, shared);
    }

    /// Counts a UDP answer the rate limiter held back: `dropped`, or sent truncated. Only
    /// the thread that owns this block may call it.
    #[inline]
    pub fn limited(&self, dropped: bool) {
        bump(&self.shield[2 + usize::from(dropped)], 1, false);
    }

    #[inline]
    fn count(&self, transport: usize, qtype: u16, dnssec_ok: bool, answer: &[u8], shared: bool) {
        if answer.len() < 4 {
            return;
        }
        let rcode = answer[3] & 0x0F;
        let cell = ((transport * QTYPES.len() + qtype_index(qtype)) * RCODES.len()
            + rcode_index(rcode))
            * 2
            + usize::from(dnssec_ok);
        bump(&self.answers[cell], 1, shared);
        if answer[2] & 0x02 != 0 {
            bump(&self.truncated[transport], 1, shared);
        }
        let len = answer.len() as u64;
        bump(&self.sizes[transport][size_index(len)], 1, shared);
        bump(&self.size_sum[transport], len, shared);
    }
}

/// Every block of query counters, for summing at scrape time.
#[derive(Debug, Default)]
pub struct QueryStats {
    blocks: Mutex<Vec<Arc<QueryCounters>>>,
}

/// The sum of all blocks at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuerySnapshot {
    /// (transport, type, rcode, dnssec_ok, count), only the non-zero ones.
    pub answers: Vec<(&'static str, &'static str, &'static str, bool, u64)>,
    /// By transport.
    pub truncated: [u64; 2],
    /// By transport: counts per bucket of [`SIZE_BUCKETS`] (then +Inf; each bucket's own,
    /// not cumulative), and the sum of sizes.
    pub sizes: [([u64; SIZES], u64); 2],
    /// Cookies valid and not; answers the rate limiter slipped and dropped.
    pub shield: [u64; 4],
}

impl QueryStats {
    /// A new block for one thread (or one listener), counted from now on.
    pub fn block(&self) -> Arc<QueryCounters> {
        let block = Arc::new(QueryCounters::default());
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(block.clone());
        block
    }

    /// The sum of every block.
    pub fn snapshot(&self) -> QuerySnapshot {
        let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        let mut cells = [0u64; CELLS];
        let mut out = QuerySnapshot::default();
        for b in blocks.iter() {
            for (sum, cell) in cells.iter_mut().zip(&b.answers) {
                *sum += cell.load(Ordering::Relaxed);
            }
            for (sum, cell) in out.shield.iter_mut().zip(&b.shield) {
                *sum += cell.load(Ordering::Relaxed);
            }
            for t in 0..2 {
                out.truncated[t] += b.truncated[t].load(Ordering::Relaxed);
                for (sum, cell) in out.sizes[t].0.iter_mut().zip(&b.sizes[t]) {
                    *sum += cell.load(Ordering::Relaxed);
                }
                out.sizes[t].1 += b.size_sum[t].load(Ordering::Relaxed);
            }
        }
        for (t, transport) in TRANSPORTS.iter().enumerate() {
            for (q, (_, qtype)) in QTYPES.iter().enumerate() {
                for (r, (_, rcode)) in RCODES.iter().enumerate() {
                    for dnssec_ok in [false, true] {
                        let n = cells[((t * QTYPES.len() + q) * RCODES.len() + r) * 2
                            + usize::from(dnssec_ok)];
                        if n > 0 {
                            out.answers.push((transport, qtype, rcode, dnssec_ok, n));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Where a change came from, for the publish counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The native API's PUT and DELETE.
    Api,
    /// The native API's batch.
    Batch,
    /// The PowerDNS PATCH.
    Pdns,
    /// RFC 2136 UPDATE.
    Update,
    /// Rollout waves and reverts.
    Rollout,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Api,
        Source::Batch,
        Source::Pdns,
        Source::Update,
        Source::Rollout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Batch => "batch",
            Self::Pdns => "pdns",
            Self::Update => "update",
            Self::Rollout => "rollout",
        }
    }
}

/// Upper bounds of the publish-to-visible buckets, in seconds.
pub const PUBLISH_BUCKETS: [f64; 10] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];

/// The write path's counters.
#[derive(Debug, Default)]
pub struct PublishStats {
    /// By source, then: applied, refused (the request's fault), failed (the server's).
    results: [[AtomicU64; 3]; Source::ALL.len()],
    /// Publish-to-visible: counts per bucket (then +Inf), and the sum in microseconds.
    seconds: [AtomicU64; PUBLISH_BUCKETS.len() + 1],
    micros: AtomicU64,
    signatures: AtomicU64,
    /// Zones whose refreshed signatures the store could not take at the last try.
    at_risk: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// What became of node reports, by [`ReportOutcome`].
    reports: [AtomicU64; ReportOutcome::ALL.len()],
}

/// What became of a node report (`herald_reports_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Stored as the node's latest.
    Stored,
    /// Valid, but not newer than what the store holds: a replay, or late.
    Stale,
    /// Signed with a key that is not the node's, or not signed.
    Forged,
    /// Signed too far from the server's time (RFC 8945 §5.2.3).
    BadTime,
    /// For a node the zone does not have, or a seq above the one published.
    Unknown,
    /// Not a report: the wrong sections, name or text.
    Malformed,
    /// Over the node's rate.
    Limited,
    /// The queue to the writer was full.
    Dropped,
    /// The store refused the write.
    Failed,
}

impl ReportOutcome {
    pub const ALL: [ReportOutcome; 9] = [
        Self::Stored,
        Self::Stale,
        Self::Forged,
        Self::BadTime,
        Self::Unknown,
        Self::Malformed,
        Self::Limited,
        Self::Dropped,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Stale => "stale",
            Self::Forged => "forged",
            Self::BadTime => "badtime",
            Self::Unknown => "unknown",
            Self::Malformed => "malformed",
            Self::Limited => "limited",
            Self::Dropped => "dropped",
            Self::Failed => "failed",
        }
    }
}

/// The result of a change, for the publish counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Refused,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Applied, Outcome::Refused, Outcome::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

impl PublishStats {
    /// Counts `n` reports that ended as `outcome`.
    pub fn reports(&self, outcome: ReportOutcome, n: u64) {
        self.reports[outcome as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// How many reports ended as `outcome`.
    pub fn report_count(&self, outcome: ReportOutcome) -> u64 {
        self.reports[outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts one change, answered after `micros` microseconds.
    pub fn record(&self, source: Source, outcome: Outcome, micros: u64) {
        self.results[source as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
        if outcome == Outcome::Applied {
            let seconds = micros as f64 / 1e6;
            let i = PUBLISH_BUCKETS
                .iter()
                .position(|b| seconds <= *b)
                .unwrap_or(PUBLISH_BUCKETS.len());
            self.seconds[i].fetch_add(1, Ordering::Relaxed);
            self.micros.fetch_add(micros, Ordering::Relaxed);
        }
    }

    /// Marks `zone` at risk (its refreshes cannot be stored) or not; true when that changed.
    pub fn set_at_risk(&self, zone: &str, risk: bool) -> bool {
        let mut set = self.at_risk.lock().unwrap_or_else(|p| p.into_inner());
        if risk {
            set.insert(zone.to_owned())
        } else {
            set.remove(zone)
        }
    }

    /// Whether `zone` is at risk: its served signatures age while refreshes fail to store.
    pub fn is_at_risk(&self, zone: &str) -> bool {
        let set = self.at_risk.lock().unwrap_or_else(|p| p.into_inner());
        set.contains(zone)
    }

    /// Counts signatures made.
    pub fn signed(&self, n: usize) {
        self.signatures.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The count of changes from `source` with `outcome`.
    pub fn count(&self, source: Source, outcome: Outcome) -> u64 {
        self.results[source as usize][outcome as usize].load(Ordering::Relaxed)
    }

    /// Publish-to-visible: counts per bucket (each bucket's own), then the sum in seconds.
    pub fn visible(&self) -> (Vec<u64>, f64) {
        let counts = self
            .seconds
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (counts, self.micros.load(Ordering::Relaxed) as f64 / 1e6)
    }

    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rcode: u8, tc: bool, len: usize) -> Vec<u8> {
        let mut a = vec![0u8; len];
        a[2] = 0x80 | if tc { 0x02 } else { 0 };
        a[3] = rcode;
        a
    }

    #[test]
    fn blocks_sum_at_scrape_time() {
        let stats = QueryStats::default();
        let (one, two) = (stats.block(), stats.block());
        one.record(0, 16, true, &answer(0, false, 250));
        one.record(0, 16, true, &answer(0, false, 250));
        two.record(0, 16, true, &answer(0, true, 1300));
        two.add(1, 999, false, &answer(3, false, 90));
        let s = stats.snapshot();
        assert_eq!(
            s.answers,
            [
                ("udp", "TXT", "NOERROR", true, 3),
                ("tcp", "other", "NXDOMAIN", false, 1)
            ]
        );
        assert_eq!(s.truncated, [1, 0]);
        // UDP: two of 250 bytes (bucket 256), one of 1300 (bucket 4096).
        assert_eq!(s.sizes[0].0, [0, 0, 2, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(s.sizes[0].1, 1800);
        assert_eq!(s.sizes[1].0[1], 1);
    }

    #[test]
    fn publishes_count_by_source_and_outcome() {
        let p = PublishStats::default();
        p.record(Source::Pdns, Outcome::Applied, 800);
        p.record(Source::Pdns, Outcome::Applied, 3000);
        p.record(Source::Update, Outcome::Refused, 10);
        assert_eq!(p.count(Source::Pdns, Outcome::Applied), 2);
        assert_eq!(p.count(Source::Update, Outcome::Refused), 1);
        let (buckets, sum) = p.visible();
        assert_eq!(buckets[1], 1); // ≤ 1 ms
        assert_eq!(buckets[3], 1); // ≤ 5 ms
        assert!((sum - 0.0038).abs() < 1e-9);
    }
}
