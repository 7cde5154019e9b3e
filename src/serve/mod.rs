//! `herald serve`: opens the store, loads the zones, binds the sockets, and runs DNS and the API
//! until the shutdown token is cancelled. [`settings`] builds its [`ServeConfig`] from flags,
//! variables and the configuration file.
//!
//! Start-up order matters: everything that can fail (data directory, token, zone files, store,
//! sockets) is done before anything is served, and each bound socket is logged as
//! `listening for <dns|api> on <addr>` (tests read the ports back from those lines). Shutdown
//! runs the other way: stop taking API requests, stop DNS, let the publisher finish what it
//! was given, close the store.

use std::collections::HashMap;
use std::fs::DirBuilder;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::api::auth::{self, Auth, AuthError, TokenSource};
use arc_swap::ArcSwap;

use crate::api::tls::{self, TlsError, TlsListener};
use crate::api::{self, AppState, ZoneConfig};
use crate::dns::cookie::Secrets;
use crate::dns::notify::NotifyTarget;
use crate::dns::report::Reports;
use crate::dns::secondaries::Secondaries;
use crate::dns::shield::Shield;
use crate::dns::transfer::SharedAccess;
use crate::dns::transfer::{Access, Transfers};
use crate::dns::update::Updates;
use crate::dns::{self, DnsError, DnsServer};
use crate::dnssec::policy::ZonePolicy;
use crate::metrics::QueryStats;
use crate::publish::reports::ReportSecretError;
use crate::publish::rollout::RolloutDriver;
use crate::publish::{self, Setup, StartError};
use crate::record::SystemClock;
use crate::store::{self, Store};
use crate::zone::journal::JournalLimits;
use crate::zone::{self, ZoneError};
use reload::{NotifyTasks, Reload, Reloader};
use settings::SettingsError;

pub mod reload;
pub mod settings;
pub mod systemd;

/// How long in-flight API requests may take to finish once shutdown has begun.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything `herald serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub zones_dir: PathBuf,
    pub dns: Vec<SocketAddr>,
    pub api: SocketAddr,
    /// From `HERALD_ADMIN_TOKEN`; when `None`, from `admin_token_file`, else from the token
    /// file in the data directory (generated on first start).
    pub admin_token: Option<String>,
    /// `admin-token-file` of the configuration file.
    pub admin_token_file: Option<PathBuf>,
    /// TLS for the admin API.
    pub api_tls: Option<ApiTls>,
    /// Plain HTTP on an API address other than loopback.
    pub allow_plain_http: bool,
    /// `/metrics` without a token on an API address other than loopback.
    pub metrics_public: bool,
    /// Seconds after which a node without a newer report is `silent` (the fleet view).
    pub report_silent_after: u64,
    /// Per-zone signing settings (`--dnssec`); other zones get the defaults.
    pub policies: HashMap<String, ZonePolicy>,
    /// Secondaries: who may transfer, TSIG keys, NOTIFY targets, and the IXFR journal.
    pub secondaries: SecondaryConfig,
    /// DNS cookies and response rate limiting.
    pub abuse: AbuseConfig,
}

/// The abuse controls of the DNS path (`crate::dns::shield`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbuseConfig {
    /// `cookie-secret-file` and `cookie-staging-secret-file`, for `config check`.
    pub cookie_files: (Option<PathBuf>, Option<PathBuf>),
    /// The secrets read from them; `None`: a random secret at start.
    pub cookie_secrets: Option<crate::dns::cookie::Secrets>,
    /// `None` while rate limiting is off.
    pub rrl: Option<crate::dns::rrl::Limits>,
}

/// The PEM files of the admin API's TLS.
#[derive(Debug, Clone)]
pub struct ApiTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The flags that concern secondaries.
#[derive(Debug, Clone, Default)]
pub struct SecondaryConfig {
    /// `--allow-transfer` and `--tsig-key`.
    pub access: Access,
    /// `--notify`.
    pub notify: Vec<NotifyTarget>,
    /// `--journal-max-entries`, `--journal-max-age` and `--journal-max-bytes`.
    pub journal: JournalLimits,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("cannot create the data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Publish(#[from] StartError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error("cannot bind the api on {addr}")]
    ApiBind {
        addr: SocketAddr,
        #[source]
        cause: std::io::Error,
    },
    #[error("api server")]
    Api(#[source] std::io::Error),
    #[error(
        "the admin API on {0} would take tokens in clear text from the network: give \
         api-tls-cert and api-tls-key, bind it to loopback, or set allow-plain-http = true"
    )]
    PlainHttp(SocketAddr),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    ReportSecret(#[from] ReportSecretError),
    #[error("cannot start the report writer")]
    ReportWriter(#[source] std::io::Error),
}

/// The admin API's TLS configuration, or `None` for plain HTTP, which is refused on an
/// address other than loopback unless `allow_plain_http`. `herald config check` asks this too.
pub fn api_tls(
    config: &ServeConfig,
) -> Result<Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>, ServeError> {
    if config.api_tls.is_none() && !config.api.ip().is_loopback() && !config.allow_plain_http {
        return Err(ServeError::PlainHttp(config.api));
    }
    Ok(config
        .api_tls
        .as_ref()
        .map(|t| tls::server_config(&t.cert, &t.key))
        .transpose()?)
}

/// What the API knows of each zone: its file and the TTL its nodes are served with.
fn zone_configs(
    zones: &[zone::file::StaticZone],
    policies: &HashMap<String, ZonePolicy>,
) -> HashMap<String, ZoneConfig> {
    zones
        .iter()
        .map(|z| {
            let policy = policies.get(&z.name).cloned().unwrap_or_default();
            let zc = ZoneConfig {
                file: z.clone(),
                node_ttl: policy.node_ttl,
            };
            (z.name.clone(), zc)
        })
        .collect()
}

/// Runs the server until `shutdown` is cancelled.
pub async fn run(config: ServeConfig, shutdown: CancellationToken) -> Result<(), ServeError> {
    run_with_reload(config, shutdown, None).await
}

/// [`run`], reloading on SIGHUP with `reloader` ([`reload`]).
pub async fn run_with_reload(
    config: ServeConfig,
    shutdown: CancellationToken,
    reloader: Option<Reloader>,
) -> Result<(), ServeError> {
    // Before anything else: a SIGHUP during start-up must not take the default action
    // (termination). It is handled once serving starts.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let tls = api_tls(&config)?;
    let data = &config.data_dir;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .map_err(|cause| ServeError::DataDir {
            path: data.clone(),
            cause,
        })?;

    let (token, source) = auth::admin_token(
        data,
        config.admin_token.clone(),
        config.admin_token_file.as_deref(),
    )?;
    match source {
        TokenSource::Environment => tracing::info!("admin token from {}", auth::ADMIN_TOKEN_ENV),
        TokenSource::File(p) => tracing::info!("admin token from {}", p.display()),
        TokenSource::Generated(p) => tracing::info!("admin token generated into {}", p.display()),
    }
    let zones = zone::file::load_dir(&config.zones_dir)?;
    let db = Store::path_in(data);
    let store = Store::open(&db)?;
    let reader = Store::open_reader(&db)?;
    let control_store = Store::open(&db)?;
    let auth = Auth::with_tokens(&token, &control_store.tokens()?)?;
    drop(token);
    let zone_config = Arc::new(ArcSwap::from_pointee(zone_configs(
        &zones,
        &config.policies,
    )));
    let (publisher, shared, publisher_thread) = publish::start(
        store,
        Setup {
            zones: &zones,
            policies: &config.policies,
            data_dir: data,
            clock: Arc::new(SystemClock),
            journal: config.secondaries.journal,
        },
    )?;

    let sockets = dns::bind(&config.dns)?;
    let api_listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|cause| ServeError::ApiBind {
            addr: config.api,
            cause,
        })?;
    let api_addr = api_listener.local_addr().map_err(ServeError::Api)?;
    let dns_addrs = sockets.local_addrs();
    let secondaries = Arc::new(Secondaries::default());
    let access: SharedAccess = Arc::new(ArcSwap::from_pointee(config.secondaries.access.clone()));
    let (report_sink, report_writer) =
        publish::reports::start(Store::open(&db)?, publisher.stats().clone())
            .map_err(ServeError::ReportWriter)?;
    let reports = Reports::new(shared.clone(), data.clone(), &zones, report_sink)?;
    let updates = Updates::new(
        publisher.clone(),
        shared.clone(),
        access.clone(),
        &zones,
        Some(reports),
    );
    let transfers = Arc::new(Transfers {
        access: access.clone(),
        secondaries: secondaries.clone(),
        updates: Some(updates),
    });
    let query_stats = Arc::new(QueryStats::default());
    let shield = Arc::new(Shield::new(
        config
            .abuse
            .cookie_secrets
            .clone()
            .unwrap_or_else(Secrets::random),
        config.abuse.rrl,
    ));
    let dns = DnsServer::start(
        sockets,
        shared.clone(),
        transfers.clone(),
        query_stats.clone(),
        shield.clone(),
        shutdown.clone(),
    )?;
    let (resend, _) = tokio::sync::broadcast::channel(64);
    let notify_tasks = NotifyTasks {
        shutdown: shutdown.clone(),
        generation: std::sync::Mutex::new(shutdown.child_token()),
        handles: std::sync::Mutex::new(Vec::new()),
        resend: resend.clone(),
        secondaries: secondaries.clone(),
    };
    notify_tasks.replace(config.secondaries.notify.clone(), &shared, &publisher);
    let tls = tls.map(|c| Arc::new(ArcSwap::new(c)));
    for addr in dns_addrs {
        tracing::info!("listening for dns on {addr}");
    }
    tracing::info!("listening for api on {api_addr}");
    // DNS answers from its bound sockets already; the API takes connections from its bound
    // listener as soon as it is polled below.
    systemd::notify("READY=1");

    let control_store = Arc::new(Mutex::new(control_store));
    let (rollouts, rollout_task) = RolloutDriver::start(
        publisher.clone(),
        Store::open_reader(&db)?,
        control_store.clone(),
        shutdown.clone(),
    );
    let health = dns.health();
    let state = AppState {
        publisher: publisher.clone(),
        reader: Arc::new(Mutex::new(reader)),
        zones: shared.clone(),
        auth: Arc::new(auth),
        dns_up: Arc::new(move || health.is_up()),
        secondaries,
        control_store,
        wake_rollouts: Arc::new(move || rollouts.wake()),
        zone_config: zone_config.clone(),
        query_stats,
        expiry_cache: Default::default(),
        metrics_public: config.metrics_public || api_addr.ip().is_loopback(),
        report_silent_after: config.report_silent_after,
        states_cache: Default::default(),
        notify_now: Arc::new(move |zone: &str| {
            // No receivers: no NOTIFY targets, nothing to send.
            let _ = resend.send(zone.into());
        }),
    };
    let app = api::app(state);
    let reload = Arc::new(Reload {
        reloader: reloader.unwrap_or_else(|| Box::new(|| Err(SettingsError::NoReload))),
        current: std::sync::Mutex::new(config.clone()),
        publisher: publisher.clone(),
        shared,
        access,
        transfers,
        shield,
        zone_config,
        tls: tls.clone(),
        notify: notify_tasks,
    });
    let reloads = tokio::spawn(reload.clone().run(hangups, shutdown.clone()));
    let api: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        Some(config) => {
            let listener = TlsListener::new(api_listener, config, shutdown.clone())
                .map_err(ServeError::Api)?;
            Box::pin(
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .into_future(),
            )
        }
        None => Box::pin(
            axum::serve(api_listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        ),
    };
    // In-flight requests get a grace period; a client that never finishes its request must
    // not keep the server from stopping.
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        served = api => served,
        () = deadline => {
            tracing::warn!("api requests still open after {SHUTDOWN_GRACE:?}; closing them");
            Ok(())
        }
    };
    // Stop DNS even when the API failed, then let the publisher finish the changes it already
    // has; a request still open after the grace period gets "shutting down".
    systemd::notify("STOPPING=1");
    shutdown.cancel();
    dns.stop().await;
    let _ = reloads.await;
    let notifiers = std::mem::take(
        &mut *reload
            .notify
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    for n in notifiers {
        let _ = n.await;
    }
    // The driver stops at its next await; a wave it sent is finished by the publisher.
    let _ = rollout_task.await;
    publisher.stop();
    let _ = tokio::task::spawn_blocking(move || {
        let _ = publisher_thread.join();
        report_writer.stop();
    })
    .await;
    served.map_err(ServeError::Api)?;
    tracing::info!("stopped");
    Ok(())
}
