//! Zone handlers and the health check.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use serde_json::json;

use super::AppState;
use super::JsonBody;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{ReadErrors, WriteErrors, ZonePath};
use super::types::{DsSeenJson, ErrorBody, JournalJson, KeysJson, RollKeyJson, ZoneJson, ZoneList};
use crate::publish::RollRequest;
use hickory_proto::dnssec::Algorithm;

async fn zone_json(state: &AppState, zone: String) -> Result<ZoneJson, ApiError> {
    let Some(snapshot) = state.zones.load().get(&zone).cloned() else {
        return Err(ApiError::NotFound(format!("zone {zone} is not served")));
    };
    let z = zone.clone();
    let row = state
        .read(move |s| s.zone(&z))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("zone {zone} is not served")))?;
    let (secondaries, transfers) = state.secondaries.report(&zone, snapshot.serial);
    let journal = JournalJson {
        entries: snapshot.journal.len(),
        bytes: snapshot.journal.iter().map(|(_, e)| e.diff.len()).sum(),
        oldest_serial: snapshot.journal.first().map(|(_, e)| e.serial_from),
    };
    let node_states = state.node_states(&zone).await?.into();
    let keys = KeysJson::from(snapshot.keys.as_ref());
    Ok(ZoneJson {
        zone,
        serial: row.serial,
        nodes: row.node_count,
        dnskey: snapshot.dnskey.to_vec(),
        ds: snapshot.ds.to_vec(),
        secondaries: secondaries.into_iter().map(Into::into).collect(),
        transfers: transfers.into(),
        journal,
        node_states,
        keys: keys.keys,
        rollover: keys.rollover,
    })
}

/// `POST /v1/zones/{zone}/keys/roll` (admin only): starts a rollover of the zone's signing
/// key (RFC 7583 §3.4, see `crate::dnssec::roll`), or with `revoke_old` hurries the running
/// one to the revocation of its old key. Answers once the first step is durable and served.
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/keys/roll",
    tag = "zones",
    params(ZonePath),
    request_body = RollKeyJson,
    responses(
        (status = 200, description = "The rollover's first step is served; the zone's keys", body = KeysJson),
        (status = 409, description = "A rollover is running and `revoke_old` was not given", body = ErrorBody),
        (status = 422, description = "An algorithm Herald cannot roll to", body = ErrorBody),
        WriteErrors,
    )
)]
pub async fn roll_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<RollKeyJson>, ApiError>,
) -> Result<Json<KeysJson>, ApiError> {
    caller.check_admin()?;
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    let JsonBody(req) = body?;
    let algorithm = match req.algorithm {
        None => None,
        Some(13) => Some(Algorithm::ECDSAP256SHA256),
        Some(15) => Some(Algorithm::ED25519),
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "algorithm {other}: use 13 (ECDSAP256SHA256) or 15 (ED25519)"
            )));
        }
    };
    let request = RollRequest {
        algorithm,
        revoke_old: req.revoke_old,
        wait_ds: req.wait_ds,
    };
    let keys = state.publisher.roll_key(&zone, request).await?;
    Ok(Json(KeysJson::from(&keys)))
}

/// `POST /v1/zones/{zone}/keys/ds-seen` (admin only): the parent's DS names the new key of a
/// rollover started with `wait_ds`, served with `ttl`; the old key may go once that DS is in
/// every cache. `herald key roll --wait-ds --parent ADDR` checks the parent and sends it.
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/keys/ds-seen",
    tag = "zones",
    params(ZonePath),
    request_body = DsSeenJson,
    responses(
        (status = 200, description = "Recorded; the zone's keys", body = KeysJson),
        (status = 409, description = "No rollover waits for the parent's DS", body = ErrorBody),
        WriteErrors,
    )
)]
pub async fn ds_seen(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<DsSeenJson>, ApiError>,
) -> Result<Json<KeysJson>, ApiError> {
    caller.check_admin()?;
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    let JsonBody(req) = body?;
    let keys = state.publisher.ds_seen(&zone, req.ttl).await?;
    Ok(Json(KeysJson::from(&keys)))
}

/// `GET /v1/zones`: every served zone the caller may see, by name.
#[utoipa::path(
    get,
    path = "/v1/zones",
    tag = "zones",
    responses(
        (status = 200, description = "The zones the caller may see, by name", body = ZoneList),
        (status = 401, description = "No token, or not a valid one", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<ZoneList>, ApiError> {
    let mut names: Vec<String> = state
        .zones
        .load()
        .iter()
        .map(|z| z.name.to_string())
        .filter(|z| caller.may_see(z))
        .collect();
    names.sort();
    let mut zones = Vec::with_capacity(names.len());
    for name in names {
        zones.push(zone_json(&state, name).await?);
    }
    Ok(Json(ZoneList { zones }))
}

/// `GET /v1/zones/{zone}`.
#[utoipa::path(
    get,
    path = "/v1/zones/{zone}",
    tag = "zones",
    params(
        ZonePath,
    ),
    responses(
        (status = 200, description = "The zone: serial, nodes, keys, secondaries", body = ZoneJson),
        ReadErrors,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
) -> Result<Json<ZoneJson>, ApiError> {
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    caller.check_zone(&zone)?;
    Ok(Json(zone_json(&state, zone).await?))
}

/// `GET /healthz`: 200 when the DNS loops run and the store answers; no token needed.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "server",
    security(()),
    responses(
        (status = 200, description = "DNS and the store are up", body = Health),
        (status = 503, description = "DNS or the store is down", body = ErrorBody),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if !(state.dns_up)() {
        return Err(ApiError::Unavailable("dns is not serving".into()));
    }
    state
        .read(|s| s.check())
        .await
        .map_err(|_| ApiError::Unavailable("the store does not answer".into()))?;
    Ok(Json(json!({"status": "ok"})))
}

/// The answer of `/healthz`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}
