//! The JSON bodies of the admin API, shared by the server's handlers and by `herald publish`.

use serde::{Deserialize, Serialize};

pub use crate::dns::secondaries::{Secondary, TransferCounts};

use crate::store::{HistoryRow, NodeRow};

/// A node as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        }
    }
}

/// `PUT /v1/zones/{zone}/nodes/{node}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PutNode {
    pub commit: String,
}

/// One publish of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchSet {
    pub node: String,
    pub commit: String,
}

/// `POST /v1/zones/{zone}/batch`: applied all or nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BatchRequest {
    #[serde(default)]
    pub set: Vec<BatchSet>,
    #[serde(default)]
    pub delete: Vec<String>,
}

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The zone's serial after the batch.
    pub serial: u32,
    /// The published nodes, in request order.
    pub nodes: Vec<NodeJson>,
    /// The deleted nodes, in request order.
    pub deleted: Vec<String>,
}

/// `GET /v1/zones/{zone}/nodes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeList {
    pub nodes: Vec<NodeJson>,
    /// Pass as `after` to get the next page; `null` on the last page.
    pub next: Option<String>,
}

/// One past publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    pub history: Vec<HistoryEntry>,
}

/// A zone as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub secondaries: Vec<Secondary>,
    /// Transfer and NOTIFY counters since start.
    #[serde(default)]
    pub transfers: TransferCounts,
    /// The IXFR journal held in memory: entries and bytes.
    #[serde(default)]
    pub journal: JournalJson,
}

/// The `journal` member of zone JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalJson {
    pub entries: usize,
    pub bytes: usize,
    /// The oldest serial an IXFR can start from, when there is a journal.
    pub oldest_serial: Option<u32>,
}

/// `GET /v1/zones`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneList {
    pub zones: Vec<ZoneJson>,
}

/// Every error answer: `{"error": "<message>"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
