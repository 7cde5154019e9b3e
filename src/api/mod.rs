//! The admin API: an axum router over the store and the publisher.
//!
//! - [`auth`]: the admin token and scoped tokens, kept hashed, and the caller's scope;
//! - [`nodes`]: publish, read, list, delete, history, batch;
//! - [`tokens`]: making, listing and revoking scoped tokens;
//! - [`rollouts`]: rollouts in waves, and the deny-list;
//! - [`ui`]: the status page at `/ui/`, which reads all of the above;
//! - [`zones`]: zone JSON and `/healthz`;
//! - [`pdns`]: the PowerDNS-compatible subset, for existing tooling;
//! - [`error`]: one error type and its status codes;
//! - [`types`]: the JSON bodies, shared with the `herald publish` client in [`client`];
//! - [`openapi`]: the OpenAPI 3.1 document of all of it, made from the handlers.
//!
//! Writes go to the [`Publisher`], which answers once the change is durable and served by DNS.
//! Reads go to a separate read-only SQLite connection.

pub mod auth;
pub mod client;
pub mod error;
pub mod import;
pub mod metrics;
pub mod nodes;
pub mod openapi;
pub mod pdns;
pub mod rollout_view;
pub mod rollouts;
pub mod tls;
pub mod tokens;
pub mod types;
pub mod ui;
pub mod zones;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Router, middleware};
use serde::de::DeserializeOwned;

use crate::dns::secondaries::Secondaries;
use crate::publish::Publisher;
use crate::record::normalize_zone;
use crate::store::Store;
use crate::zone::SharedZones;
use crate::zone::file::StaticZone;
use auth::Auth;
use error::ApiError;

/// Largest accepted request body: about 150,000 batch entries.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Whether the DNS side is serving, for `/healthz`.
pub type DnsUp = Arc<dyn Fn() -> bool + Send + Sync>;

/// What the API knows of a zone besides its nodes.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone file's records.
    pub file: StaticZone,
    /// The TTL node records are served with.
    pub node_ttl: u32,
}

/// Asks the NOTIFY tasks to announce a zone to every configured secondary again, now.
pub type NotifyNow = Arc<dyn Fn(&str) + Send + Sync>;

/// Per zone: when its soonest RRSIG expiry was last found, and the seconds left then.
pub type ExpiryCache = Arc<Mutex<HashMap<String, (std::time::Instant, Option<i64>)>>>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub publisher: Publisher,
    /// Read-only connection; WAL lets it read while the publisher writes.
    pub reader: Arc<Mutex<Store>>,
    pub zones: SharedZones,
    pub auth: Arc<Auth>,
    pub dns_up: DnsUp,
    /// NOTIFY and transfer health, for the zone JSON.
    pub secondaries: Arc<Secondaries>,
    /// A writing connection for control data: tokens, the deny-list and rollout states. Zone
    /// data is written by the publisher alone.
    pub control_store: Arc<Mutex<Store>>,
    /// What the zone files and settings say of each zone, for the PowerDNS zone object.
    pub zone_config: Arc<arc_swap::ArcSwap<HashMap<String, ZoneConfig>>>,
    /// `PUT …/zones/{zone}/notify`.
    pub notify_now: NotifyNow,
    /// The query path's counters, summed at scrape time.
    pub query_stats: Arc<crate::metrics::QueryStats>,
    /// Whether `/metrics` answers without a token.
    pub metrics_public: bool,
    /// Per zone: when its soonest RRSIG expiry was last found, and how far it was.
    pub expiry_cache: ExpiryCache,
    /// Seconds after which a node without a newer report is `silent`.
    pub report_silent_after: u64,
    /// Per zone: its node counts by state, until when they may be reused.
    pub states_cache: StatesCache,
    /// Asks the rollout driver for a pass now.
    pub wake_rollouts: WakeRollouts,
}

/// Asks the rollout driver ([`crate::publish::rollout`]) to look at the rollouts now.
pub type WakeRollouts = Arc<dyn Fn() + Send + Sync>;

/// Per zone: until when its node counts by state may be reused, and the counts.
pub type StatesCache = Arc<Mutex<HashMap<String, (std::time::Instant, [u64; 4])>>>;

impl AppState {
    /// Runs a read on the store off the async threads.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, crate::store::Error> + Send + 'static,
    ) -> Result<T, ApiError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let store = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&store)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::from)
    }

    /// The zone's node counts in the order of [`NodeState::ALL`](crate::store::NodeState::ALL). Counting walks every node
    /// (about a second at a million), so the counts are reused for ten times as long as they
    /// took, at most a minute: fresh for small zones, and a scrape or a status page that asks
    /// often does not keep the reader busy.
    pub async fn node_states(&self, zone: &str) -> Result<[u64; 4], ApiError> {
        let now = std::time::Instant::now();
        {
            let cache = self.states_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((until, counts)) = cache.get(zone)
                && now < *until
            {
                return Ok(*counts);
            }
        }
        let silent_before = crate::record::unix_now().saturating_sub(self.report_silent_after);
        let z = zone.to_owned();
        let counts = self.read(move |s| s.node_states(&z, silent_before)).await?;
        let took = now.elapsed();
        let until = std::time::Instant::now() + (took * 10).min(std::time::Duration::from_secs(60));
        self.states_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(zone.to_owned(), (until, counts));
        Ok(counts)
    }

    /// Runs a write of control data (one transaction) off the async threads.
    pub async fn write_control<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::store::Writer<'_>) -> Result<T, crate::store::Error> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.control_store.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
            store.write(f)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::from)
    }

    /// The zone's API name if Herald serves it, else 404.
    pub fn served_zone(&self, zone: &str) -> Result<String, ApiError> {
        let not_found = || ApiError::NotFound(format!("zone {zone} is not served"));
        let name = normalize_zone(zone).map_err(|_| not_found())?;
        if self.zones.load().get(&name).is_some() {
            Ok(name)
        } else {
            Err(not_found())
        }
    }
}

/// The router. Everything but `/healthz`, `/metrics` (see [`metrics`]) and the status page's
/// files needs a token; what a scoped token may do is checked
/// by each handler.
pub fn app(state: AppState) -> Router {
    let authed = Router::new()
        .route(
            "/v1/tokens",
            post(tokens::create)
                .layer(DefaultBodyLimit::max(SMALL_BODY))
                .get(tokens::list),
        )
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .merge(pdns::routes())
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/zones", get(zones::list))
        .route("/v1/zones/{zone}", get(zones::show))
        .route("/v1/zones/{zone}/nodes", get(nodes::list))
        .route(
            "/v1/zones/{zone}/nodes/{node}",
            get(nodes::show)
                .put(nodes::put)
                .layer(DefaultBodyLimit::max(SMALL_BODY))
                .delete(nodes::delete),
        )
        .route("/v1/zones/{zone}/nodes/{node}/history", get(nodes::history))
        .route("/v1/zones/{zone}/batch", post(nodes::batch))
        .route(
            "/v1/zones/{zone}/rollouts",
            post(rollouts::create).get(rollouts::list),
        )
        .route("/v1/zones/{zone}/rollouts/{id}", get(rollouts::show))
        .route(
            "/v1/zones/{zone}/rollouts/{id}/pause",
            post(rollouts::pause),
        )
        .route(
            "/v1/zones/{zone}/rollouts/{id}/resume",
            post(rollouts::resume),
        )
        .route(
            "/v1/zones/{zone}/rollouts/{id}/abort",
            post(rollouts::abort),
        )
        .route(
            "/v1/zones/{zone}/denied-commits",
            post(rollouts::deny)
                .layer(DefaultBodyLimit::max(SMALL_BODY))
                .get(rollouts::denied),
        )
        .route(
            "/v1/zones/{zone}/denied-commits/{commit}",
            delete(rollouts::allow),
        )
        .route(
            "/v1/zones/{zone}/keys/roll",
            post(zones::roll_keys).layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route(
            "/v1/zones/{zone}/keys/ds-seen",
            post(zones::ds_seen).layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(zones::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/ui", get(ui::bare))
        .route("/ui/", get(ui::index))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/style.css", get(ui::style))
        .merge(authed)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The body limit of a route that takes one node or one token: a few hundred bytes of JSON
/// are all it needs, so a client cannot make it read megabytes.
pub const SMALL_BODY: usize = 16 * 1024;

/// A JSON body of at most `MAX` bytes ([`SMALL_BODY`] unless the route says more; batches and
/// PowerDNS PATCHes take [`MAX_BODY`]). Unlike axum's `Json` it does not insist on a
/// Content-Type (so `curl -d` works) and reports every problem as `{"error": …}`: 400 for
/// unreadable JSON, 413 beyond the limit.
pub struct JsonBody<T, const MAX: usize = SMALL_BODY>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const MAX: usize> FromRequest<S> for JsonBody<T, MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let too_large = || {
            ApiError::TooLarge(format!(
                "request body is larger than this route's limit of {MAX} bytes"
            ))
        };
        // Refuse an announced oversize body before reading any of it.
        let announced = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if announced.is_some_and(|n| n > MAX) {
            return Err(too_large());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::Malformed(r.body_text())
            }
        })?;
        // A chunked body announces nothing: the route's `DefaultBodyLimit` stops the reading
        // at the same limit, and this holds the two together.
        if bytes.len() > MAX {
            return Err(too_large());
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::Malformed(format!("invalid JSON body: {e}")))
    }
}

#[cfg(test)]
mod tests;
