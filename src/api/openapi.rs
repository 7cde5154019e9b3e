//! The OpenAPI 3.1 document of the admin API, served at `GET /v1/openapi.json`.
//!
//! Generated with utoipa from the handlers themselves: each handler carries its route, its
//! parameters and its answers (`#[utoipa::path]`), and each JSON body its schema
//! (`#[derive(ToSchema)]` in [`super::types`] and the PowerDNS modules), so the document
//! changes with the code and a test holds the two together (every route of the router is in
//! the document, and every path of the document is routed). Schemathesis runs against it in CI
//! (`.ci/schemathesis.toml`).
//!
//! Errors are listed per kind of route ([`ReadErrors`], [`WriteErrors`]): every status the
//! route can answer with, each with the `{"error": …}` body.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use super::types::ErrorBody;

/// The path of a zone's routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ZonePath {
    /// The zone, with or without the trailing dot.
    #[param(example = "example.test")]
    zone: String,
}

/// The path of a node's routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct NodePath {
    /// The zone, with or without the trailing dot.
    #[param(example = "example.test")]
    zone: String,
    /// The node label (case-insensitive, stored lowercase).
    #[param(
        pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
        example = "n1"
    )]
    node: String,
}

/// The path of PowerDNS's server routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ServerPath {
    /// The server id: `localhost` is the only one.
    #[param(example = "localhost")]
    server: String,
}

/// The path of PowerDNS's zone routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ServerZonePath {
    /// The server id: `localhost` is the only one.
    #[param(example = "localhost")]
    server: String,
    /// The zone, with or without the trailing dot.
    #[param(example = "example.test.")]
    zone: String,
}

/// The statuses of a route that reads.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// A parameter cannot be read.
    #[response(status = 400)]
    Malformed(#[to_schema] ErrorBody),
    /// No token, or not a valid one.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// The token's scope does not cover this.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// No such zone, node or token.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// A value is invalid (a node name, say).
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody),
}

/// The statuses of a route that writes: those of [`ReadErrors`], and what a write can meet.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// The body or a header cannot be read.
    #[response(status = 400)]
    Malformed(#[to_schema] ErrorBody),
    /// No token, or not a valid one.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// The token's scope does not cover this.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// No such zone, node or token.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// The change conflicts with the zone's data (a name of the zone file, say).
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    /// `If-Match` does not match the node's seq.
    #[response(status = 412)]
    PreconditionFailed(#[to_schema] ErrorBody),
    /// The body is larger than this route takes.
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// A value is invalid.
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody),
    /// The disk under the store is read-only: nothing was written.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
    /// The disk under the store is full: nothing was written.
    #[response(status = 507)]
    InsufficientStorage(#[to_schema] ErrorBody),
}

/// The document's security schemes: the bearer token of the native API, and PowerDNS's
/// `X-API-Key`, which takes the same tokens.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token, or a scoped token (`herald token create`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "Any Herald token, as PowerDNS tooling sends it",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald admin API",
        description = "Publish which commit each node of a fleet should run; Herald signs it and serves it over DNS. The PowerDNS-compatible subset is under /api.",
        license(name = "see the repository"),
    ),
    paths(
        super::zones::healthz,
        super::metrics::metrics,
        super::ui::index,
        super::ui::script,
        super::ui::style,
        document,
        super::zones::list,
        super::zones::show,
        super::zones::roll_keys,
        super::zones::ds_seen,
        super::nodes::list,
        super::nodes::show,
        super::nodes::put,
        super::nodes::delete,
        super::nodes::history,
        super::nodes::batch,
        super::rollouts::create,
        super::rollouts::list,
        super::rollouts::show,
        super::rollouts::pause,
        super::rollouts::resume,
        super::rollouts::abort,
        super::rollouts::deny,
        super::rollouts::denied,
        super::rollouts::allow,
        super::tokens::create,
        super::tokens::list,
        super::tokens::revoke,
        super::pdns::api_root,
        super::pdns::servers,
        super::pdns::server,
        super::pdns::zones,
        super::pdns::zone::show,
        super::pdns::patch::apply,
        super::pdns::notify,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "nodes", description = "Publishing and reading node records"),
        (name = "zones", description = "Zones, their keys and their secondaries"),
        (name = "rollouts", description = "Rollouts in waves, and the deny-list of commits"),
        (name = "tokens", description = "Scoped tokens (admin only)"),
        (name = "powerdns", description = "The PowerDNS HTTP API subset"),
        (name = "server", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the document serializes")
    })
}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "server",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object),
        (status = 401, description = "No token, or not a valid one", body = ErrorBody),
    )
)]
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_route() {
        let doc: serde_json::Value = serde_json::from_str(json()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().unwrap();
        let mut operations: Vec<String> = paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
                    .map(move |m| format!("{} {path}", m.to_uppercase()))
            })
            .collect();
        operations.sort();
        // The router's routes (src/api/mod.rs and src/api/pdns/mod.rs), one by one.
        let mut routed = vec![
            "GET /healthz",
            "GET /metrics",
            "GET /ui/",
            "GET /ui/app.js",
            "GET /ui/style.css",
            "GET /v1/openapi.json",
            "GET /v1/zones",
            "GET /v1/zones/{zone}",
            "GET /v1/zones/{zone}/nodes",
            "GET /v1/zones/{zone}/nodes/{node}",
            "PUT /v1/zones/{zone}/nodes/{node}",
            "DELETE /v1/zones/{zone}/nodes/{node}",
            "GET /v1/zones/{zone}/nodes/{node}/history",
            "POST /v1/zones/{zone}/batch",
            "POST /v1/zones/{zone}/rollouts",
            "GET /v1/zones/{zone}/rollouts",
            "GET /v1/zones/{zone}/rollouts/{id}",
            "POST /v1/zones/{zone}/rollouts/{id}/pause",
            "POST /v1/zones/{zone}/rollouts/{id}/resume",
            "POST /v1/zones/{zone}/rollouts/{id}/abort",
            "POST /v1/zones/{zone}/denied-commits",
            "GET /v1/zones/{zone}/denied-commits",
            "DELETE /v1/zones/{zone}/denied-commits/{commit}",
            "POST /v1/zones/{zone}/keys/roll",
            "POST /v1/zones/{zone}/keys/ds-seen",
            "POST /v1/tokens",
            "GET /v1/tokens",
            "DELETE /v1/tokens/{id}",
            "GET /api",
            "GET /api/v1/servers",
            "GET /api/v1/servers/{server}",
            "GET /api/v1/servers/{server}/zones",
            "GET /api/v1/servers/{server}/zones/{zone}",
            "PATCH /api/v1/servers/{server}/zones/{zone}",
            "PUT /api/v1/servers/{server}/zones/{zone}/notify",
        ];
        routed.sort();
        assert_eq!(operations, routed);
        // Every operation but the health check needs a token.
        assert_eq!(
            doc["paths"]["/healthz"]["get"]["security"],
            serde_json::json!([{}])
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
