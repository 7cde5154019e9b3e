//! `PATCH /api/v1/servers/localhost/zones/{zone}`: REPLACE and DELETE of node TXT RRsets.
//!
//! A REPLACE of `<node>.<zone>.` TXT with one record publishes the commit its content names
//! (`"v=herald1 commit=<hex> …"`, `"commit=<hex>"` or `"<hex>"`, quoted as PowerDNS requires);
//! Herald assigns seq and ts. A DELETE, or a REPLACE with no records, removes the node; removing
//! a node that does not exist is no change, as in PowerDNS. A TTL is accepted and not used: the
//! zone's node TTL is served. Unknown fields are ignored, as PowerDNS ignores them.
//!
//! The whole PATCH is one [`Change::Update`]: every RRset or none. Anything Herald cannot serve
//! refuses the whole request with PowerDNS's status, before anything is written: 422 for other
//! types, names that are not node names, several records, disabled records, unquoted or bad
//! content; 403 for a node outside the token's scope.

use std::collections::HashSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::super::auth::Caller;
use super::super::error::ApiError;
use super::super::openapi::{ServerZonePath, WriteErrors};
use super::super::{AppState, JsonBody, MAX_BODY};
use super::zone_of;
use crate::metrics::Source;
use crate::publish::{Change, PublishError};
use crate::record::{Commit, NodeLabel};

/// A PATCH of a zone: RRsets to replace or delete, applied all or nothing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchBody {
    rrsets: Vec<RrsetChange>,
}

/// One change: a node's TXT RRset.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RrsetChange {
    /// The node's fully qualified name.
    #[schema(example = "n1.example.test.")]
    name: String,
    /// `TXT`: node records are the only ones that change.
    #[serde(rename = "type")]
    #[schema(example = "TXT")]
    rtype: String,
    /// `REPLACE` or `DELETE` (any case).
    #[schema(value_type = ChangeType, example = "REPLACE")]
    changetype: String,
    /// For REPLACE: one record.
    #[serde(default)]
    records: Vec<RecordChange>,
}

/// What a change does.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
pub enum ChangeType {
    REPLACE,
    DELETE,
}

/// The record of a REPLACE.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RecordChange {
    /// Quoted: `"v=herald1 commit=<hex> …"`, `"commit=<hex>"` or `"<hex>"`.
    #[schema(example = "\"3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f\"")]
    content: String,
    /// Must be false: a disabled record cannot be served.
    #[serde(default)]
    disabled: bool,
}

/// `PATCH …/zones/{zone}`: REPLACE or DELETE node TXT RRsets, atomically; 204.
#[utoipa::path(
    patch,
    path = "/api/v1/servers/{server}/zones/{zone}",
    tag = "powerdns",
    params(
        ServerZonePath,
    ),
    request_body = PatchBody,
    responses(
        (status = 204, description = "Every change applied, in one serial"),
        WriteErrors,
    )
)]
pub async fn apply(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<JsonBody<PatchBody, MAX_BODY>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let zone = zone_of(&state, &caller, path)?;
    let JsonBody(body) = body?;
    let mut seen = HashSet::new();
    let mut set = Vec::new();
    let mut delete = Vec::new();
    for rrset in &body.rrsets {
        let node = node_name(&rrset.name, &zone)?;
        if !rrset.rtype.eq_ignore_ascii_case("TXT") {
            return Err(ApiError::Invalid(format!(
                "RRset {} IN {}: only TXT records of nodes can be changed here",
                rrset.name, rrset.rtype
            )));
        }
        if !seen.insert(node.clone()) {
            return Err(ApiError::Invalid(format!(
                "Duplicate RRset {} IN TXT",
                rrset.name
            )));
        }
        let commit = match rrset.changetype.to_ascii_uppercase().as_str() {
            "DELETE" => None,
            "REPLACE" => match rrset.records.as_slice() {
                [] => None,
                [record] => Some(commit(&rrset.name, record)?),
                _ => {
                    return Err(ApiError::Invalid(format!(
                        "RRset {} IN TXT: a node has exactly one TXT record, got {}",
                        rrset.name,
                        rrset.records.len()
                    )));
                }
            },
            other => {
                return Err(ApiError::Invalid(format!(
                    "changetype {other:?} is not REPLACE or DELETE"
                )));
            }
        };
        match commit {
            Some(c) => set.push((node, c)),
            None => delete.push(node),
        }
    }
    for node in set.iter().map(|(n, _)| n).chain(&delete) {
        caller.check(&zone, node.as_str())?;
    }
    if set.is_empty() && delete.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let change = Change::Update {
        require: Vec::new(),
        serial: None,
        set,
        delete,
    };
    match state.publisher.apply_as(&zone, change, Source::Pdns).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e @ PublishError::StaticName(_)) => Err(ApiError::Invalid(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// The node of an RRset name `<node>.<zone>.` (the trailing dot optional, any case).
fn node_name(name: &str, zone: &str) -> Result<NodeLabel, ApiError> {
    let lower = name.to_ascii_lowercase();
    let fqdn = lower.strip_suffix('.').unwrap_or(&lower);
    let label = fqdn
        .strip_suffix(zone)
        .and_then(|rest| rest.strip_suffix('.'))
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "RRset {name}: not a node of zone {zone} (expected <node>.{zone}.)"
            ))
        })?;
    NodeLabel::parse(label).map_err(|e| ApiError::Invalid(format!("RRset {name}: {e}")))
}

/// The commit of one record's content: one quoted character-string in a content form.
fn commit(name: &str, record: &RecordChange) -> Result<Commit, ApiError> {
    let bad = |why: String| ApiError::Invalid(format!("RRset {name} IN TXT: {why}"));
    if record.disabled {
        return Err(bad("disabled records cannot be served".into()));
    }
    let inner = record
        .content
        .trim()
        .strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
        .filter(|c| !c.contains(['"', '\\']))
        .ok_or_else(|| {
            bad(format!(
                "content {:?} must be one quoted string, such as \"commit=<hex>\"",
                record.content
            ))
        })?;
    Commit::from_content(inner).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";

    #[test]
    fn node_names_are_one_label_under_the_zone() {
        assert_eq!(node_name("N1.Example.Test.", "example.test").unwrap(), "n1");
        assert_eq!(node_name("n1.example.test", "example.test").unwrap(), "n1");
        for bad in [
            "example.test.",
            "a.b.example.test.",
            "n1.other.test.",
            "n_1.example.test.",
            "n1example.test.",
        ] {
            assert!(node_name(bad, "example.test").is_err(), "{bad}");
        }
    }

    #[test]
    fn content_must_be_one_quoted_form() {
        let record = |content: &str| RecordChange {
            content: content.into(),
            disabled: false,
        };
        for ok in [
            format!("\"{A}\""),
            format!("\"commit={A}\""),
            format!("\"v=herald1 commit={A} seq=5 ts=1\""),
        ] {
            assert_eq!(commit("n", &record(&ok)).unwrap().as_str(), A, "{ok}");
        }
        for bad in [
            A.to_owned(),
            format!("\"{A}\" \"x\""),
            format!("\"{A}"),
            "\"zz\"".into(),
            format!("\"a\\\"{A}\""),
        ] {
            assert!(commit("n", &record(&bad)).is_err(), "{bad}");
        }
        let mut disabled = record(&format!("\"{A}\""));
        disabled.disabled = true;
        assert!(commit("n", &disabled).is_err());
    }
}
