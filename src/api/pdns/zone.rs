//! `GET /api/v1/servers/localhost/zones/{zone}`: PowerDNS's Zone object with its RRsets.
//!
//! The RRsets are the zone file's (the SOA with the serial served now) and one TXT RRset per
//! node, with the TTL DNS serves. DNSSEC records are left out, as PowerDNS leaves them out of
//! its RRsets. `rrsets=false` leaves out the RRsets, and `rrset_name` (with `rrset_type`) picks
//! one name, so that a client reads one node of a million-node zone with one indexed lookup.
//!
//! A whole zone is streamed: the body is written page by page (1000 nodes a page, read from the
//! store's read-only connection) into a small pipe that the response reads, so a dump of a
//! million nodes holds one page in memory, not the whole document.

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use hickory_proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::super::auth::Caller;
use super::super::error::ApiError;
use super::super::openapi::{ReadErrors, ServerZonePath};
use super::super::{AppState, ZoneConfig};
use super::{ZoneSummary, zone_of};
use crate::record::{NodeLabel, NodePattern, render_into};
use crate::store::NodeRow;

/// Nodes read from the store per page of a dump.
const PAGE: usize = 1000;
/// Bytes buffered between the page writer and the response.
const PIPE: usize = 64 * 1024;
/// A client that takes nothing of a dump for this long is dropped, and its page with it.
const STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// The query of a zone read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneParams {
    /// `false` leaves the RRsets out.
    #[param(nullable = false, pattern = "^(true|false)$")]
    rrsets: Option<String>,
    /// Only the RRsets of this owner name (fully qualified).
    #[param(nullable = false)]
    rrset_name: Option<String>,
    /// With `rrset_name` (alone it is refused with 422, as PowerDNS does): only the RRset of
    /// this type.
    #[param(value_type = Option<RrsetType>, inline, nullable = false)]
    rrset_type: Option<String>,
}

/// Record types, as `rrset_type` takes them (any case).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
pub enum RrsetType {
    A,
    AAAA,
    CNAME,
    MX,
    NS,
    SOA,
    TXT,
    SRV,
    CAA,
    PTR,
    DNSKEY,
    DS,
}

/// PowerDNS's Zone object: the zone's summary and, unless `rrsets=false`, its RRsets.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ZoneObject {
    #[serde(flatten)]
    zone: ZoneSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    rrsets: Option<Vec<RrsetDoc>>,
}

/// One RRset of a Zone object.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RrsetDoc {
    /// The owner name, fully qualified.
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    records: Vec<RecordDoc>,
    /// Always empty: comments are not kept.
    comments: Vec<String>,
}

/// One record of an RRset.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RecordDoc {
    /// In presentation format; TXT content quoted.
    content: String,
    disabled: bool,
}

/// One RRset as PowerDNS shows it.
#[derive(Debug, Serialize)]
struct RrsetJson<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    rtype: &'a str,
    ttl: u32,
    records: Vec<RecordJson>,
    comments: [(); 0],
}

#[derive(Debug, Serialize)]
struct RecordJson {
    content: String,
    disabled: bool,
}

/// Which RRsets the request asks for.
enum Selection {
    None,
    All,
    /// One owner name (lowercase, fully qualified), and maybe one type.
    Name(String, Option<RecordType>),
}

/// `GET …/zones/{zone}`: the Zone object with its RRsets.
#[utoipa::path(
    get,
    path = "/api/v1/servers/{server}/zones/{zone}",
    tag = "powerdns",
    params(
        ServerZonePath,
        ZoneParams,
    ),
    responses(
        (status = 200, description = "The zone (a whole zone is streamed)", body = ZoneObject),
        ReadErrors,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<ZoneParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let zone = zone_of(&state, &caller, path)?;
    let Query(params) = params.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let selection = selection(&params)?;
    let config = state
        .zone_config
        .load()
        .get(&zone)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("Could not find domain '{zone}.'")))?;
    let serial = state
        .zones
        .load()
        .get(&zone)
        .map(|z| z.serial)
        .ok_or_else(|| ApiError::NotFound(format!("Could not find domain '{zone}.'")))?;

    let mut head = serde_json::to_string(&ZoneSummary::new(&zone, serial))
        .map_err(|e| ApiError::Internal(e.into()))?;
    head.pop(); // the closing brace: the RRsets go before it.
    let (mut w, r) = tokio::io::duplex(PIPE);
    tokio::spawn(async move {
        if let Err(e) = write_zone(
            &state, &caller, &zone, &config, serial, selection, head, &mut w,
        )
        .await
        {
            // The status is sent; a cut body is all the client can be told.
            tracing::warn!(zone = %zone, error = &*e as &dyn std::error::Error, "zone dump stopped");
        }
    });
    let mut response = Response::new(Body::from_stream(ReaderStream::new(r)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn selection(params: &ZoneParams) -> Result<Selection, ApiError> {
    let rrsets = match params.rrsets.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "rrsets must be true or false, got {other:?}"
            )));
        }
    };
    let rtype = params
        .rrset_type
        .as_deref()
        .map(|t| {
            t.to_ascii_uppercase()
                .parse::<RecordType>()
                .ok()
                .filter(|t| !matches!(t, RecordType::Unknown(_)))
                .ok_or_else(|| ApiError::Invalid(format!("unknown rrset_type {t:?}")))
        })
        .transpose()?;
    match (&params.rrset_name, rtype) {
        _ if !rrsets => Ok(Selection::None),
        (Some(name), rtype) => {
            let mut name = name.to_ascii_lowercase();
            if !name.ends_with('.') {
                name.push('.');
            }
            Ok(Selection::Name(name, rtype))
        }
        (None, Some(_)) => Err(ApiError::Invalid(
            "rrset_type can only be used together with rrset_name".into(),
        )),
        (None, None) => Ok(Selection::All),
    }
}

type DumpError = Box<dyn std::error::Error + Send + Sync>;

#[allow(clippy::too_many_arguments)]
async fn write_zone(
    state: &AppState,
    caller: &Caller,
    zone: &str,
    config: &ZoneConfig,
    serial: u32,
    selection: Selection,
    head: String,
    w: &mut tokio::io::DuplexStream,
) -> Result<(), DumpError> {
    let mut out = head.into_bytes();
    let (name, rtype) = match selection {
        Selection::None => {
            out.push(b'}');
            return put(w, &out).await;
        }
        Selection::All => (None, None),
        Selection::Name(name, rtype) => (Some(name), rtype),
    };
    out.extend_from_slice(b",\"rrsets\":[");
    let mut first = true;
    let wanted = |owner: &str, t: RecordType| {
        name.as_deref().is_none_or(|n| n == owner) && rtype.is_none_or(|r| r == t)
    };
    for (owner, t, ttl, contents) in static_rrsets(config, serial) {
        if wanted(&owner, t) {
            push_rrset(&mut out, &mut first, &owner, t, ttl, contents)?;
        }
    }
    if rtype.is_some_and(|t| t != RecordType::TXT) {
        out.extend_from_slice(b"]}");
        return put(w, &out).await;
    }
    // The nodes: one (for rrset_name) or all the caller may read, page by page.
    let suffix = format!(".{zone}.");
    let (prefix, exact) = match (&name, caller) {
        (Some(n), _) => match n.strip_suffix(&suffix).map(NodeLabel::parse) {
            Some(Ok(label)) => (Some(label.to_string()), true),
            _ => {
                out.extend_from_slice(b"]}");
                return put(w, &out).await;
            }
        },
        (None, Caller::Scoped { scope, .. }) => match &scope.nodes {
            NodePattern::Exact(l) => (Some(l.to_string()), true),
            NodePattern::Prefix(p) => (Some(p.clone()), false),
            NodePattern::Any => (None, false),
        },
        (None, Caller::Admin) => (None, false),
    };
    let mut after: Option<String> = None;
    loop {
        let rows: Vec<NodeRow> = if exact {
            let (z, label) = (zone.to_owned(), prefix.clone().unwrap_or_default());
            state
                .read(move |s| s.node(&z, &label))
                .await?
                .into_iter()
                .collect()
        } else {
            let (z, a, p) = (zone.to_owned(), after.clone(), prefix.clone());
            state
                .read(move |s| s.nodes(&z, a.as_deref(), p.as_deref(), PAGE))
                .await?
        };
        let done = exact || rows.len() < PAGE;
        after = rows.last().map(|r| r.node.clone());
        for row in rows.iter().filter(|r| caller.may(zone, &r.node)) {
            let owner = format!("{}{suffix}", row.node);
            let mut text = Vec::with_capacity(128);
            text.push(b'"');
            render_into(&row.commit, row.seq, row.ts, &mut text);
            text.push(b'"');
            let content = String::from_utf8(text).map_err(|e| Box::new(e) as DumpError)?;
            push_rrset(
                &mut out,
                &mut first,
                &owner,
                RecordType::TXT,
                config.node_ttl,
                vec![content],
            )?;
        }
        if done {
            break;
        }
        put(w, &out).await?;
        out.clear();
    }
    out.extend_from_slice(b"]}");
    put(w, &out).await
}

/// Writes `bytes` to the response, or gives up on a client that stopped reading.
async fn put(w: &mut tokio::io::DuplexStream, bytes: &[u8]) -> Result<(), DumpError> {
    match tokio::time::timeout(STALL, w.write_all(bytes)).await {
        Ok(written) => Ok(written?),
        Err(_) => Err(format!("the client took nothing for {STALL:?}").into()),
    }
}

fn push_rrset(
    out: &mut Vec<u8>,
    first: &mut bool,
    owner: &str,
    rtype: RecordType,
    ttl: u32,
    contents: Vec<String>,
) -> Result<(), DumpError> {
    if !*first {
        out.push(b',');
    }
    *first = false;
    let rtype = rtype.to_string();
    serde_json::to_writer(
        &mut *out,
        &RrsetJson {
            name: owner,
            rtype: &rtype,
            ttl,
            records: contents
                .into_iter()
                .map(|content| RecordJson {
                    content,
                    disabled: false,
                })
                .collect(),
            comments: [],
        },
    )?;
    Ok(())
}

/// The zone file's RRsets in presentation form: owner, type, TTL, contents. The SOA carries
/// `serial`, the one served.
fn static_rrsets(config: &ZoneConfig, serial: u32) -> Vec<(String, RecordType, u32, Vec<String>)> {
    let file = &config.file;
    let mut soa = file.soa.clone();
    soa.serial = serial;
    let mut out = vec![(
        file.apex.to_ascii(),
        RecordType::SOA,
        file.soa_ttl,
        vec![RData::SOA(soa).to_string()],
    )];
    for (owner, rrsets) in &file.rrsets {
        for rrset in rrsets {
            out.push((
                owner_text(owner),
                rrset.rtype,
                rrset.ttl,
                rrset.rdatas.iter().map(content).collect(),
            ));
        }
    }
    out
}

fn owner_text(name: &Name) -> String {
    name.to_ascii()
}

/// A record's content as PowerDNS writes it: presentation format, with TXT strings quoted.
fn content(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quote(s))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// One character-string in quotes (RFC 1035 §5.1): `"` and `\` escaped, other bytes outside
/// printable ASCII as `\DDD`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}
