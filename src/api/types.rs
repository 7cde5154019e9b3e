//! The JSON bodies of the admin API, shared by the server's handlers and by `herald publish`.
//! Each is built from the plain values of the layer that holds the data (store rows, the DNS
//! side's secondary status), so the wire form of the API is decided here and only here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dns::secondaries::{NotifyStatus, Secondary, TransferCounts, TransferStatus};
use crate::store::{HistoryRow, NodeRow, ReportRow, TokenRow};

mod keys;
mod rollouts;
pub use keys::*;
pub use rollouts::*;

/// A node as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeJson {
    /// The zone, without the trailing dot.
    pub zone: String,
    pub node: String,
    /// The fully qualified owner name of the TXT record.
    pub name: String,
    pub commit: String,
    pub seq: u64,
    pub ts: u64,
    /// The SOA serial that first carried this publish.
    pub serial: u32,
    /// The node's latest report (`herald watch` after a hook run). Left out when the node has
    /// not reported, and in the answers to writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedJson>,
}

/// What a node last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppliedJson {
    /// The seq its hook ran for.
    pub seq: u64,
    pub commit: String,
    /// `applied` or `failed`.
    pub status: String,
    /// The hook's exit code; -1 when it had none (killed, timed out).
    pub code: i32,
    /// When the hook ended, by the node's clock (Unix seconds).
    pub at: u64,
    /// When the server took the report (Unix seconds).
    pub received: u64,
}

impl NodeJson {
    pub fn new(zone: &str, row: NodeRow) -> Self {
        Self {
            zone: zone.to_owned(),
            name: format!("{}.{zone}.", row.node),
            node: row.node,
            commit: row.commit,
            seq: row.seq,
            ts: row.ts,
            serial: row.serial,
            applied: None,
        }
    }

    /// The same, with the node's latest report.
    pub fn with_report(mut self, report: Option<ReportRow>) -> Self {
        self.applied = report.map(|r| AppliedJson {
            seq: r.seq,
            commit: r.commit,
            status: r.status,
            code: r.code,
            at: r.at,
            received: r.received,
        });
        self
    }
}

/// `PUT /v1/zones/{zone}/nodes/{node}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PutNode {
    /// The commit the node should run: a git SHA-1 or SHA-256 object name.
    #[schema(
        pattern = r"^([0-9a-f]{40}|[0-9a-f]{64})$",
        example = "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f"
    )]
    pub commit: String,
}

/// One publish of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchSet {
    #[schema(
        pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
        example = "n1"
    )]
    pub node: String,
    #[schema(
        pattern = r"^([0-9a-f]{40}|[0-9a-f]{64})$",
        example = "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f"
    )]
    pub commit: String,
}

/// `POST /v1/zones/{zone}/batch`: applied all or nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// Nodes to publish; each node at most once in the whole batch.
    #[serde(default)]
    pub set: Vec<BatchSet>,
    /// Nodes to delete.
    #[serde(default)]
    #[schema(inline, value_type = Vec<NodeName>)]
    pub delete: Vec<String>,
}

/// A node label.
#[derive(ToSchema)]
#[schema(
    pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
    example = "n1"
)]
#[allow(dead_code)]
pub struct NodeName(String);

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// The zone's serial after the batch.
    pub serial: u32,
    /// The published nodes, in request order.
    pub nodes: Vec<NodeJson>,
    /// The deleted nodes, in request order.
    pub deleted: Vec<String>,
}

/// `GET /v1/zones/{zone}/nodes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    pub nodes: Vec<NodeJson>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next: Option<String>,
}

/// One past publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub commit: String,
    pub seq: u64,
    pub ts: u64,
}

impl From<HistoryRow> for HistoryEntry {
    fn from(h: HistoryRow) -> Self {
        Self {
            commit: h.commit,
            seq: h.seq,
            ts: h.ts,
        }
    }
}

/// `GET /v1/zones/{zone}/nodes/{node}/history`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct History {
    pub history: Vec<HistoryEntry>,
}

/// A zone as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZoneJson {
    pub zone: String,
    pub serial: u32,
    /// How many nodes the zone holds.
    pub nodes: u64,
    /// The zone's DNSKEY records in presentation format
    /// (`example.test. 3600 IN DNSKEY 257 3 13 …`).
    pub dnskey: Vec<String>,
    /// The DS records to give the parent zone, in presentation format.
    pub ds: Vec<String>,
    /// Per secondary: the last NOTIFY sent and the last serial it transferred.
    #[serde(default)]
    pub secondaries: Vec<SecondaryJson>,
    /// Transfer and NOTIFY counters since start.
    #[serde(default)]
    pub transfers: TransfersJson,
    /// The IXFR journal held in memory: entries and bytes.
    #[serde(default)]
    pub journal: JournalJson,
    /// The nodes by state, from their reports (`GET …/nodes?state=`).
    #[serde(default)]
    pub node_states: NodeStatesJson,
    /// The published keys and their states.
    #[serde(default)]
    pub keys: Vec<KeyJson>,
    /// The key rollover running, or the last one done; absent if the zone never rolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollover: Option<RolloverJson>,
}

/// How many nodes are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeStatesJson {
    /// Applied the published seq.
    pub current: u64,
    /// Latest report for an older seq.
    pub behind: u64,
    /// The hook failed on the published seq.
    pub failed: u64,
    /// No report, or none for longer than `report-silent-after`.
    pub silent: u64,
}

impl From<[u64; 4]> for NodeStatesJson {
    /// From counts in the order of `NodeState::ALL`.
    fn from([current, behind, failed, silent]: [u64; 4]) -> Self {
        Self {
            current,
            behind,
            failed,
            silent,
        }
    }
}

/// One secondary in zone JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecondaryJson {
    /// A NOTIFY target (`ip:port`), or the address of a peer that transferred the zone without
    /// being a target.
    pub address: String,
    pub last_notify: Option<NotifyJson>,
    /// The last transfer from this address (peers are told apart by IP address only).
    pub last_transfer: Option<TransferJson>,
    /// Whether the last serial this secondary is known to hold is older than the zone's.
    pub behind: bool,
}

/// The last NOTIFY sent to a secondary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotifyJson {
    /// The serial it announced.
    pub serial: u32,
    /// Unix seconds of the last attempt.
    pub sent: u64,
    /// Whether the target acknowledged that serial.
    pub acked: bool,
    /// Attempts for that serial so far (retries back off from 1 s to 60 s).
    pub attempts: u32,
}

/// The last transfer a secondary took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferJson {
    /// The serial it received (or already had, for an up-to-date IXFR).
    pub serial: u32,
    /// `AXFR`, `IXFR`, `IXFR-AXFR` (an IXFR answered with the whole zone because the journal
    /// did not reach back far enough), or `current` (it was up to date).
    pub kind: String,
    /// Unix seconds.
    pub at: u64,
}

/// The `transfers` member of zone JSON: counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransfersJson {
    pub axfr: u64,
    pub ixfr: u64,
    /// IXFR requests answered with the whole zone.
    pub ixfr_fallback: u64,
    /// IXFR requests from peers already up to date.
    pub current: u64,
    /// Transfer requests refused (address not allowed, or a bad TSIG).
    pub refused: u64,
    pub notifies_sent: u64,
    pub notifies_acked: u64,
}

impl From<Secondary> for SecondaryJson {
    fn from(s: Secondary) -> Self {
        Self {
            address: s.address,
            last_notify: s.last_notify.map(NotifyJson::from),
            last_transfer: s.last_transfer.map(TransferJson::from),
            behind: s.behind,
        }
    }
}

impl From<NotifyStatus> for NotifyJson {
    fn from(n: NotifyStatus) -> Self {
        Self {
            serial: n.serial,
            sent: n.sent,
            acked: n.acked,
            attempts: n.attempts,
        }
    }
}

impl From<TransferStatus> for TransferJson {
    fn from(t: TransferStatus) -> Self {
        Self {
            serial: t.serial,
            kind: t.kind.as_str().to_owned(),
            at: t.at,
        }
    }
}

impl From<TransferCounts> for TransfersJson {
    fn from(c: TransferCounts) -> Self {
        Self {
            axfr: c.axfr,
            ixfr: c.ixfr,
            ixfr_fallback: c.ixfr_fallback,
            current: c.current,
            refused: c.refused,
            notifies_sent: c.notifies_sent,
            notifies_acked: c.notifies_acked,
        }
    }
}

/// The `journal` member of zone JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JournalJson {
    pub entries: usize,
    pub bytes: usize,
    /// The oldest serial an IXFR can start from, when there is a journal.
    pub oldest_serial: Option<u32>,
}

/// `GET /v1/zones`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ZoneList {
    pub zones: Vec<ZoneJson>,
}

/// Every error answer: `{"error": "<message>"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /v1/tokens`: a token scoped to nodes of one zone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A served zone.
    #[schema(example = "example.test")]
    pub zone: String,
    /// `n1`, `prefix*` or `*`.
    #[schema(
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?|[A-Za-z0-9][A-Za-z0-9-]{0,61}\*|\*)$",
        example = "web-*"
    )]
    pub nodes: String,
    /// Seconds from now after which the token is refused (at most ten years).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_seconds"
    )]
    #[schema(minimum = 1, maximum = 316224000)]
    pub expires_in: Option<u64>,
    /// Up to 256 bytes, without control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
}

/// A count of seconds, written as JSON writes integers: `3600`, and also `3600.0` (a number
/// with a zero fraction is an integer to JSON Schema, and to JavaScript clients).
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| whole(&n))
        .transpose()
}

/// A non-negative integer from a JSON number, `3` or `3.0` alike (JSON Schema's integers).
pub(crate) fn whole<E: serde::de::Error>(n: &serde_json::Number) -> Result<u64, E> {
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Ok(f as u64),
        _ => Err(E::custom(format!(
            "expected a whole number, not below 0, got {n}"
        ))),
    }
}

/// The answer to `POST /v1/tokens`: the only time the secret is shown. Its `Debug` leaves the
/// secret out.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub zone: String,
    pub nodes: String,
    /// Unix seconds, or `null` for a token that does not expire.
    pub expires: Option<u64>,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("id", &self.id)
            .field("zone", &self.zone)
            .field("nodes", &self.nodes)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A token in `GET /v1/tokens`, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenJson {
    pub id: String,
    pub zone: String,
    pub nodes: String,
    pub description: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds, or `null`.
    pub expires: Option<u64>,
    /// Whether it is past `expires` now (refused, but listed until revoked).
    pub expired: bool,
}

impl TokenJson {
    pub fn new(row: TokenRow, now: u64) -> Self {
        Self {
            expired: row.expires.is_some_and(|e| now >= e),
            id: row.id,
            zone: row.zone,
            nodes: row.nodes,
            description: row.description,
            created: row.created,
            expires: row.expires,
        }
    }
}

/// `GET /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenJson>,
}
