//! JSON of the zone's keys and key rollover (`GET /v1/zones/{zone}`, `POST …/keys/roll`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::zone::snapshot::{KeyView, KeysView, RollView};

/// `POST /v1/zones/{zone}/keys/roll`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollKeyJson {
    /// The new key's algorithm: 13 (ECDSA P-256) or 15 (Ed25519); the current one's when
    /// absent. Another than the current one makes it an algorithm change.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_algorithm"
    )]
    #[schema(schema_with = algorithm_schema)]
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
    #[serde(default, deserialize_with = "whole_ttl")]
    #[schema(minimum = 0, maximum = 2147483647)]
    pub ttl: u32,
}

/// An algorithm number as JSON Schema's integers take them (`15.0` too); the handler says
/// which ones Herald signs with.
fn whole_algorithm<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let a = super::whole::<D::Error>(&n)?;
    u8::try_from(a)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("algorithm {a} is not one")))
}

/// A TTL from a whole JSON number, at most 2^31 - 1 (RFC 2181 §8).
fn whole_ttl<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    match super::whole::<D::Error>(&n)? {
        t if t <= i32::MAX as u64 => Ok(t as u32),
        t => Err(serde::de::Error::custom(format!(
            "ttl {t} is above 2147483647"
        ))),
    }
}

/// The schema of `algorithm`: the two values Herald signs with.
fn algorithm_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .enum_values(Some([13, 15]))
        .description(Some(
            "The new key's algorithm: 13 (ECDSA P-256) or 15 (Ed25519); the current one's when \
             absent",
        ))
        .build()
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
