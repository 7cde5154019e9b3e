//! SIGHUP: reading the configuration and the zone files again while serving.
//!
//! What changes at once, without dropping a query:
//! - the zone files: changed zones are rebuilt from the store and the new file (their serial
//!   moves on), new ones are opened, removed ones stop being served
//!   ([`Publisher::reload`](crate::publish::Publisher::reload)); the DNS path answers from the
//!   old snapshot until the new one is swapped in;
//! - the TSIG keys and their scopes, and the transfer ACLs (swapped whole);
//! - the DNS cookie secrets (for a rollover: `crate::dns::cookie`);
//! - the NOTIFY targets (their tasks are replaced);
//! - the API's TLS certificate and key (new connections use the new ones).
//!
//! What needs a restart (the data directory, the DNS and API addresses, the admin token, the
//! zones' signing settings, the journal limits, rate limiting, TLS switched on or off, plain HTTP, public
//! metrics) is left as it runs, with a log line naming each. A configuration that does not
//! check (a bad value, an unreadable secret file, a zone file that does not load) changes
//! nothing at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::settings::SettingsError;
use super::{ServeConfig, zone_configs};
use crate::api::ZoneConfig;
use crate::api::tls;
use crate::dns::cookie::Secrets;
use crate::dns::notify::{self, NotifyTarget};
use crate::dns::secondaries::Secondaries;
use crate::dns::shield::Shield;
use crate::dns::transfer::{SharedAccess, Transfers};
use crate::publish::Publisher;
use crate::zone::{self, SharedZones};

/// Builds the configuration again: the file, the variables and the flags of the start.
pub type Reloader = Box<dyn Fn() -> Result<ServeConfig, SettingsError> + Send + Sync>;

/// What a reload replaces.
pub(super) struct Reload {
    pub reloader: Reloader,
    /// The configuration in force.
    pub current: Mutex<ServeConfig>,
    pub publisher: Publisher,
    pub shared: SharedZones,
    pub access: SharedAccess,
    pub transfers: Arc<Transfers>,
    pub shield: Arc<Shield>,
    pub zone_config: Arc<ArcSwap<HashMap<String, ZoneConfig>>>,
    pub tls: Option<Arc<ArcSwap<tokio_rustls::rustls::ServerConfig>>>,
    pub notify: NotifyTasks,
}

/// The NOTIFY tasks of the targets in force, and what a new set of them needs.
pub(super) struct NotifyTasks {
    pub shutdown: CancellationToken,
    /// Cancels the tasks of the current targets only.
    pub generation: Mutex<CancellationToken>,
    pub handles: Mutex<Vec<JoinHandle<()>>>,
    pub resend: broadcast::Sender<Arc<str>>,
    pub secondaries: Arc<Secondaries>,
}

impl NotifyTasks {
    /// Starts tasks for `targets`, stopping those of the targets before.
    pub fn replace(&self, targets: Vec<NotifyTarget>, shared: &SharedZones, publisher: &Publisher) {
        let generation = self.shutdown.child_token();
        let old = std::mem::replace(
            &mut *self.generation.lock().unwrap_or_else(|p| p.into_inner()),
            generation.clone(),
        );
        old.cancel();
        let handles = notify::spawn(
            targets,
            shared.clone(),
            publisher.subscribe(),
            &self.resend,
            self.secondaries.clone(),
            generation,
        );
        let mut all = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|h| !h.is_finished());
        all.extend(handles);
    }
}

/// One target as it compares across reloads.
fn target_key(t: &NotifyTarget) -> (std::net::SocketAddr, Option<String>, Option<String>) {
    (
        t.addr,
        t.key.as_ref().map(|k| k.name.to_ascii()),
        t.zone.clone(),
    )
}

impl Reload {
    /// Waits for SIGHUP on `hangups` (installed at the very start) and reloads, until
    /// `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        hangups: Option<tokio::signal::unix::Signal>,
        shutdown: CancellationToken,
    ) {
        let Some(mut hup) = hangups else {
            tracing::error!("cannot install the SIGHUP handler; reloads need a restart");
            return;
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = hup.recv() => if got.is_none() { return },
            }
            tracing::info!("SIGHUP received, reloading");
            super::systemd::notify("RELOADING=1");
            self.reload().await;
            super::systemd::notify("READY=1");
        }
    }

    async fn reload(&self) {
        let new = match (self.reloader)() {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "reload refused: the configuration does not check; nothing changed"
                );
                return;
            }
        };
        let old = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (what, same) in [
            ("data", old.data_dir == new.data_dir),
            ("dns", old.dns == new.dns),
            ("api", old.api == new.api),
            (
                "admin-token-file",
                old.admin_token_file == new.admin_token_file && old.admin_token == new.admin_token,
            ),
            ("zone signing settings", old.policies == new.policies),
            (
                "journal-max-*",
                old.secondaries.journal == new.secondaries.journal,
            ),
            (
                "api-tls-cert and api-tls-key (on or off)",
                old.api_tls.is_some() == new.api_tls.is_some(),
            ),
            (
                "allow-plain-http",
                old.allow_plain_http == new.allow_plain_http,
            ),
            ("metrics-public", old.metrics_public == new.metrics_public),
            (
                "report-silent-after",
                old.report_silent_after == new.report_silent_after,
            ),
            ("rrl and rrl-*", old.abuse.rrl == new.abuse.rrl),
        ] {
            if !same {
                tracing::warn!(
                    setting = what,
                    "reload: this cannot change without a restart; the running value stays"
                );
            }
        }
        // TLS first: a certificate that does not load changes nothing.
        let tls = match (&self.tls, &new.api_tls) {
            (Some(_), Some(files)) => match tls::server_config(&files.cert, &files.key) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(
                        error = &e as &dyn std::error::Error,
                        "reload refused: the API's certificate; nothing changed"
                    );
                    return;
                }
            },
            _ => None,
        };
        // The zone files, then the zones (the writer rebuilds what changed).
        let files = match zone::file::load_dir(&new.zones_dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "reload refused: the zone files; nothing changed"
                );
                return;
            }
        };
        // New zones are opened with their settings from the new configuration; the zones
        // served keep theirs until a restart.
        let reloaded = match self
            .publisher
            .reload(files.clone(), new.policies.clone())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "reload stopped: a zone did not load; the zones before it are served as reloaded, nothing else changed"
                );
                return;
            }
        };
        if let Some(updates) = &self.transfers.updates {
            updates.set_files(&files);
        }
        let mut policies = new.policies.clone();
        policies.retain(|zone, _| reloaded.added.contains(zone));
        for (zone, policy) in &old.policies {
            policies.insert(zone.clone(), policy.clone());
        }
        self.zone_config
            .store(Arc::new(zone_configs(&files, &policies)));
        self.access.store(Arc::new(new.secondaries.access.clone()));
        // Cookie secrets from files are replaced; a random one (no file) is kept, so that
        // the cookies clients hold stay valid.
        let cookies_changed = old.abuse.cookie_secrets != new.abuse.cookie_secrets;
        if cookies_changed {
            self.shield.cookies.replace(
                new.abuse
                    .cookie_secrets
                    .clone()
                    .unwrap_or_else(Secrets::random),
            );
        }
        // Always new NOTIFY tasks: a key may keep its name and change its secret, and a task
        // holds its key. Each target is told of the zones' serials again: a NOTIFY each.
        let targets: Vec<_> = new.secondaries.notify.iter().map(target_key).collect();
        let before: Vec<_> = old.secondaries.notify.iter().map(target_key).collect();
        let notify_changed = targets != before;
        self.notify.replace(
            new.secondaries.notify.clone(),
            &self.shared,
            &self.publisher,
        );
        if let (Some(slot), Some(config)) = (&self.tls, tls) {
            slot.store(config);
        }
        tracing::info!(
            zones_changed = ?reloaded.changed,
            zones_added = ?reloaded.added,
            zones_removed = ?reloaded.removed,
            tsig_keys = new.secondaries.access.keys.len(),
            notify_targets = new.secondaries.notify.len(),
            notify_targets_changed = notify_changed,
            cookie_secrets_changed = cookies_changed,
            "reloaded"
        );
        // What may change is now in force; what may not stays as it was.
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.zones_dir = new.zones_dir;
        current.secondaries.access = new.secondaries.access;
        current.secondaries.notify = new.secondaries.notify;
        current.abuse.cookie_files = new.abuse.cookie_files;
        current.abuse.cookie_secrets = new.abuse.cookie_secrets;
        if self.tls.is_some() && new.api_tls.is_some() {
            current.api_tls = new.api_tls;
        }
    }
}
