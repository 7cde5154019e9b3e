//! Node handlers: publish, read, list, delete, history and the atomic batch.
//!
//! Validation order: route and zone (404), node name (422), scope (403), headers and body
//! syntax (400), values (422). A refused request never reaches the store, or is rolled back
//! inside it.

use std::collections::HashSet;

use axum::Json;
use axum::extract::Extension;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{NodePath, ReadErrors, WriteErrors, ZonePath};
use super::types::{
    BatchRequest, BatchResponse, History, HistoryEntry, NodeJson, NodeList, PutNode,
};
use super::{AppState, JsonBody, MAX_BODY};
use crate::publish::{Change, IfMatch};
use crate::record::{Commit, NodeLabel, NodePattern, unix_now};
use crate::store::NodeState;

/// Page size when `limit` is not given, and the largest allowed.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

type ZoneNode = Result<Path<(String, String)>, PathRejection>;

/// Checks the zone, the node name and the caller's scope of a `/v1/zones/{zone}/nodes/{node}`
/// path.
fn zone_node(
    state: &AppState,
    caller: &Caller,
    path: ZoneNode,
) -> Result<(String, NodeLabel), ApiError> {
    let Path((zone, node)) = path.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    let node = NodeLabel::parse(&node)?;
    caller.check(&zone, node.as_str())?;
    Ok((zone, node))
}

/// `If-Match: "<seq>"` or `If-Match: *` (RFC 9110 §13.1.1). The seq is the node's ETag.
fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || ApiError::Malformed("If-Match must be \"<seq>\" or *".into());
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(Some(IfMatch::Any));
    }
    let seq = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    seq.parse()
        .map(|s| Some(IfMatch::Seq(s)))
        .map_err(|_| bad())
}

/// A node answer with its seq as ETag.
fn node_response(status: StatusCode, json: NodeJson) -> Response {
    let etag =
        HeaderValue::from_str(&format!("\"{}\"", json.seq)).expect("digits are a valid header");
    let mut response = (status, Json(json)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// `PUT /v1/zones/{zone}/nodes/{node}`: publish a commit. 201 when the node is new.
#[utoipa::path(
    put,
    path = "/v1/zones/{zone}/nodes/{node}",
    tag = "nodes",
    params(
        NodePath,
        ("If-Match" = Option<String>, Header, nullable = false, description = "`\"<seq>\"` (the node's ETag) or `*`: refuse with 412 unless the node's seq is that (or the node exists)", pattern = r#"^("[0-9]{1,19}"|[0-9]{1,19}|\*)$"#),
    ),
    request_body = PutNode,
    responses(
        (status = 200, description = "Published: signed and served", body = NodeJson, headers(("ETag" = String, description = "The seq, quoted"))),
        (status = 201, description = "Published, and the node is new", body = NodeJson, headers(("ETag" = String, description = "The seq, quoted"))),
        WriteErrors,
    )
)]
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: ZoneNode,
    headers: HeaderMap,
    body: Result<JsonBody<PutNode>, ApiError>,
) -> Result<Response, ApiError> {
    let (zone, node) = zone_node(&state, &caller, path)?;
    let if_match = if_match(&headers)?;
    let JsonBody(body) = body?;
    let commit = Commit::parse(&body.commit)?;
    let applied = state
        .publisher
        .apply(
            &zone,
            Change::Put {
                node,
                commit,
                if_match,
            },
        )
        .await?;
    let (row, created) = applied
        .set
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("publish returned no node".into()))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(node_response(status, NodeJson::new(&zone, row)))
}

/// `GET /v1/zones/{zone}/nodes/{node}`.
#[utoipa::path(
    get,
    path = "/v1/zones/{zone}/nodes/{node}",
    tag = "nodes",
    params(
        NodePath,
    ),
    responses(
        (status = 200, description = "The node", body = NodeJson, headers(("ETag" = String, description = "The seq, quoted"))),
        ReadErrors,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: ZoneNode,
) -> Result<Response, ApiError> {
    let (zone, node) = zone_node(&state, &caller, path)?;
    let z = zone.clone();
    let label = node.to_string();
    let found = state
        .read(move |s| {
            let row = s.node(&z, &label)?;
            let report = match &row {
                Some(_) => s.report(&z, &label)?,
                None => None,
            };
            Ok(row.map(|row| (row, report)))
        })
        .await?;
    match found {
        Some((row, report)) => Ok(node_response(
            StatusCode::OK,
            NodeJson::new(&zone, row).with_report(report),
        )),
        None => Err(ApiError::NotFound(format!("node {node} does not exist"))),
    }
}

/// `DELETE /v1/zones/{zone}/nodes/{node}`: 204. Honours `If-Match`.
#[utoipa::path(
    delete,
    path = "/v1/zones/{zone}/nodes/{node}",
    tag = "nodes",
    params(
        NodePath,
        ("If-Match" = Option<String>, Header, nullable = false, description = "`\"<seq>\"` (the node's ETag) or `*`: refuse with 412 unless the node's seq is that (or the node exists)", pattern = r#"^("[0-9]{1,19}"|[0-9]{1,19}|\*)$"#),
    ),
    responses(
        (status = 204, description = "Deleted (or there was nothing to delete): the name is gone from DNS, with an authenticated denial"),
        WriteErrors,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: ZoneNode,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (zone, node) = zone_node(&state, &caller, path)?;
    let if_match = if_match(&headers)?;
    state
        .publisher
        .apply(&zone, Change::Delete { node, if_match })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of a node list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The `next` of the page before: the list starts after this node.
    #[param(
        nullable = false,
        pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    after: Option<String>,
    /// Nodes per page, 1 to 1000 (default 100).
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only the nodes in this state, by their reports: `current` (applied the published
    /// seq), `behind` (latest report for an older seq), `failed` (the hook failed on the
    /// published seq) or `silent` (no report, or none for longer than
    /// `report-silent-after`). A page may then hold fewer nodes than `limit` for a scoped
    /// token; follow `next` to the end.
    #[param(nullable = false, pattern = "^(current|behind|failed|silent)$")]
    state: Option<String>,
    /// Only the nodes whose names start with this (the status page's search).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9-]{0,61}$")]
    prefix: Option<String>,
}

/// The prefix to read: the one asked for, narrowed to a prefix token's own; `Err(())` when
/// the two have no node in common.
fn read_prefix(asked: Option<&str>, caller: &Caller) -> Result<Option<String>, ()> {
    let token = match caller {
        Caller::Scoped { scope, .. } => match &scope.nodes {
            NodePattern::Prefix(p) => Some(p.as_str()),
            NodePattern::Exact(_) | NodePattern::Any => None,
        },
        Caller::Admin => None,
    };
    match (asked, token) {
        (None, t) => Ok(t.map(str::to_owned)),
        (Some(a), None) => Ok(Some(a.to_owned())),
        (Some(a), Some(t)) if a.starts_with(t) => Ok(Some(a.to_owned())),
        (Some(a), Some(t)) if t.starts_with(a) => Ok(Some(t.to_owned())),
        _ => Err(()),
    }
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        n => Err(ApiError::Invalid(format!(
            "limit must be 1 to {MAX_LIMIT}, got {n}"
        ))),
    }
}

/// `GET /v1/zones/{zone}/nodes?after=<node>&limit=<n>`: nodes in name order; for a scoped
/// token, the nodes of its scope.
#[utoipa::path(
    get,
    path = "/v1/zones/{zone}/nodes",
    tag = "nodes",
    params(
        ZonePath,
        ListParams,
    ),
    responses(
        (status = 200, description = "A page of nodes, in name order", body = NodeList),
        ReadErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<NodeList>, ApiError> {
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    caller.check_zone(&zone)?;
    let Query(params) = params.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let limit = page_limit(params.limit)?;
    let after = params
        .after
        .map(|a| NodeLabel::parse(&a).map(|l| l.to_string()))
        .transpose()?;
    let asked = match params.prefix {
        None => None,
        Some(p) => match NodePattern::parse(&format!("{p}*")) {
            Ok(NodePattern::Prefix(p)) => Some(p),
            _ => {
                return Err(ApiError::Invalid(format!(
                    "prefix must be the start of a node name, not {p:?}"
                )));
            }
        },
    };
    let Ok(prefix) = read_prefix(asked.as_deref(), &caller) else {
        return Ok(Json(NodeList {
            nodes: Vec::new(),
            next: None,
        }));
    };
    let z = zone.clone();
    if let Some(wanted) = params.state {
        let node_state = NodeState::parse(&wanted).ok_or_else(|| {
            ApiError::Malformed(format!(
                "state must be current, behind, failed or silent, not {wanted:?}"
            ))
        })?;
        let silent_before = unix_now().saturating_sub(state.report_silent_after);
        let mut rows = state
            .read(move |s| {
                let after = after.as_deref().unwrap_or("");
                let prefix = prefix.as_deref();
                s.nodes_in_state(&z, node_state, silent_before, after, prefix, limit + 1)
            })
            .await?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(r, _)| r.node.clone())
        } else {
            None
        };
        let nodes = rows
            .into_iter()
            .filter(|(r, _)| caller.may(&zone, &r.node))
            .map(|(r, report)| NodeJson::new(&zone, r).with_report(report))
            .collect();
        return Ok(Json(NodeList { nodes, next }));
    }
    // A token scoped to one node lists that node alone: a prefix read would also find names
    // it may not see, and the cursor would hand them out.
    if let Caller::Scoped { scope, .. } = &caller
        && let NodePattern::Exact(label) = &scope.nodes
    {
        let label = label.to_string();
        let found = match after {
            Some(a) if a >= label => None,
            _ if prefix
                .as_ref()
                .is_some_and(|p| !label.starts_with(p.as_str())) =>
            {
                None
            }
            _ => {
                state
                    .read(move |s| match s.node(&z, &label)? {
                        Some(row) => Ok(Some((s.report(&z, &label)?, row))),
                        None => Ok(None),
                    })
                    .await?
            }
        };
        return Ok(Json(NodeList {
            nodes: found
                .map(|(report, r)| NodeJson::new(&zone, r).with_report(report))
                .into_iter()
                .collect(),
            next: None,
        }));
    }
    // A prefix token's nodes all start with the prefix; the store reads only those
    // (`read_prefix`).
    // One more than asked tells whether there is a next page.
    let (rows, reports) = state
        .read(move |s| {
            let mut rows = s.nodes(&z, after.as_deref(), prefix.as_deref(), limit + 1)?;
            rows.truncate(limit + 1);
            let page = &rows[..rows.len().min(limit)];
            let reports = match (page.first(), page.last()) {
                (Some(first), Some(last)) => s.reports_between(&z, &first.node, &last.node)?,
                _ => Vec::new(),
            };
            Ok((rows, reports))
        })
        .await?;
    let mut rows = rows;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.node.clone())
    } else {
        None
    };
    // Both in name order: one pass pairs each node with its report.
    let mut reports = reports.into_iter().peekable();
    let nodes = rows
        .into_iter()
        .map(|r| {
            while reports.next_if(|p| p.node < r.node).is_some() {}
            let report = reports.next_if(|p| p.node == r.node);
            (r, report)
        })
        .filter(|(r, _)| caller.may(&zone, &r.node))
        .map(|(r, report)| NodeJson::new(&zone, r).with_report(report))
        .collect();
    Ok(Json(NodeList { nodes, next }))
}

/// The query of a node's history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Entries, 1 to 1000 (default 100).
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// `GET /v1/zones/{zone}/nodes/{node}/history?limit=<n>`: newest first. Kept after a delete.
#[utoipa::path(
    get,
    path = "/v1/zones/{zone}/nodes/{node}/history",
    tag = "nodes",
    params(
        NodePath,
        HistoryParams,
    ),
    responses(
        (status = 200, description = "The node's publishes, newest first", body = History),
        ReadErrors,
    )
)]
pub async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: ZoneNode,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let (zone, node) = zone_node(&state, &caller, path)?;
    let Query(params) = params.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let limit = page_limit(params.limit)?;
    let label = node.to_string();
    let rows = state.read(move |s| s.history(&zone, &label, limit)).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!("node {node} has no history")));
    }
    Ok(Json(History {
        history: rows.into_iter().map(HistoryEntry::from).collect(),
    }))
}

/// `POST /v1/zones/{zone}/batch`: all publishes and deletes in one transaction and one serial.
/// Any invalid entry refuses the whole batch; so does any node outside the caller's scope (403).
#[utoipa::path(
    post,
    path = "/v1/zones/{zone}/batch",
    tag = "nodes",
    params(
        ZonePath,
    ),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Every publish and delete applied, in one serial", body = BatchResponse),
        WriteErrors,
    )
)]
pub async fn batch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    zone: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<BatchRequest, MAX_BODY>, ApiError>,
) -> Result<Json<BatchResponse>, ApiError> {
    let Path(zone) = zone.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let zone = state.served_zone(&zone)?;
    let JsonBody(req) = body?;
    if req.set.is_empty() && req.delete.is_empty() {
        return Err(ApiError::Invalid(
            "the batch has nothing to set or delete".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut once = |label: NodeLabel| {
        if seen.insert(label.clone()) {
            Ok(label)
        } else {
            Err(ApiError::Invalid(format!(
                "node {label} appears more than once in the batch"
            )))
        }
    };
    let mut set = Vec::with_capacity(req.set.len());
    for (i, entry) in req.set.iter().enumerate() {
        let at = |e: crate::record::RecordError| ApiError::Invalid(format!("set[{i}]: {e}"));
        let node = NodeLabel::parse(&entry.node).map_err(at)?;
        let commit = Commit::parse(&entry.commit).map_err(at)?;
        set.push((once(node)?, commit));
    }
    let mut delete = Vec::with_capacity(req.delete.len());
    for (i, node) in req.delete.iter().enumerate() {
        let node =
            NodeLabel::parse(node).map_err(|e| ApiError::Invalid(format!("delete[{i}]: {e}")))?;
        delete.push(once(node)?);
    }
    for node in set.iter().map(|(n, _)| n).chain(&delete) {
        caller.check(&zone, node.as_str())?;
    }
    let applied = state
        .publisher
        .apply(&zone, Change::Batch { set, delete })
        .await?;
    Ok(Json(BatchResponse {
        serial: applied.serial,
        nodes: applied
            .set
            .into_iter()
            .map(|(row, _)| NodeJson::new(&zone, row))
            .collect(),
        deleted: applied.deleted.iter().map(ToString::to_string).collect(),
    }))
}
