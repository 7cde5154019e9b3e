//! The `herald` binary: parses the command line, starts logging, and calls the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use herald::api::auth::ADMIN_TOKEN_ENV;
use herald::config::value::{self, ValueError};
use herald::dnssec::policy::{PolicyError, parse_flag};
use herald::serve::reload::Reloader;
use herald::serve::run_with_reload;
use herald::serve::settings::{self, Flags};
use ipnet::IpNet;

use admin::{
    ApiArgs, ImportArgs, NodesArgs, PublishArgs, RolloutCommand, TokenCommand, import, nodes,
    publish, rollout, token,
};

#[path = "main/admin.rs"]
mod admin;
#[path = "main/keys.rs"]
mod keys;
#[path = "main/node.rs"]
mod node;

use keys::{KeyCommand, key_report, key_roll, key_show};
use node::{CheckCmd, WatchCmd, check, watch};

/// Herald: tells a fleet, through DNS TXT records, which commit each node should run.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authoritative DNS server and the admin API.
    Serve(ServeArgs),
    /// Publish a commit for a node through the admin API.
    Publish(PublishArgs),
    /// Check a node's record once, validating it against a trust anchor.
    Check(CheckCmd),
    /// Check every interval and run a command when the node's seq rises.
    Watch(WatchCmd),
    /// Show a zone's signing key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Publish many nodes from a CSV or JSON-lines file of node,commit, through the batch API.
    Import(ImportArgs),
    /// Copy a data directory (store, signing keys, token) consistently, while serving or not.
    Backup(BackupArgs),
    /// Put a backup in place; the next start makes sure no seq or serial is handed out again.
    Restore(RestoreArgs),
    /// Check the settings of `herald serve` (file, variables, flags) without starting.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List a zone's nodes with what each last reported; `--state` picks those current,
    /// behind, failed or silent.
    Nodes(NodesArgs),
    /// Publish a commit to many nodes in waves gated by node reports; follow, pause, resume
    /// and abort it; deny a commit.
    Rollout {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Make, list and revoke API tokens scoped to nodes of one zone (admin token needed).
    Token {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Read the configuration file with the variables and flags `herald serve` would take,
    /// check everything (secret files included), and print the effective settings as TOML,
    /// secrets left out. Exits 2 on the first error, naming the file, line and key.
    Check(Box<ServeArgs>),
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// The data directory to copy.
    #[arg(long, value_name = "DIR", default_value = "./herald-data")]
    data: PathBuf,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
    /// The new directory to write the backup to; it must not exist.
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// The data directory to restore into: empty or missing, unless --force.
    #[arg(long, value_name = "DIR", default_value = "./herald-data")]
    data: PathBuf,
    /// Restore over a non-empty data directory, which is kept beside it as
    /// DIR.before-restore-<time>. Stop the server first.
    #[arg(long)]
    force: bool,
    /// Take the store from this SQLite file (a Litestream replica restored with
    /// `litestream restore -o FILE`), and only the keys and token from the backup.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// A directory written by `herald backup`.
    backup: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The configuration file (TOML, `version = 1`; see deploy/herald.toml). Flags and
    /// HERALD_* variables win over it.
    #[arg(long, value_name = "FILE", env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: the SQLite store and the generated admin token [default: ./herald-data]
    #[arg(long, value_name = "DIR", env = "HERALD_DATA")]
    data: Option<PathBuf>,
    /// Directory of zone files, one `<zone>.zone` per zone [default: ./zones]
    #[arg(long, value_name = "DIR", env = "HERALD_ZONES")]
    zones: Option<PathBuf>,
    /// Address for DNS over UDP and TCP; repeat for several. Port 0 picks a free port
    /// [default: 127.0.0.1:5353]
    #[arg(
        long = "dns",
        value_name = "ADDR",
        env = "HERALD_DNS",
        value_delimiter = ','
    )]
    dns: Vec<SocketAddr>,
    /// Address of the admin API. Port 0 picks a free port [default: 127.0.0.1:8053]
    #[arg(long, value_name = "ADDR", env = "HERALD_API_LISTEN")]
    api: Option<SocketAddr>,
    /// PEM certificate chain for TLS on the admin API (with --api-tls-key).
    #[arg(long, value_name = "FILE", env = "HERALD_API_TLS_CERT")]
    api_tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the admin API.
    #[arg(long, value_name = "FILE", env = "HERALD_API_TLS_KEY")]
    api_tls_key: Option<PathBuf>,
    /// Serve the admin API in plain HTTP on an address other than loopback (tokens then
    /// cross the network in clear text).
    #[arg(long)]
    allow_plain_http: bool,
    /// Signing settings of one zone, repeatable:
    /// ZONE:algorithm=13|15,denial=nsec|nsec3,validity=14d,inception-offset=1h,refresh=7d,node-ttl=60
    #[arg(long = "dnssec", value_name = "ZONE:SETTINGS", value_parser = dnssec_arg)]
    dnssec: Vec<String>,
    /// Send NOTIFY to this secondary (IP, IP:PORT or [IPv6]:PORT; port 53 by default) on
    /// every serial change; `,key=NAME` signs it with that --tsig-key. Repeatable.
    #[arg(long = "notify", value_name = "ADDR[,key=NAME]")]
    notify: Vec<String>,
    /// Allow AXFR and IXFR from addresses in this prefix (or this one address). Repeatable.
    #[arg(
        long = "allow-transfer",
        value_name = "CIDR",
        env = "HERALD_ALLOW_TRANSFER",
        value_delimiter = ',',
        value_parser = value::prefix
    )]
    allow_transfer: Vec<IpNet>,
    /// A TSIG key (hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1): transfers signed with
    /// it are allowed from anywhere; with a scope (`,zone=Z` and optionally `,nodes=PATTERN`,
    /// one name, PREFIX* or *), RFC 2136 UPDATEs of those nodes' TXT records too (and
    /// transfers only of a zone it wholly covers). Repeatable.
    // Parsed in `serve`, not by clap: clap's error for a bad value repeats the whole value,
    // and this one holds a secret.
    #[arg(
        long = "tsig-key",
        value_name = "NAME:ALGORITHM:BASE64SECRET[,zone=Z][,nodes=PATTERN]",
        value_parser = secret_arg
    )]
    tsig_key: Vec<Secret>,
    /// Keep at most this many IXFR journal entries per zone; older changes are served by AXFR
    /// [default: 10000]
    #[arg(long, value_name = "N", env = "HERALD_JOURNAL_MAX_ENTRIES")]
    journal_max_entries: Option<usize>,
    /// Drop IXFR journal entries older than this (s, m, h or d) [default: 14d]
    #[arg(
        long,
        value_name = "DURATION",
        env = "HERALD_JOURNAL_MAX_AGE",
        value_parser = value::duration
    )]
    journal_max_age: Option<u32>,
    /// Keep at most this much IXFR journal per zone (bytes, or with k, M or G) [default: 16M]
    #[arg(
        long,
        value_name = "SIZE",
        env = "HERALD_JOURNAL_MAX_BYTES",
        value_parser = value::size
    )]
    journal_max_bytes: Option<u64>,
    /// A node whose latest report is older than this is `silent` in the fleet view (the
    /// watcher reports after each hook run, and at least every --report-every) [default: 3h]
    #[arg(
        long,
        value_name = "DURATION",
        env = "HERALD_REPORT_SILENT_AFTER",
        value_parser = value::duration
    )]
    report_silent_after: Option<u32>,
    /// A file holding the DNS cookie secret: 32 hex digits (`openssl rand -hex 16`), the
    /// same on every server of an anycast set [default: a random secret at each start]
    #[arg(long, value_name = "FILE", env = "HERALD_COOKIE_SECRET_FILE")]
    cookie_secret_file: Option<PathBuf>,
    /// A file holding the next cookie secret, accepted beside the active one while a
    /// rollover spreads to every server.
    #[arg(long, value_name = "FILE", env = "HERALD_COOKIE_STAGING_SECRET_FILE")]
    cookie_staging_secret_file: Option<PathBuf>,
    /// Limit UDP answers per client /24 or /56 (response rate limiting; any --rrl-* also
    /// switches it on). Clients with a valid DNS cookie are exempt.
    #[arg(long, env = "HERALD_RRL")]
    rrl: bool,
    /// Answers per second to one /24 or /56 [default: 1000]
    #[arg(long, value_name = "N", env = "HERALD_RRL_RATE")]
    rrl_rate: Option<u32>,
    /// NXDOMAIN answers per second to one /24 or /56 [default: 500]
    #[arg(long, value_name = "N", env = "HERALD_RRL_NXDOMAIN_RATE")]
    rrl_nxdomain_rate: Option<u32>,
    /// Every Nth answer held back is sent truncated, so that real clients retry over TCP;
    /// 0 drops them all [default: 2]
    #[arg(long, value_name = "N", env = "HERALD_RRL_SLIP")]
    rrl_slip: Option<u32>,
}

impl ServeArgs {
    /// What the command line and the environment said, for the settings to merge.
    fn flags(self) -> Flags {
        Flags {
            config: self.config,
            data: self.data,
            zones: self.zones,
            dns: self.dns,
            api: self.api,
            dnssec: self.dnssec,
            notify: self.notify,
            allow_transfer: self.allow_transfer,
            tsig_keys: self.tsig_key.into_iter().map(|k| k.0).collect(),
            journal_max_entries: self.journal_max_entries,
            journal_max_age: self.journal_max_age,
            journal_max_bytes: self.journal_max_bytes,
            report_silent_after: self.report_silent_after,
            admin_token: std::env::var(ADMIN_TOKEN_ENV).ok(),
            api_tls_cert: self.api_tls_cert,
            api_tls_key: self.api_tls_key,
            allow_plain_http: self.allow_plain_http,
            cookie_secret_file: self.cookie_secret_file,
            cookie_staging_secret_file: self.cookie_staging_secret_file,
            rrl: self.rrl,
            rrl_rate: self.rrl_rate,
            rrl_nxdomain_rate: self.rrl_nxdomain_rate,
            rrl_slip: self.rrl_slip,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Publish(_)
        | Command::Key { .. }
        | Command::Check(_)
        | Command::Token { .. }
        | Command::Rollout { .. }
        | Command::Nodes(_)
        | Command::Import(_)
        | Command::Config { .. }
        | Command::Backup(_)
        | Command::Restore(_) => "warn",
        Command::Watch(_) => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr must not take the server down: tracing would otherwise report the
        // failed write with eprintln!, which panics.
        .log_internal_errors(false)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(args).map(|()| 0),
        Command::Publish(args) => publish(args).map(|()| 0),
        Command::Key {
            command: KeyCommand::Show(args),
        } => key_show(args).map(|()| 0),
        Command::Key {
            command: KeyCommand::Report(args),
        } => key_report(args).map(|()| 0),
        Command::Key {
            command: KeyCommand::Roll(args),
        } => key_roll(args).map(|()| 0),
        Command::Check(args) => check(args),
        Command::Token { api, command } => token(api, command).map(|()| 0),
        Command::Nodes(args) => nodes(args).map(|()| 0),
        Command::Rollout { api, command } => rollout(api, command).map(|()| 0),
        Command::Import(args) => import(args).map(|()| 0),
        Command::Config {
            command: ConfigCommand::Check(args),
        } => config_check(*args).map(|()| 0),
        Command::Backup(args) => backup(args).map(|()| 0),
        Command::Restore(args) => restore(args).map(|()| 0),
        Command::Watch(args) => watch(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(e.downcast_ref::<Usage>().map_or(1, |_| USAGE))
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let flags = args.flags();
    let config = settings::resolve(flags.clone()).map_err(usage)?;
    // SIGHUP reads the same sources again: the file, and the flags and variables of the start.
    let reloader: Reloader = Box::new(move || settings::resolve(flags.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("herald")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        run_with_reload(config, stop_on_signal("shutting down"), Some(reloader))
            .await
            .context("herald serve")
    });
    // Tasks of connections that outlived the grace period are abandoned, not awaited.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// A token that is cancelled on SIGINT or SIGTERM: the one signal handler of `herald serve`
/// and `herald watch`, which logs `<signal> received, <what>`. Call inside the runtime that
/// should watch for the signals.
fn stop_on_signal(what: &'static str) -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return token;
    };
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        cancel.cancel();
        tracing::info!("{name} received, {what}");
    });
    token
}

fn config_check(args: ServeArgs) -> anyhow::Result<()> {
    let config = settings::resolve(args.flags()).map_err(usage)?;
    herald::serve::api_tls(&config).map_err(usage)?;
    // The zone files, as serve loads them, and every zone with settings has one.
    let zones = herald::zone::file::load_dir(&config.zones_dir).map_err(usage)?;
    for zone in config.policies.keys() {
        if !zones.iter().any(|z| &z.name == zone) {
            return Err(usage(format!(
                "zone {zone} has settings but no zone file in {}",
                config.zones_dir.display()
            ))
            .into());
        }
    }
    // The admin token file, as serve reads it (without generating one: that needs the data
    // directory, which check leaves alone).
    if let Some(file) = &config.admin_token_file {
        herald::api::auth::admin_token(&config.data_dir, config.admin_token.clone(), Some(file))
            .map_err(usage)?;
    }
    print_out(settings::describe(&config).trim_end())
}

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let made = herald::backup::backup(&args.data, &args.out)?;
    if args.json {
        return print_out(&serde_json::to_string_pretty(&made)?);
    }
    print_out(&format!(
        "backup of {} written to {} ({} files besides the store)",
        args.data.display(),
        made.path.display(),
        made.files.len().saturating_sub(1)
    ))
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let kept =
        herald::backup::restore(&args.backup, &args.data, args.force, args.store.as_deref())?;
    if let Some(old) = kept {
        eprintln!("the previous data directory is kept as {}", old.display());
    }
    print_out(&format!(
        "restored {} into {}; its next start moves every seq and the serial past the lost interval",
        args.backup.display(),
        args.data.display()
    ))
}

fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Exit code of a usage error (DESIGN.md): the same as clap's.
const USAGE: u8 = 2;

/// An error in how the command was called: exits with [`USAGE`]. It keeps the error it
/// wraps, whose message (and causes) are printed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Usage(Box<dyn std::error::Error + Send + Sync>);

fn usage(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Usage {
    Usage(e.into())
}

/// A command-line value that holds a secret (a token, a TSIG key): taken as it is, checked
/// later by code whose errors leave the secret out, and never shown by `Debug`.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn secret_arg(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret(text.to_owned()))
}

/// `--dnssec ZONE:SETTINGS`, checked here and kept as written: the settings merge it over the
/// configuration file's.
fn dnssec_arg(text: &str) -> Result<String, PolicyError> {
    parse_flag(text).map(|_| text.to_owned())
}

fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    value::duration(text).map(|s| Duration::from_secs(u64::from(s)))
}
