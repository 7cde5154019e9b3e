//! JSON of the zone's keys and key rollover (`GET /v1/zones/{zone}`, `POST …/keys/roll`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::zone::snapshot::{KeyView, KeysView, RollView};

/// `POST /v1/zones/{zone}/keys/roll`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollKeyJson {
    /// The new key's algorithm: 13 (ECDSA P-256) or 15 (Ed25519); the current one's when
    /// absent. A change of algorithm is refused for now (422).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 13, maximum = 15, example = 13)]
    pub algorithm: Option<u8>,
    /// End with the old key published revoked (RFC 5011 §2.1) rather than just removed. Sent
    /// while a rollover runs, it hurries that rollover to the revocation.
    #[serde(default)]
    pub revoke_old: bool,
    /// Keep the old key until the parent's DS names the new one, as `POST
    /// …/keys/ds-seen` (which `herald key roll --wait-ds` sends) says.
    #[serde(default)]
    pub wait_ds: bool,
}

/// `POST /v1/zones/{zone}/keys/ds-seen`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DsSeenJson {
    /// The TTL the parent serves the DS RRset with: the old key stays until the new DS has
    /// replaced the old one in every cache.
    #[serde(default)]
    #[schema(maximum = 2147483647)]
    pub ttl: u32,
}

/// A zone's keys and rollover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeysJson {
    /// The published keys.
    pub keys: Vec<KeyJson>,
    /// The key rollover running, or the last one done; absent if the zone never rolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollover: Option<RolloverJson>,
}

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyJson {
    /// The key tag it signs under (its revoked tag once revoked).
    pub tag: u16,
    pub algorithm: u8,
    /// `signing`, `incoming` (published before it signs), `retiring` (published until its
    /// signatures have left the caches) or `revoked`.
    #[schema(example = "signing")]
    pub state: String,
    /// Its key file inside the data directory's `keys/`.
    pub file: String,
}

/// A key rollover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RolloverJson {
    /// `publish`, `switch`, `revoke` or `done`.
    #[schema(example = "publish")]
    pub step: String,
    /// Unix seconds.
    pub started_at: u64,
    pub step_at: u64,
    /// When the next step is due (unix seconds); absent when done or waiting for the
    /// re-signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step_at: Option<u64>,
    /// What the next step waits for.
    pub waiting_for: String,
    pub revoke_old: bool,
    /// Whether the old key waits for the parent's DS.
    #[serde(default)]
    pub wait_ds: bool,
    /// From when the parent's new DS is in every cache (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds_seen_at: Option<u64>,
}

impl From<&KeysView> for KeysJson {
    fn from(v: &KeysView) -> Self {
        Self {
            keys: v.keys.iter().map(KeyJson::from).collect(),
            rollover: v.rollover.as_ref().map(RolloverJson::from),
        }
    }
}

impl From<&KeyView> for KeyJson {
    fn from(k: &KeyView) -> Self {
        Self {
            tag: k.tag,
            algorithm: k.algorithm,
            state: k.state.to_owned(),
            file: k.file.clone(),
        }
    }
}

impl From<&RollView> for RolloverJson {
    fn from(r: &RollView) -> Self {
        Self {
            step: r.step.to_owned(),
            started_at: r.started_at,
            step_at: r.step_at,
            next_step_at: r.next_step_at,
            waiting_for: r.waiting_for.clone(),
            revoke_old: r.revoke_old,
            wait_ds: r.wait_ds,
            ds_seen_at: r.ds_seen_at,
        }
    }
}
