//! Rollout and deny-list handlers (DESIGN.md, "Rollouts"):
//!
//! - `POST /v1/zones/{zone}/rollouts` makes a rollout; the driver
//!   ([`crate::publish::rollout`]) publishes its waves;
//! - `GET …/rollouts[/{id}]` shows them with their per-wave counts;
//! - `POST …/rollouts/{id}/pause|resume|abort` drive them; an abort with `"revert": true`
//!   publishes every touched node's previous commit back before it answers;
//! - `POST|GET …/denied-commits`, `DELETE …/denied-commits/{commit}`: the deny-list (admin
//!   only). Denying a commit halts its running rollouts in the same transaction, and every
//!   publish path refuses it with 409 from then on.
//!
//! A scoped token may make and drive only rollouts whose nodes all lie inside its scope: its
//! selector and canaries must be covered by the token's pattern.

use std::collections::HashSet;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{ReadErrors, WriteErrors, ZonePath};
use super::types::{
    AbortJson, DeniedJson, DeniedList, DenyJson, NewRolloutJson, NodesJson, RolloutJson,
    RolloutList,
};
use super::{AppState, JsonBody, MAX_BODY};
use crate::metrics::Source;
use crate::record::{Commit, NodeLabel, NodePattern, unix_now};
use crate::store::{Change, NewRollout, RolloutAction, RolloutRow, RolloutStep, Selector, Store};

/// The most canary nodes a rollout takes.
const MAX_CANARY: usize = 1000;
/// The longest gate interval: a year.
const MAX_INTERVAL: u64 = 366 * 86_400;
/// The largest count a rollout takes (`max_failed`, `max_in_flight`), and the largest id: a
/// SQLite integer.
const MAX_COUNT: u64 = i64::MAX as u64;
/// The longest deny reason kept.
const MAX_REASON: usize = 256;
/// Rollouts per list, by default and at most.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// The path of one rollout's routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct RolloutPath {
    /// The zone, with or without the trailing dot.
    #[param(example = "example.test")]
    zone: String,
    /// The rollout's id.
    #[param(minimum = 1, example = 1)]
    id: u64,
}

/// The path of a denied commit.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct DeniedPath {
    /// The zone, with or without the trailing dot.
    #[param(example = "example.test")]
    zone: String,
    /// The commit.
    #[param(pattern = r"^([0-9a-f]{40}|[0-9a-f]{64})$")]
    commit: String,
}

/// The query of a rollout list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RolloutListParams {
    /// Rollouts per answer, newest first: 1 to 100 (default 20).
    #[param(nullable = false, minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// Whether `caller` may make or drive a rollout of these nodes.
fn may_cover(caller: &Caller, zone: &str, selector: &Selector, canary: &[NodeLabel]) -> bool {
    let Caller::Scoped { scope, .. } = caller else {
        return true;
    };
    let nodes = match selector {
        Selector::Pattern(p) => scope.zone == zone && scope.nodes.covers(p),
        Selector::List(list) => list.iter().all(|n| scope.allows(zone, n.as_str())),
    };
    nodes && canary.iter().all(|n| scope.allows(zone, n.as_str()))
}

fn check_cover(caller: &Caller, row: &RolloutRow) -> Result<(), ApiError> {
    if may_cover(caller, &row.zone, &row.selector, &row.canary) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "rollout {} covers nodes outside this token's scope",
            row.id
        )))
    }
}

/// Reads and checks a new rollout.
fn parse_rollout(zone: &str, req: NewRolloutJson, caller: &Caller) -> Result<NewRollout, ApiError> {
    let invalid = ApiError::Invalid;
    let commit = Commit::parse(&req.commit).map_err(|e| invalid(format!("commit: {e}")))?;
    let selector = match req.nodes {
        NodesJson::Pattern(text) => match NodePattern::parse(&text) {
            Ok(NodePattern::Exact(node)) => Selector::List(vec![node]),
            Ok(pattern) => Selector::Pattern(pattern),
            Err(e) => return Err(invalid(format!("nodes: {e}"))),
        },
        NodesJson::List(list) => {
            if list.is_empty() {
                return Err(invalid("nodes: the list is empty".into()));
            }
            let mut seen = HashSet::new();
            let mut nodes = Vec::with_capacity(list.len());
            for (i, n) in list.iter().enumerate() {
                let node = NodeLabel::parse(n).map_err(|e| invalid(format!("nodes[{i}]: {e}")))?;
                if !seen.insert(node.clone()) {
                    return Err(invalid(format!("nodes: {node} appears more than once")));
                }
                nodes.push(node);
            }
            Selector::List(nodes)
        }
    };
    if req.canary.len() > MAX_CANARY {
        return Err(invalid(format!("canary: at most {MAX_CANARY} nodes")));
    }
    let mut canary = Vec::with_capacity(req.canary.len());
    for (i, n) in req.canary.iter().enumerate() {
        let node = NodeLabel::parse(n).map_err(|e| invalid(format!("canary[{i}]: {e}")))?;
        if canary.contains(&node) {
            return Err(invalid(format!("canary: {node} appears more than once")));
        }
        canary.push(node);
    }
    let asked = req.waves.unwrap_or_else(|| vec![100]);
    let rising = asked.windows(2).all(|w| w[0] < w[1]);
    if asked.is_empty() || !rising || asked[0] == 0 || asked.last() != Some(&100) {
        return Err(invalid(format!(
            "waves must be rising percentages from 1 to 100 that end at 100, got {asked:?}"
        )));
    }
    // Rising and ending at 100: each fits a u8.
    let waves: Vec<u8> = asked.iter().map(|p| *p as u8).collect();
    let interval = req.interval.unwrap_or(0);
    if interval > MAX_INTERVAL {
        return Err(invalid(format!(
            "interval must be at most {MAX_INTERVAL} seconds, got {interval}"
        )));
    }
    let min_applied = req.min_applied.unwrap_or(100);
    let Ok(min_applied @ 0..=100) = u8::try_from(min_applied) else {
        return Err(invalid(format!(
            "min_applied is a percentage, 0 to 100, got {min_applied}"
        )));
    };
    if req.max_in_flight == Some(0) {
        return Err(invalid("max_in_flight must be at least 1".into()));
    }
    for (name, value) in [
        ("max_failed", req.max_failed),
        ("max_in_flight", req.max_in_flight),
    ] {
        if value.is_some_and(|v| v > MAX_COUNT) {
            return Err(invalid(format!("{name} must be at most {MAX_COUNT}")));
        }
    }
    if !may_cover(caller, zone, &selector, &canary) {
        return Err(ApiError::Forbidden(
            "the rollout's nodes are not all inside this token's scope".into(),
        ));
    }
    Ok(NewRollout {
        zone: zone.to_owned(),
        commit,
        selector,
        canary,
        waves,
        interval,
        min_applied,
        max_failed: req.max_failed.unwrap_or(0),
        max_in_flight: req.max_in_flight,
        created_by: match caller {
            Caller::Admin => "admin".to_owned(),
            Caller::Scoped { id, .. } => id.clone(),
        },
    })
}

/// A rollout with its counts, if there is one.
fn load(
    s: &Store,
    zone: &str,
    id: u64,
) -> Result<Option<(RolloutRow, RolloutJson)>, crate::store::Error> {
    let Some(row) = s.rollout(zone, id)? else {
        return Ok(None);
    };
    let counts = s.rollout_counts(&row)?;
    Ok(Some((row.clone(), RolloutJson::new(row, &counts))))
}

/// Reads rollout `id` of `zone` for `caller`: 404 when there is none, 403 outside its scope.
async fn read_rollout(
    state: &AppState,
    caller: &Caller,
    zone: &str,
    id: u64,
) -> Result<RolloutJson, ApiError> {
    let z = zone.to_owned();
    let found = state.read(move |s| load(s, &z, id)).await?;
    let (row, json) =
        found.ok_or_else(|| ApiError::NotFound(format!("no rollout {id} in zone {zone}")))?;
    check_cover(caller, &row)?;
    Ok(json)
}

fn zone_and_id(
    state: &AppState,
    caller: &Caller,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<(String, u64), ApiError> {
    let Path((zone, id)) = path.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    caller.check_zone(&zone)?;
    // Ids are SQLite integers: anything larger names no rollout.
    if id > MAX_COUNT {
        return Err(ApiError::NotFound(format!(
            "no rollout {id} in zone {zone}"
        )));
    }
    Ok((zone, id))
}

/// `POST /v1/zones/{zone}/rollouts`: 201 with the rollout, whose first wave the driver
/// publishes at once.
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/rollouts",
    tag = "rollouts",
    params(ZonePath),
    request_body = NewRolloutJson,
    responses(
        (status = 201, description = "The rollout, running", body = RolloutJson),
        WriteErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<NewRolloutJson, MAX_BODY>, ApiError>,
) -> Result<(StatusCode, Json<RolloutJson>), ApiError> {
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    caller.check_zone(&zone)?;
    let JsonBody(req) = body?;
    let new = parse_rollout(&zone, req, &caller)?;
    let row = state
        .write_control(move |w| w.create_rollout(&new, unix_now()))
        .await??;
    tracing::info!(
        zone = %zone, rollout = row.id, commit = %row.commit, nodes = %row.selector,
        "rollout started"
    );
    (state.wake_rollouts)();
    Ok((
        StatusCode::CREATED,
        Json(read_rollout(&state, &caller, &zone, row.id).await?),
    ))
}

/// `GET /v1/zones/{zone}/rollouts`: the zone's rollouts, newest first (for a scoped token,
/// those inside its scope).
#[utoipa::path(
    get,
    path = "/v1/zones/{zone}/rollouts",
    tag = "rollouts",
    params(ZonePath, RolloutListParams),
    responses(
        (status = 200, description = "The rollouts, newest first", body = RolloutList),
        ReadErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
    params: Result<Query<RolloutListParams>, QueryRejection>,
) -> Result<Json<RolloutList>, ApiError> {
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    caller.check_zone(&zone)?;
    let Query(params) = params.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let limit = match params.limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => n,
        n => {
            return Err(ApiError::Invalid(format!(
                "limit must be 1 to {MAX_LIMIT}, got {n}"
            )));
        }
    };
    let who = caller.clone();
    let rollouts = state
        .read(move |s| {
            let mut out = Vec::new();
            for row in s.rollouts(&zone, limit)? {
                if may_cover(&who, &row.zone, &row.selector, &row.canary) {
                    let counts = s.rollout_counts(&row)?;
                    out.push(RolloutJson::new(row, &counts));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(RolloutList { rollouts }))
}

/// `GET /v1/zones/{zone}/rollouts/{id}`.
#[utoipa::path(
    get,
    path = "/v1/zones/{zone}/rollouts/{id}",
    tag = "rollouts",
    params(RolloutPath),
    responses(
        (status = 200, description = "The rollout and its waves", body = RolloutJson),
        ReadErrors,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<Json<RolloutJson>, ApiError> {
    let (zone, id) = zone_and_id(&state, &caller, path)?;
    Ok(Json(read_rollout(&state, &caller, &zone, id).await?))
}

/// Applies `action` to rollout `id` for `caller`, and answers the rollout.
async fn drive(
    state: AppState,
    caller: Caller,
    path: Result<Path<(String, u64)>, PathRejection>,
    action: RolloutAction,
) -> Result<Json<RolloutJson>, ApiError> {
    let (zone, id) = zone_and_id(&state, &caller, path)?;
    read_rollout(&state, &caller, &zone, id).await?;
    let z = zone.clone();
    let name = format!("{action:?}").to_lowercase();
    let row = state
        .write_control(move |w| w.rollout_action(&z, id, &action, unix_now()))
        .await??;
    tracing::info!(zone = %zone, rollout = id, state = row.state.as_str(), "rollout {name}");
    (state.wake_rollouts)();
    Ok(Json(read_rollout(&state, &caller, &zone, id).await?))
}

/// `POST /v1/zones/{zone}/rollouts/{id}/pause`: a running rollout stops before its next
/// publish. 409 unless it is running.
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/rollouts/{id}/pause",
    tag = "rollouts",
    params(RolloutPath),
    responses((status = 200, description = "The rollout, paused", body = RolloutJson), WriteErrors)
)]
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<Json<RolloutJson>, ApiError> {
    drive(state, caller, path, RolloutAction::Pause).await
}

/// `POST /v1/zones/{zone}/rollouts/{id}/resume`: a paused or halted rollout goes on. 409
/// otherwise, and when its commit is denied.
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/rollouts/{id}/resume",
    tag = "rollouts",
    params(RolloutPath),
    responses((status = 200, description = "The rollout, running", body = RolloutJson), WriteErrors)
)]
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<Json<RolloutJson>, ApiError> {
    drive(state, caller, path, RolloutAction::Resume).await
}

/// `POST /v1/zones/{zone}/rollouts/{id}/abort`: ends a running, paused or halted rollout.
/// With `{"revert": true}`, every node it published that still has the rollout's seq gets its
/// previous commit back, with a new seq, in one batch, before the answer.
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/rollouts/{id}/abort",
    tag = "rollouts",
    params(RolloutPath),
    request_body(content = Option<AbortJson>, description = "`{\"revert\": true}` to publish the previous commits back"),
    responses((status = 200, description = "The rollout, aborted", body = RolloutJson), WriteErrors)
)]
pub async fn abort(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: axum::body::Bytes,
) -> Result<Json<RolloutJson>, ApiError> {
    if body.len() > super::SMALL_BODY {
        return Err(ApiError::TooLarge("the abort body is too large".into()));
    }
    // No body, or `null`, is an abort without revert.
    let req: AbortJson = if body.iter().all(u8::is_ascii_whitespace) {
        AbortJson::default()
    } else {
        serde_json::from_slice::<Option<AbortJson>>(&body)
            .map_err(|e| ApiError::Malformed(format!("invalid JSON body: {e}")))?
            .unwrap_or_default()
    };
    if !req.revert {
        return drive(state, caller, path, RolloutAction::Abort).await;
    }
    let (zone, id) = zone_and_id(&state, &caller, path)?;
    read_rollout(&state, &caller, &zone, id).await?;
    let change = Change::Rollout {
        id,
        step: RolloutStep::Revert,
    };
    let applied = state
        .publisher
        .apply_as(&zone, change, Source::Rollout)
        .await?;
    tracing::info!(
        zone = %zone, rollout = id, reverted = applied.set.len(), serial = applied.serial,
        "rollout aborted and reverted"
    );
    Ok(Json(read_rollout(&state, &caller, &zone, id).await?))
}

/// `POST /v1/zones/{zone}/denied-commits` (admin only): no path may publish the commit in
/// this zone from now on, and its running rollouts halt. 201, or 200 when it was denied
/// already.
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/denied-commits",
    tag = "rollouts",
    params(ZonePath),
    request_body = DenyJson,
    responses(
        (status = 201, description = "Denied; `halted` lists the rollouts it stopped", body = DeniedJson),
        (status = 200, description = "It was denied already", body = DeniedJson),
        WriteErrors,
    )
)]
pub async fn deny(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<DenyJson>, ApiError>,
) -> Result<(StatusCode, Json<DeniedJson>), ApiError> {
    caller.check_admin()?;
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    let JsonBody(req) = body?;
    let commit =
        Commit::parse(&req.commit).map_err(|e| ApiError::Invalid(format!("commit: {e}")))?;
    let reason = req.reason.unwrap_or_default();
    if reason.len() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "reason must be at most {MAX_REASON} bytes, without control characters"
        )));
    }
    let now = unix_now();
    let (z, c, r) = (zone.clone(), commit.to_string(), reason.clone());
    let (new, halted) = state
        .write_control(move |w| {
            let new = w.deny_commit(&z, &c, &r, now)?;
            let why = format!("commit {c} is on the deny-list");
            Ok((new, w.halt_rollouts_of(&z, &c, &why, now)?))
        })
        .await?;
    tracing::warn!(zone = %zone, commit = %commit, ?halted, "commit denied");
    let z = zone.clone();
    let c = commit.to_string();
    let row = state
        .read(move |s| Ok(s.denied_commits(&z)?.into_iter().find(|d| d.commit == c)))
        .await?
        .ok_or_else(|| ApiError::Internal("the denied commit vanished".into()))?;
    let mut json = DeniedJson::from(row);
    json.halted = halted;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json)))
}

/// `GET /v1/zones/{zone}/denied-commits`: the zone's deny-list, oldest first.
#[utoipa::path(
    get,
    path = "/v1/zones/{zone}/denied-commits",
    tag = "rollouts",
    params(ZonePath),
    responses((status = 200, description = "The denied commits", body = DeniedList), ReadErrors)
)]
pub async fn denied(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
) -> Result<Json<DeniedList>, ApiError> {
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    caller.check_zone(&zone)?;
    let rows = state.read(move |s| s.denied_commits(&zone)).await?;
    Ok(Json(DeniedList {
        denied: rows.into_iter().map(DeniedJson::from).collect(),
    }))
}

/// `DELETE /v1/zones/{zone}/denied-commits/{commit}` (admin only): the commit may be
/// published again. Halted rollouts stay halted until resumed.
#[utoipa::path(
    delete,
    path = "/v1/zones/{zone}/denied-commits/{commit}",
    tag = "rollouts",
    params(DeniedPath),
    responses((status = 204, description = "No longer denied"), WriteErrors)
)]
pub async fn allow(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.check_admin()?;
    let Path((zone, commit)) = path.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    let commit = Commit::parse(&commit).map_err(|e| ApiError::Invalid(format!("commit: {e}")))?;
    let (z, c) = (zone.clone(), commit.to_string());
    if !state.write_control(move |w| w.allow_commit(&z, &c)).await? {
        return Err(ApiError::NotFound(format!("commit {commit} is not denied")));
    }
    tracing::info!(zone = %zone, commit = %commit, "commit no longer denied");
    Ok(StatusCode::NO_CONTENT)
}
