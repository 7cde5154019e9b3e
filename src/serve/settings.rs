//! The settings of `herald serve`, from flags, `HERALD_*` variables, the configuration file
//! and the defaults, in that order of precedence (DESIGN.md, "Command line"), turned into a
//! checked [`ServeConfig`].
//!
//! `src/main.rs` hands over what the command line and the environment gave ([`Flags`]; clap
//! reads each flag's `HERALD_*` variable); this module reads the file
//! ([`crate::config::file`]), merges, reads the secret files, and builds the domain values:
//! TSIG keys, NOTIFY targets, signing policies. Lists given by flags replace the file's (a
//! TSIG key given by flag replaces the file's key of that name); a zone's signing settings
//! from `--dnssec` are applied over the file's, key by key. Every error names where the value
//! came from: the flag, or the file and the line of its table. Relative paths in the file
//! (the data and zones directories, secret files) are taken from the file's own directory.
//!
//! [`describe`] renders the result as TOML with every secret left out, for
//! `herald config check`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use thiserror::Error;

use super::{AbuseConfig, ApiTls, SecondaryConfig, ServeConfig};
use crate::config::file::{self, FileConfig, FileError, NotifyEntry};
use crate::config::secret::{self, SecretError};
use crate::dns::cookie::{self, CookieError, Secrets};
use crate::dns::notify::{NotifyTarget, NotifyTargetError};
use crate::dns::rrl::Limits;
use crate::dns::transfer::Access;
use crate::dns::tsig::{TsigKey, TsigKeyError};
use crate::dnssec::policy::{Denial, PolicyProblem, parse_flag};
use crate::zone::journal::JournalLimits;

/// The defaults of DESIGN.md: what `cargo run -- serve` uses with no flags and no file.
pub const DEFAULT_DATA: &str = "./herald-data";
pub const DEFAULT_ZONES: &str = "./zones";
pub const DEFAULT_DNS: &str = "127.0.0.1:5353";
pub const DEFAULT_API: &str = "127.0.0.1:8053";
/// Seconds after which a node without a newer report is `silent`: three of the watcher's hourly
/// reports missed.
pub const DEFAULT_REPORT_SILENT_AFTER: u64 = 3 * 3600;

/// What the command line and the environment said; `None` or empty: not given.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub zones: Option<PathBuf>,
    pub dns: Vec<SocketAddr>,
    pub api: Option<SocketAddr>,
    /// `--dnssec ZONE:SETTINGS`, as written.
    pub dnssec: Vec<String>,
    /// `--notify ADDR[,key=NAME]`, as written.
    pub notify: Vec<String>,
    pub allow_transfer: Vec<IpNet>,
    /// `--tsig-key NAME:ALG:SECRET[,…]`, as written (secret inside).
    pub tsig_keys: Vec<String>,
    pub journal_max_entries: Option<usize>,
    pub journal_max_age: Option<u32>,
    pub journal_max_bytes: Option<u64>,
    pub report_silent_after: Option<u32>,
    /// `HERALD_ADMIN_TOKEN`.
    pub admin_token: Option<String>,
    pub api_tls_cert: Option<PathBuf>,
    pub api_tls_key: Option<PathBuf>,
    /// `--allow-plain-http` (a flag that can only switch it on).
    pub allow_plain_http: bool,
    pub cookie_secret_file: Option<PathBuf>,
    pub cookie_staging_secret_file: Option<PathBuf>,
    /// `--rrl` (a flag that can only switch it on).
    pub rrl: bool,
    pub rrl_rate: Option<u32>,
    pub rrl_nxdomain_rate: Option<u32>,
    pub rrl_slip: Option<u32>,
}

/// Why the settings cannot be used. Each names where the bad value came from.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{at}")]
    Key {
        at: String,
        #[source]
        cause: TsigKeyError,
    },
    #[error("{at}: the secret file")]
    Secret {
        at: String,
        #[source]
        cause: SecretError,
    },
    #[error("{at}")]
    Notify {
        at: String,
        #[source]
        cause: NotifyTargetError,
    },
    #[error("api-tls-cert and api-tls-key go together: give both or neither")]
    TlsPair,
    /// Started without a way to read the settings again.
    #[error("this server was started without settings to read again")]
    NoReload,
    #[error("{at}")]
    Cookie {
        at: String,
        #[source]
        cause: CookieError,
    },
    #[error(
        "cookie-staging-secret-file needs cookie-secret-file: the staging secret is accepted beside an active one"
    )]
    StagingAlone,
    #[error("{0} must be at least 1 (to stop answering, stop the server)")]
    RrlZero(&'static str),
    #[error("{at}")]
    Policy {
        at: String,
        #[source]
        cause: PolicyProblem,
    },
}

/// Where a value came from, for errors: `herald.toml line 12 ([[tsig-key]])`.
fn at(path: &Path, text: &str, offset: usize, what: &str) -> String {
    format!(
        "{} line {} ({what})",
        path.display(),
        file::line_of(text, offset)
    )
}

/// Merges `flags` over the file they name (if any) and the defaults, and checks the result.
pub fn resolve(flags: Flags) -> Result<ServeConfig, SettingsError> {
    let (mut file, path, text) = match &flags.config {
        Some(path) => {
            let (config, text) = file::load(path)?;
            (config, path.clone(), text)
        }
        None => (FileConfig::default(), PathBuf::new(), String::new()),
    };
    let base = path.parent().unwrap_or(Path::new("")).to_owned();
    let from_file = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    file.data = file.data.map(from_file);
    file.zones_dir = file.zones_dir.map(from_file);
    file.admin_token_file = file.admin_token_file.map(from_file);
    file.api_tls_cert = file.api_tls_cert.map(from_file);
    file.api_tls_key = file.api_tls_key.map(from_file);
    file.cookie_secret_file = file.cookie_secret_file.map(from_file);
    file.cookie_staging_secret_file = file.cookie_staging_secret_file.map(from_file);

    // TSIG keys: the file's, then the flags', a flag replacing a file key of the same name.
    let mut keys: Vec<TsigKey> = Vec::new();
    for entry in &file.tsig_key {
        let here = at(&path, &text, entry.span().start, "[[tsig-key]]");
        let k = entry.get_ref();
        let secret_file = from_file(k.secret_file.clone());
        let secret = secret::read(&secret_file).map_err(|cause| SettingsError::Secret {
            at: here.clone(),
            cause,
        })?;
        let mut spec = format!("{}:{}:{}", k.name, k.algorithm, secret.trim());
        if let Some(zone) = &k.zone {
            spec.push_str(&format!(",zone={zone}"));
        }
        if let Some(nodes) = &k.nodes {
            spec.push_str(&format!(",nodes={nodes}"));
        }
        keys.push(TsigKey::parse(&spec).map_err(|cause| SettingsError::Key { at: here, cause })?);
    }
    for text in &flags.tsig_keys {
        let key = TsigKey::parse(text).map_err(|cause| SettingsError::Key {
            at: "--tsig-key".into(),
            cause,
        })?;
        keys.retain(|k| k.name != key.name);
        keys.push(key);
    }

    // NOTIFY targets: every zone's, then each zone's own.
    let notify_at = |entry: &NotifyEntry| match &entry.key {
        Some(k) => format!("{},key={k}", entry.address),
        None => entry.address.clone(),
    };
    let mut notify = Vec::new();
    if flags.notify.is_empty() {
        for entry in &file.notify {
            let here = at(&path, &text, entry.span().start, "[[notify]]");
            notify.push(
                NotifyTarget::parse(&notify_at(entry.get_ref()), &keys)
                    .map_err(|cause| SettingsError::Notify { at: here, cause })?,
            );
        }
    } else {
        for t in &flags.notify {
            notify.push(
                NotifyTarget::parse(t, &keys).map_err(|cause| SettingsError::Notify {
                    at: "--notify".into(),
                    cause,
                })?,
            );
        }
    }

    // Zones: the file's settings, then --dnssec's over them.
    let mut settings: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut zone_allow = std::collections::HashMap::new();
    for (name, entry) in &file.zone {
        let here = at(
            &path,
            &text,
            entry.span().start,
            &format!("[zone.\"{name}\"]"),
        );
        let z = entry.get_ref();
        let items: Vec<String> = z
            .signing_settings()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        settings.insert(name.clone(), (items.join(","), here.clone()));
        for n in &z.notify {
            let mut target = NotifyTarget::parse(&notify_at(n), &keys).map_err(|cause| {
                SettingsError::Notify {
                    at: here.clone(),
                    cause,
                }
            })?;
            target.zone = Some(zone_key(name));
            notify.push(target);
        }
        if let Some(allow) = &z.allow_transfer {
            zone_allow.insert(zone_key(name), allow.clone());
        }
    }
    for flag in &flags.dnssec {
        let (zone, rest) = flag.split_once(':').unwrap_or((flag, ""));
        let entry = settings
            .entry(zone.to_owned())
            .or_insert_with(|| (String::new(), "--dnssec".into()));
        entry.0 = [entry.0.as_str(), rest]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        entry.1 = "--dnssec".into();
    }
    let mut policies = std::collections::HashMap::new();
    for (zone, (items, here)) in &settings {
        let (name, policy) =
            parse_flag(&format!("{zone}:{items}")).map_err(|e| SettingsError::Policy {
                at: here.clone(),
                cause: e.problem().clone(),
            })?;
        policies.insert(name, policy);
    }

    let abuse = abuse(&flags, &file, &path)?;
    let dns = if !flags.dns.is_empty() {
        flags.dns
    } else {
        file.dns
            .unwrap_or_else(|| vec![DEFAULT_DNS.parse().expect("a valid address")])
    };
    let defaults = JournalLimits::default();
    Ok(ServeConfig {
        data_dir: flags
            .data
            .or(file.data)
            .unwrap_or_else(|| DEFAULT_DATA.into()),
        zones_dir: flags
            .zones
            .or(file.zones_dir)
            .unwrap_or_else(|| DEFAULT_ZONES.into()),
        dns,
        api: flags
            .api
            .or(file.api)
            .unwrap_or_else(|| DEFAULT_API.parse().expect("a valid address")),
        admin_token: flags.admin_token,
        admin_token_file: file.admin_token_file,
        api_tls: match (
            flags.api_tls_cert.or(file.api_tls_cert),
            flags.api_tls_key.or(file.api_tls_key),
        ) {
            (Some(cert), Some(key)) => Some(ApiTls { cert, key }),
            (None, None) => None,
            _ => return Err(SettingsError::TlsPair),
        },
        allow_plain_http: flags.allow_plain_http || file.allow_plain_http.unwrap_or(false),
        metrics_public: file.metrics_public.unwrap_or(false),
        report_silent_after: flags
            .report_silent_after
            .or(file.report_silent_after)
            .map_or(DEFAULT_REPORT_SILENT_AFTER, u64::from),
        policies,
        secondaries: SecondaryConfig {
            access: Access {
                allow: if flags.allow_transfer.is_empty() {
                    file.allow_transfer.unwrap_or_default()
                } else {
                    flags.allow_transfer
                },
                zone_allow,
                keys,
            },
            notify,
            journal: JournalLimits {
                max_entries: flags
                    .journal_max_entries
                    .or(file.journal_max_entries)
                    .unwrap_or(defaults.max_entries),
                max_age: flags
                    .journal_max_age
                    .or(file.journal_max_age)
                    .map_or(defaults.max_age, u64::from),
                max_bytes: flags
                    .journal_max_bytes
                    .or(file.journal_max_bytes)
                    .unwrap_or(defaults.max_bytes),
            },
        },
        abuse,
    })
}

/// DNS cookies and rate limiting: the flags', else the file's.
fn abuse(flags: &Flags, file: &FileConfig, path: &Path) -> Result<AbuseConfig, SettingsError> {
    let from_flag =
        flags.cookie_secret_file.is_some() || flags.cookie_staging_secret_file.is_some();
    let (active, staging) = if from_flag {
        (
            flags.cookie_secret_file.clone(),
            flags.cookie_staging_secret_file.clone(),
        )
    } else {
        (
            file.cookie_secret_file.clone(),
            file.cookie_staging_secret_file.clone(),
        )
    };
    let read = |p: &PathBuf, key: &str| -> Result<cookie::Secret, SettingsError> {
        let at = if from_flag {
            format!("--{key}")
        } else {
            format!("{} ({key})", path.display())
        };
        let text = secret::read(p).map_err(|cause| SettingsError::Secret {
            at: at.clone(),
            cause,
        })?;
        cookie::parse_secret(&text).map_err(|cause| SettingsError::Cookie {
            at: format!("{at}: {}", p.display()),
            cause,
        })
    };
    let cookie_secrets = match (&active, &staging) {
        (None, None) => None,
        (None, Some(_)) => return Err(SettingsError::StagingAlone),
        (Some(a), s) => Some(Secrets {
            active: read(a, "cookie-secret-file")?,
            staging: s
                .as_ref()
                .map(|s| read(s, "cookie-staging-secret-file"))
                .transpose()?,
        }),
    };
    let rate = flags.rrl_rate.or(file.rrl_rate);
    let nxdomain_rate = flags.rrl_nxdomain_rate.or(file.rrl_nxdomain_rate);
    let slip = flags.rrl_slip.or(file.rrl_slip);
    let on = flags.rrl
        || file.rrl.unwrap_or(false)
        || rate.is_some()
        || nxdomain_rate.is_some()
        || slip.is_some();
    let defaults = Limits::default();
    let rrl = on.then(|| Limits {
        rate: rate.unwrap_or(defaults.rate),
        nxdomain_rate: nxdomain_rate.unwrap_or(defaults.nxdomain_rate),
        slip: slip.unwrap_or(defaults.slip),
    });
    if let Some(l) = &rrl {
        if l.rate == 0 {
            return Err(SettingsError::RrlZero("rrl-rate"));
        }
        if l.nxdomain_rate == 0 {
            return Err(SettingsError::RrlZero("rrl-nxdomain-rate"));
        }
    }
    Ok(AbuseConfig {
        cookie_files: (active, staging),
        cookie_secrets,
        rrl,
    })
}

/// A zone name as the server keys it: lowercase, no trailing dot.
fn zone_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The effective configuration as TOML, secrets left out: what `herald config check` prints.
pub fn describe(config: &ServeConfig) -> String {
    use toml::{Table, Value};
    let s = |v: &dyn std::fmt::Display| Value::String(v.to_string());
    let mut t = Table::new();
    t.insert("version".into(), Value::Integer(i64::from(file::VERSION)));
    t.insert("data".into(), s(&config.data_dir.display()));
    t.insert("zones-dir".into(), s(&config.zones_dir.display()));
    t.insert(
        "dns".into(),
        Value::Array(config.dns.iter().map(|a| s(a)).collect()),
    );
    t.insert("api".into(), s(&config.api));
    if let Some(tls) = &config.api_tls {
        t.insert("api-tls-cert".into(), s(&tls.cert.display()));
        t.insert("api-tls-key".into(), s(&tls.key.display()));
    }
    t.insert(
        "allow-plain-http".into(),
        Value::Boolean(config.allow_plain_http),
    );
    t.insert(
        "metrics-public".into(),
        Value::Boolean(config.metrics_public),
    );
    t.insert(
        "report-silent-after".into(),
        Value::String(format!("{}s", config.report_silent_after)),
    );
    let token = match (&config.admin_token, &config.admin_token_file) {
        (Some(_), _) => "(from HERALD_ADMIN_TOKEN, redacted)".to_owned(),
        (None, Some(p)) => p.display().to_string(),
        (None, None) => format!(
            "{} (generated on first start)",
            config.data_dir.join("admin.token").display()
        ),
    };
    t.insert("admin-token-file".into(), Value::String(token));
    let access = &config.secondaries.access;
    t.insert(
        "allow-transfer".into(),
        Value::Array(access.allow.iter().map(|n| s(n)).collect()),
    );
    let journal = &config.secondaries.journal;
    t.insert(
        "journal-max-entries".into(),
        Value::Integer(journal.max_entries as i64),
    );
    t.insert(
        "journal-max-age".into(),
        Value::String(format!("{}s", journal.max_age)),
    );
    t.insert(
        "journal-max-bytes".into(),
        Value::Integer(journal.max_bytes as i64),
    );
    let abuse = &config.abuse;
    let (active, staging) = &abuse.cookie_files;
    t.insert(
        "cookie-secret-file".into(),
        match active {
            Some(p) => s(&p.display()),
            None => Value::String("(none: a random secret at each start)".into()),
        },
    );
    if let Some(p) = staging {
        t.insert("cookie-staging-secret-file".into(), s(&p.display()));
    }
    t.insert("rrl".into(), Value::Boolean(abuse.rrl.is_some()));
    let limits = abuse.rrl.unwrap_or_default();
    for (k, v) in [
        ("rrl-rate", limits.rate),
        ("rrl-nxdomain-rate", limits.nxdomain_rate),
        ("rrl-slip", limits.slip),
    ] {
        t.insert(k.into(), Value::Integer(i64::from(v)));
    }
    let keys = access
        .keys
        .iter()
        .map(|k| {
            let mut e = Table::new();
            e.insert("name".into(), s(&k.name));
            e.insert("algorithm".into(), Value::String(k.algorithm_name()));
            e.insert("secret".into(), Value::String("(redacted)".into()));
            if let Some(scope) = &k.scope {
                e.insert("zone".into(), s(&scope.zone));
                e.insert("nodes".into(), s(&scope.nodes));
            }
            Value::Table(e)
        })
        .collect();
    t.insert("tsig-key".into(), Value::Array(keys));
    let targets = |zone: Option<&str>| -> Value {
        Value::Array(
            config
                .secondaries
                .notify
                .iter()
                .filter(|n| n.zone.as_deref() == zone)
                .map(|n| {
                    let mut e = Table::new();
                    e.insert("address".into(), s(&n.addr));
                    if let Some(k) = &n.key {
                        e.insert("key".into(), s(&k.name));
                    }
                    Value::Table(e)
                })
                .collect(),
        )
    };
    t.insert("notify".into(), targets(None));
    let mut zones = Table::new();
    let mut names: Vec<&String> = config
        .policies
        .keys()
        .chain(access.zone_allow.keys())
        .chain(
            config
                .secondaries
                .notify
                .iter()
                .filter_map(|n| n.zone.as_ref()),
        )
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let p = config.policies.get(name).cloned().unwrap_or_default();
        let mut z = Table::new();
        z.insert(
            "algorithm".into(),
            Value::Integer(i64::from(u8::from(p.algorithm))),
        );
        let denial = match p.denial {
            Denial::Nsec => "nsec",
            Denial::Nsec3 => "nsec3",
        };
        z.insert("denial".into(), Value::String(denial.into()));
        for (k, v) in [
            ("validity", p.validity),
            ("refresh", p.refresh),
            ("inception-offset", p.inception_offset),
            ("node-ttl", p.node_ttl),
        ] {
            z.insert(k.into(), Value::String(format!("{v}s")));
        }
        z.insert("notify".into(), targets(Some(name)));
        if let Some(allow) = access.zone_allow.get(name) {
            z.insert(
                "allow-transfer".into(),
                Value::Array(allow.iter().map(|n| s(n)).collect()),
            );
        }
        zones.insert(name.clone(), Value::Table(z));
    }
    t.insert("zone".into(), Value::Table(zones));
    toml::to_string(&t).unwrap_or_default()
}
