//! The JSON bodies of rollouts and the deny-list.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{DeniedRow, RolloutRow, Selector, WaveCounts};

/// `nodes` of a rollout: `"*"`, `"prefix*"`, or a list of node names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NodesJson {
    /// `*` (every node of the zone) or `prefix*`: the matching nodes when the rollout starts.
    /// A single node name is a list of one.
    Pattern(String),
    /// These nodes; each must exist.
    List(Vec<String>),
}

/// `POST /v1/zones/{zone}/rollouts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRolloutJson {
    /// The commit to publish.
    #[schema(
        pattern = r"^([0-9a-f]{40}|[0-9a-f]{64})$",
        example = "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f"
    )]
    pub commit: String,
    pub nodes: NodesJson,
    /// Nodes published first, as a wave of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canary: Vec<String>,
    /// Cumulative percentages of the nodes, rising, the last 100 (default `[100]`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_list"
    )]
    #[schema(example = json!([10, 50, 100]))]
    pub waves: Option<Vec<u64>>,
    /// Seconds a wave stays published before the next may start (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_one"
    )]
    #[schema(minimum = 0, maximum = 31622400)]
    pub interval: Option<u64>,
    /// Percent of a wave's nodes that must report `applied` before the next wave (default 100).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_one"
    )]
    #[schema(minimum = 0, maximum = 100)]
    pub min_applied: Option<u64>,
    /// Halt when more nodes than this report `failed` (default 0: the first failure halts).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_one"
    )]
    #[schema(minimum = 0, maximum = 9223372036854775807_u64)]
    pub max_failed: Option<u64>,
    /// At most this many nodes published and not yet reported (default: no cap).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_one"
    )]
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub max_in_flight: Option<u64>,
}

fn whole_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| super::whole(&n))
        .transpose()
}

fn whole_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u64>>, D::Error> {
    Option::<Vec<serde_json::Number>>::deserialize(d)?
        .map(|v| v.iter().map(super::whole).collect())
        .transpose()
}

/// `POST …/rollouts/{id}/abort`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortJson {
    /// Publish back each touched node's previous commit, with a new seq.
    #[serde(default)]
    pub revert: bool,
}

/// One wave of a rollout, by what its nodes reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaveJson {
    /// `canary`, or the cumulative percentage (`10%`).
    pub label: String,
    pub nodes: u64,
    /// Published by the rollout.
    pub published: u64,
    /// Reported `applied` for the rollout's seq (or later).
    pub applied: u64,
    /// Reported `failed` for it.
    pub failed: u64,
}

/// A rollout as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RolloutJson {
    pub id: u64,
    pub zone: String,
    pub commit: String,
    pub nodes: NodesJson,
    pub canary: Vec<String>,
    pub waves: Vec<u8>,
    pub interval: u64,
    pub min_applied: u8,
    pub max_failed: u64,
    pub max_in_flight: Option<u64>,
    /// `running`, `paused`, `halted`, `completed` or `aborted`.
    pub state: String,
    /// Why it halted or ended.
    pub reason: Option<String>,
    /// The current wave's index into `progress`.
    pub wave: u32,
    /// Per wave, in order.
    pub progress: Vec<WaveJson>,
    /// All waves together.
    pub total: WaveJson,
    /// How many nodes an abort with revert published back.
    pub reverted: u64,
    /// Unix seconds.
    pub created: u64,
    pub updated: u64,
    /// `admin`, or the id of the scoped token that made it.
    pub created_by: String,
}

impl RolloutJson {
    pub fn new(row: RolloutRow, counts: &[WaveCounts]) -> Self {
        let wave = |label: String, c: &WaveCounts| WaveJson {
            label,
            nodes: c.nodes,
            published: c.published,
            applied: c.applied,
            failed: c.failed,
        };
        let progress = counts
            .iter()
            .enumerate()
            .map(|(i, c)| wave(row.wave_label(i as u32), c))
            .collect();
        let sum = counts
            .iter()
            .fold(WaveCounts::default(), |a, c| WaveCounts {
                nodes: a.nodes + c.nodes,
                published: a.published + c.published,
                applied: a.applied + c.applied,
                failed: a.failed + c.failed,
            });
        Self {
            id: row.id,
            nodes: match &row.selector {
                Selector::Pattern(p) => NodesJson::Pattern(p.to_string()),
                Selector::List(l) => NodesJson::List(l.iter().map(|n| n.to_string()).collect()),
            },
            canary: row.canary.iter().map(|n| n.to_string()).collect(),
            zone: row.zone,
            commit: row.commit,
            waves: row.waves,
            interval: row.interval,
            min_applied: row.min_applied,
            max_failed: row.max_failed,
            max_in_flight: row.max_in_flight,
            state: row.state.as_str().to_owned(),
            reason: row.reason,
            wave: row.wave,
            progress,
            total: wave("all".to_owned(), &sum),
            reverted: row.reverted,
            created: row.created,
            updated: row.updated,
            created_by: row.created_by,
        }
    }
}

/// `GET /v1/zones/{zone}/rollouts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutList {
    /// Newest first.
    pub rollouts: Vec<RolloutJson>,
}

/// `POST /v1/zones/{zone}/denied-commits`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyJson {
    #[schema(
        pattern = r"^([0-9a-f]{40}|[0-9a-f]{64})$",
        example = "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f"
    )]
    pub commit: String,
    /// Why, for the operators who meet the refusal (at most 256 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub reason: Option<String>,
}

/// A denied commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeniedJson {
    pub commit: String,
    pub reason: String,
    /// Unix seconds.
    pub created: u64,
    /// The rollouts of this commit that the deny halted (in the answer to the deny).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub halted: Vec<u64>,
}

impl From<DeniedRow> for DeniedJson {
    fn from(r: DeniedRow) -> Self {
        Self {
            commit: r.commit,
            reason: r.reason,
            created: r.created,
            halted: Vec::new(),
        }
    }
}

/// `GET /v1/zones/{zone}/denied-commits`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeniedList {
    pub denied: Vec<DeniedJson>,
}
