//! The PowerDNS-compatible subset of the API (DESIGN.md, "PowerDNS-compatible subset"), so
//! that tooling written for PowerDNS's HTTP API publishes node records unchanged.
//!
//! Supported, under `/api/v1/servers/localhost`:
//! - discovery: `GET /api`, `GET /api/v1/servers`, `GET /api/v1/servers/localhost`;
//! - `GET …/zones`: the served zones, `kind: "Native"` (so clients such as lego skip NOTIFY);
//! - `GET …/zones/{zone}`: the zone object with its RRsets ([`zone`]), streamed;
//! - `PATCH …/zones/{zone}`: REPLACE and DELETE of node TXT RRsets, one atomic change
//!   ([`patch`]);
//! - `PUT …/zones/{zone}/notify`: NOTIFY to the configured secondaries.
//!
//! Everything else PowerDNS has (creating and deleting zones, cryptokeys, metadata, search,
//! statistics, TSIG keys) answers 404 or 405 with an `{"error": …}` body, as PowerDNS answers
//! what it does not know. Authentication is the native API's: `X-API-Key` or a bearer token,
//! admin or scoped; a scoped token sees its zone and may change only its nodes.

pub mod patch;
pub mod zone;

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{ReadErrors, ServerPath, ServerZonePath};
use super::types::ErrorBody;

/// The PowerDNS version whose API this subset follows. Clients read the API's major version
/// from the front of the server's `version` (powerdns-cli takes what comes before the first
/// dot), so it leads; Herald's own version follows.
const FOLLOWS: &str = "4.9.0";
/// The one server id PowerDNS's API has.
const SERVER: &str = "localhost";

/// The PowerDNS routes, `/api` and those under `/api/v1`; the caller puts them behind
/// authentication.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api", get(api_root))
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/servers/{server}", get(server))
        .route("/api/v1/servers/{server}/zones", get(zones))
        .route(
            "/api/v1/servers/{server}/zones/{zone}",
            get(zone::show).patch(patch::apply),
        )
        .route("/api/v1/servers/{server}/zones/{zone}/notify", put(notify))
}

/// `GET /api`: the API versions served.
#[utoipa::path(
    get,
    path = "/api",
    tag = "powerdns",
    responses(
        (status = 200, description = "The API versions served", body = Vec<ApiVersion>),
        (status = 401, description = "No token, or not a valid one", body = ErrorBody),
    )
)]
pub async fn api_root() -> Json<Value> {
    Json(json!([{"url": "/api/v1", "version": 1}]))
}

/// One API version, as PowerDNS lists them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ApiVersion {
    #[schema(example = "/api/v1")]
    url: String,
    version: u32,
}

/// A PowerDNS server object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerJson {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    daemon_type: &'static str,
    version: String,
    url: String,
    config_url: String,
    zones_url: String,
}

fn server_json() -> ServerJson {
    ServerJson {
        kind: "Server",
        id: SERVER,
        daemon_type: "authoritative",
        version: format!("{FOLLOWS} (herald {})", env!("CARGO_PKG_VERSION")),
        url: format!("/api/v1/servers/{SERVER}"),
        config_url: format!("/api/v1/servers/{SERVER}/config{{/config_setting}}"),
        zones_url: format!("/api/v1/servers/{SERVER}/zones{{/zone}}"),
    }
}

/// `GET /api/v1/servers`: this server, the only one.
#[utoipa::path(
    get,
    path = "/api/v1/servers",
    tag = "powerdns",
    responses(
        (status = 200, description = "This server", body = Vec<ServerJson>),
        (status = 401, description = "No token, or not a valid one", body = ErrorBody),
    )
)]
pub async fn servers() -> Json<Vec<ServerJson>> {
    Json(vec![server_json()])
}

/// The server id of a path: `localhost` is the only one.
fn known_server(server: &str) -> Result<(), ApiError> {
    if server == SERVER {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("server {server:?} not found")))
    }
}

/// `GET /api/v1/servers/{server}`.
#[utoipa::path(
    get,
    path = "/api/v1/servers/{server}",
    tag = "powerdns",
    params(
        ServerPath,
    ),
    responses(
        (status = 200, description = "This server", body = ServerJson),
        ReadErrors,
    )
)]
pub async fn server(
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ServerJson>, ApiError> {
    let Path(server) = path.map_err(|e| ApiError::Malformed(e.body_text()))?;
    known_server(&server)?;
    Ok(Json(server_json()))
}

/// A zone as PowerDNS lists it (its Zone object without RRsets).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ZoneSummary {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind_of: &'static str,
    url: String,
    kind: &'static str,
    serial: u32,
    notified_serial: u32,
    edited_serial: u32,
    #[schema(value_type = Vec<String>)]
    masters: [(); 0],
    dnssec: bool,
    account: &'static str,
}

impl ZoneSummary {
    fn new(zone: &str, serial: u32) -> Self {
        Self {
            id: format!("{zone}."),
            name: format!("{zone}."),
            kind_of: "Zone",
            url: format!("/api/v1/servers/{SERVER}/zones/{zone}."),
            kind: "Native",
            serial,
            notified_serial: serial,
            edited_serial: serial,
            masters: [],
            dnssec: true,
            account: "",
        }
    }
}

/// `GET …/zones`: the zones the caller may see, by name.
#[utoipa::path(
    get,
    path = "/api/v1/servers/{server}/zones",
    tag = "powerdns",
    params(
        ServerPath,
    ),
    responses(
        (status = 200, description = "The zones the caller may see", body = Vec<ZoneSummary>),
        ReadErrors,
    )
)]
pub async fn zones(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<ZoneSummary>>, ApiError> {
    let Path(server) = path.map_err(|e| ApiError::Malformed(e.body_text()))?;
    known_server(&server)?;
    let set = state.zones.load();
    let mut out: Vec<ZoneSummary> = set
        .iter()
        .filter(|z| caller.may_see(&z.name))
        .map(|z| ZoneSummary::new(&z.name, z.serial))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out))
}

/// The served zone of a `…/servers/{server}/zones/{zone}` path, which the caller may see; 404
/// as PowerDNS words it for a zone that is not served.
fn zone_of(
    state: &AppState,
    caller: &Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<String, ApiError> {
    let Path((server, zone)) = path.map_err(|e| ApiError::Malformed(e.body_text()))?;
    known_server(&server)?;
    let zone = state
        .served_zone(&zone)
        .map_err(|_| ApiError::NotFound(format!("Could not find domain '{zone}'")))?;
    caller.check_zone(&zone)?;
    Ok(zone)
}

/// `PUT …/zones/{zone}/notify`: queues a NOTIFY of the zone to every configured secondary.
#[utoipa::path(
    put,
    path = "/api/v1/servers/{server}/zones/{zone}/notify",
    tag = "powerdns",
    params(
        ServerZonePath,
    ),
    responses(
        (status = 200, description = "A NOTIFY to every secondary is queued", body = NotifyResult),
        ReadErrors,
    )
)]
pub async fn notify(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let zone = zone_of(&state, &caller, path)?;
    (state.notify_now)(&zone);
    Ok(Json(json!({"result": "Notification queued"})))
}

/// The answer of the notify call.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NotifyResult {
    #[schema(example = "Notification queued")]
    result: String,
}
