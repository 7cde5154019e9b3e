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
use herald::api::client::AdminClient;
use herald::api::import::ImportOptions;
use herald::api::rollout_view;
use herald::api::types::{DenyJson, NewRolloutJson, NewToken, NodesJson, RolloutJson};
use herald::client::report::{ReportKey, Reporter};
use herald::client::watch::{WatchConfig, watch as run_watch};
use herald::client::{CheckConfig, Checker, Outcome, Target, TrustAnchors, state};
use herald::config::value::{self, ValueError};
use herald::dnssec::ZoneKey;
use herald::dnssec::policy::{PolicyError, parse_flag};
use herald::record::{Clock, NodeLabel, SystemClock, normalize_zone};
use herald::serve::reload::Reloader;
use herald::serve::run_with_reload;
use herald::serve::settings::{self, Flags};
use ipnet::IpNet;

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

/// Where the admin API is, and the token to use.
#[derive(Debug, clap::Args)]
struct ApiArgs {
    /// Base URL of the admin API.
    #[arg(
        long,
        value_name = "URL",
        env = "HERALD_API",
        default_value = "http://127.0.0.1:8053",
        global = true
    )]
    api: String,
    /// API token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HERALD_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true,
        global = true,
        value_parser = secret_arg
    )]
    token: Option<Secret>,
    /// A PEM file of the CA that signed an https API's certificate (instead of the
    /// system's roots).
    #[arg(long, value_name = "FILE", env = "HERALD_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Read the configuration file with the variables and flags `herald serve` would take,
    /// check everything (secret files included), and print the effective settings as TOML,
    /// secrets left out. Exits 2 on the first error, naming the file, line and key.
    Check(Box<ServeArgs>),
}

#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// Start a rollout; prints it (its id first).
    Start(Box<RolloutStartArgs>),
    /// Show a rollout and its waves, or the zone's latest rollouts without an id.
    Status {
        #[arg(long, value_name = "ZONE")]
        zone: String,
        id: Option<u64>,
    },
    /// Stop a running rollout before its next publish.
    Pause {
        #[arg(long, value_name = "ZONE")]
        zone: String,
        id: u64,
    },
    /// Go on with a paused or halted rollout.
    Resume {
        #[arg(long, value_name = "ZONE")]
        zone: String,
        id: u64,
    },
    /// End a rollout; with --revert, every node it published goes back to its previous
    /// commit (with a new seq, so the nodes act on it).
    Abort {
        #[arg(long, value_name = "ZONE")]
        zone: String,
        id: u64,
        #[arg(long)]
        revert: bool,
    },
    /// Put a commit on the zone's deny-list (admin token): every publish of it is refused,
    /// and its running rollouts halt.
    Deny {
        #[arg(long, value_name = "ZONE")]
        zone: String,
        commit: String,
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct RolloutStartArgs {
    /// The zone, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// The commit to publish.
    commit: String,
    /// `*`, `prefix*`, or node names separated by commas.
    #[arg(long, value_name = "NODES", default_value = "*")]
    nodes: String,
    /// Nodes published first, as a wave of their own (comma-separated).
    #[arg(long, value_name = "NODES", value_delimiter = ',')]
    canary: Vec<String>,
    /// Cumulative percentages, such as 10,50,100.
    #[arg(
        long,
        value_name = "PERCENTS",
        value_delimiter = ',',
        default_value = "100"
    )]
    waves: Vec<u64>,
    /// How long a wave stays published before the next may start.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    interval: Duration,
    /// Percent of a wave's nodes that must report applied before the next wave.
    #[arg(long, value_name = "PERCENT", default_value_t = 100)]
    min_applied: u8,
    /// Halt when more nodes than this report failed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_failed: u64,
    /// At most this many nodes published and not yet reported.
    #[arg(long, value_name = "N")]
    max_in_flight: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct NodesArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The zone, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// Only the nodes in this state.
    #[arg(long, value_name = "STATE", value_parser = ["current", "behind", "failed", "silent"])]
    state: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The zone, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// Nodes per batch request.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    chunk: usize,
    /// Leave out nodes that already have their commit, so a resumed run publishes nothing
    /// twice.
    #[arg(long)]
    skip_unchanged: bool,
    /// The file: lines of `node,commit` (CSV, an optional header) or JSON objects
    /// `{"node": …, "commit": …}`.
    file: PathBuf,
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

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token that may publish, delete and read the matching nodes of one zone. The
    /// token is printed once; only its hash is kept.
    Create {
        /// The zone, such as example.test.
        #[arg(long, value_name = "ZONE")]
        zone: String,
        /// The nodes: one name, PREFIX* or *.
        #[arg(long, value_name = "PATTERN")]
        nodes: String,
        /// Refuse the token after this long (s, m, h or d).
        #[arg(long, value_name = "DURATION", value_parser = value::duration)]
        expires_in: Option<u32>,
        /// A note on what the token is for.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List the tokens, without their secrets.
    List,
    /// Revoke a token: it fails from its next use.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: String,
    },
}

/// What `check` and `watch` share.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Authoritative server, ADDR or ADDR:PORT (port 53 by default); repeat for several, tried
    /// in order.
    #[arg(long = "server", value_name = "ADDR")]
    servers: Vec<String>,
    /// Recursive resolver to ask instead (RD and CD set; the answer is still validated here);
    /// repeatable, tried after the servers.
    #[arg(long = "resolver", value_name = "ADDR")]
    resolvers: Vec<String>,
    /// The zone, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// This node's name in the zone.
    #[arg(long, value_name = "NODE")]
    node: String,
    /// DNSKEY or DS records of the zone (what `herald key show` prints).
    #[arg(long = "trust-anchor", value_name = "FILE")]
    trust_anchor: PathBuf,
    /// State file with the seq already applied; a lower seq is a replay.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Answers signed longer ago than this are stale (the server stopped refreshing).
    #[arg(long, value_name = "DURATION", default_value = "8d", value_parser = parse_duration)]
    max_age: Duration,
    /// How long to wait for each server.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Debug, clap::Args)]
struct CheckCmd {
    #[command(flatten)]
    check: CheckArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct WatchCmd {
    #[command(flatten)]
    check: CheckArgs,
    /// Command run with `sh -c` when the seq rises, with HERALD_ZONE, HERALD_NODE,
    /// HERALD_COMMIT and HERALD_SEQ set; the new seq is recorded only when it exits 0.
    #[arg(long, value_name = "CMD")]
    exec: String,
    /// Time between checks (±10 % jitter).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// Check once, run the hook if needed, and exit.
    #[arg(long)]
    once: bool,
    /// A hook still running after this has its process group sent SIGTERM, then SIGKILL 10 s
    /// later, and counts as failed; the next pass acts on the newest commit.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    hook_timeout: Duration,
    /// This node's report key (what `herald key report` prints): after each hook run, tell
    /// the servers whether it applied or failed.
    #[arg(long, value_name = "FILE")]
    report_key: Option<PathBuf>,
    /// Where to send reports, ADDR or ADDR:PORT; repeatable, tried in order. Default: the
    /// `--server` addresses.
    #[arg(long = "report", value_name = "ADDR", requires = "report_key")]
    report_targets: Vec<String>,
    /// While up to date, report the applied state again this often, so that the server can
    /// tell a quiet node from a silent one (not with --once).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    report_every: Duration,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print the zone's DNSKEY and DS records (the DS goes to the parent zone; either is a trust
    /// anchor for `herald check` and unbound).
    Show(KeyShowArgs),
    /// Print a node's report key (`NAME:hmac-sha256:BASE64`), for `herald watch --report-key`:
    /// hand it to the node with the trust anchor, as a secret.
    Report(KeyReportArgs),
}

#[derive(Debug, clap::Args)]
struct KeyReportArgs {
    /// Data directory of the server that created the zone's report secret.
    #[arg(long, value_name = "DIR", default_value = "./herald-data")]
    data: PathBuf,
    /// The zone, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// The node's name in the zone.
    #[arg(long, value_name = "NODE")]
    node: String,
}

#[derive(Debug, clap::Args)]
struct KeyShowArgs {
    /// Data directory of the server that created the key.
    #[arg(long, value_name = "DIR", default_value = "./herald-data")]
    data: PathBuf,
    /// The zone, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// TTL written in the records.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    ttl: u32,
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

#[derive(Debug, clap::Args)]
struct PublishArgs {
    /// The API, and a token: the admin token or one scoped to the node.
    #[command(flatten)]
    api: ApiArgs,
    /// Zone of the node, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// Node name (one DNS label).
    node: String,
    /// Commit: 40 or 64 lowercase hex digits.
    commit: String,
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

fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let node = client.publish(&args.zone, &args.node, &args.commit)?;
    if args.api.json {
        print_out(&serde_json::to_string_pretty(&node)?)
    } else {
        print_out(&format!(
            "{} commit={} seq={} serial={}",
            node.name, node.commit, node.seq, node.serial
        ))
    }
}

/// `herald nodes`: every page, one line per node (or one JSON object per line).
fn nodes(args: NodesArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let zone = normalize_zone(&args.zone).map_err(usage)?;
    let mut after: Option<String> = None;
    loop {
        let page = client.nodes_in_state(&zone, args.state.as_deref(), after.as_deref(), 1000)?;
        for n in &page.nodes {
            if args.api.json {
                print_out(&serde_json::to_string(n)?)?;
                continue;
            }
            let applied = match &n.applied {
                Some(a) => format!(
                    "{} seq={} commit={} code={} at={}",
                    a.status, a.seq, a.commit, a.code, a.at
                ),
                None => "no report".to_owned(),
            };
            print_out(&format!(
                "{} commit={} seq={} | {applied}",
                n.node, n.commit, n.seq
            ))?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

impl ApiArgs {
    fn client(&self) -> Result<AdminClient, Usage> {
        let token = self
            .token
            .as_ref()
            .map(|t| t.0.as_str())
            .ok_or_else(|| usage("give a token with --token or HERALD_TOKEN"))?;
        match &self.ca_file {
            Some(ca) => AdminClient::with_ca(&self.api, token, ca).map_err(usage),
            None => Ok(AdminClient::new(&self.api, token)),
        }
    }
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

fn import(args: ImportArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let options = ImportOptions {
        zone: args.zone,
        file: args.file,
        chunk: args.chunk,
        skip_unchanged: args.skip_unchanged,
        progress: std::io::stderr().is_terminal(),
    };
    let summary = herald::api::import::run(&client, &options)?;
    if args.api.json {
        print_out(&serde_json::to_string_pretty(&summary)?)
    } else {
        print_out(&summary.to_string())
    }
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

fn token(api: ApiArgs, command: TokenCommand) -> anyhow::Result<()> {
    let client = api.client()?;
    match command {
        TokenCommand::Create {
            zone,
            nodes,
            expires_in,
            description,
        } => {
            let created = client.create_token(&NewToken {
                zone,
                nodes,
                expires_in: expires_in.map(u64::from),
                description,
            })?;
            if api.json {
                print_out(&serde_json::to_string_pretty(&created)?)
            } else {
                // The secret alone on stdout, so `$(herald token create …)` captures it.
                eprintln!(
                    "token {} for zone={} nodes={} (shown once; only its hash is kept)",
                    created.id, created.zone, created.nodes
                );
                print_out(&created.token)
            }
        }
        TokenCommand::List => {
            let list = client.tokens()?;
            if api.json {
                return print_out(&serde_json::to_string_pretty(&list)?);
            }
            for t in list.tokens {
                let expires = match (t.expires, t.expired) {
                    (None, _) => "never".to_owned(),
                    (Some(e), true) => format!("{e} (expired)"),
                    (Some(e), false) => e.to_string(),
                };
                print_out(&format!(
                    "{} zone={} nodes={} expires={expires} {}",
                    t.id, t.zone, t.nodes, t.description
                ))?;
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id)?;
            if api.json {
                print_out(&serde_json::json!({"revoked": id}).to_string())
            } else {
                print_out(&format!("revoked {id}"))
            }
        }
    }
}

/// Prints a line to stdout; a reader that went away (`| head`) is not an error.
/// `herald rollout …`.
fn rollout(api: ApiArgs, command: RolloutCommand) -> anyhow::Result<()> {
    let client = api.client()?;
    let zone_of = |z: &str| normalize_zone(z).map_err(usage);
    let one = |r: RolloutJson| {
        if api.json {
            print_out(&serde_json::to_string_pretty(&r)?)
        } else {
            print_out(rollout_view::render(&r).trim_end())
        }
    };
    match command {
        RolloutCommand::Start(args) => {
            let nodes = if args.nodes.ends_with('*') {
                NodesJson::Pattern(args.nodes)
            } else {
                NodesJson::List(args.nodes.split(',').map(str::to_owned).collect())
            };
            let started = client.start_rollout(
                &zone_of(&args.zone)?,
                &NewRolloutJson {
                    commit: args.commit,
                    nodes,
                    canary: args.canary,
                    waves: Some(args.waves),
                    interval: Some(args.interval.as_secs()),
                    min_applied: Some(args.min_applied.into()),
                    max_failed: Some(args.max_failed),
                    max_in_flight: args.max_in_flight,
                },
            )?;
            one(started)
        }
        RolloutCommand::Status { zone, id: Some(id) } => one(client.rollout(&zone_of(&zone)?, id)?),
        RolloutCommand::Status { zone, id: None } => {
            let list = client.rollouts(&zone_of(&zone)?, 20)?;
            if api.json {
                return print_out(&serde_json::to_string_pretty(&list)?);
            }
            for r in &list.rollouts {
                print_out(&rollout_view::summary(r))?;
            }
            Ok(())
        }
        RolloutCommand::Pause { zone, id } => {
            one(client.drive_rollout(&zone_of(&zone)?, id, "pause", false)?)
        }
        RolloutCommand::Resume { zone, id } => {
            one(client.drive_rollout(&zone_of(&zone)?, id, "resume", false)?)
        }
        RolloutCommand::Abort { zone, id, revert } => {
            one(client.drive_rollout(&zone_of(&zone)?, id, "abort", revert)?)
        }
        RolloutCommand::Deny {
            zone,
            commit,
            reason,
        } => {
            let denied = client.deny_commit(&zone_of(&zone)?, &DenyJson { commit, reason })?;
            if api.json {
                return print_out(&serde_json::to_string_pretty(&denied)?);
            }
            let halted = match denied.halted.as_slice() {
                [] => String::new(),
                ids => format!(
                    "; halted rollout{} {}",
                    if ids.len() == 1 { "" } else { "s" },
                    ids.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            print_out(&format!("denied {}{halted}", denied.commit))
        }
    }
}

fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn key_show(args: KeyShowArgs) -> anyhow::Result<()> {
    let zone = normalize_zone(&args.zone)?;
    let apex = hickory_proto::rr::Name::from_ascii(format!("{zone}."))?;
    let key = ZoneKey::load(&args.data, &zone, &apex)?;
    print_out(&format!(
        "{}\n{}",
        key.dnskey_line(args.ttl),
        key.ds_line(args.ttl)
    ))
}

fn key_report(args: KeyReportArgs) -> anyhow::Result<()> {
    let zone = normalize_zone(&args.zone).map_err(usage)?;
    let node = NodeLabel::parse(&args.node).map_err(usage)?;
    let secret = herald::publish::reports::load_secret(&args.data, &zone)?;
    let key = herald::record::report::node_report_secret(&secret, &node);
    print_out(&format!(
        "{}:hmac-sha256:{}",
        herald::record::report::report_name(&node, &zone),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
    ))
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

/// `ADDR` or `ADDR:PORT`; IPv6 as `::1` or `[::1]:53`.
fn parse_target(text: &str, recursive: bool) -> Result<Target, Usage> {
    let addr = text
        .parse::<std::net::SocketAddr>()
        .or_else(|_| {
            text.parse::<std::net::IpAddr>()
                .map(|ip| std::net::SocketAddr::new(ip, 53))
        })
        .map_err(|_| usage(format!("{text:?} is not an address (ADDR or ADDR:PORT)")))?;
    Ok(Target { addr, recursive })
}

/// The checker and the zone/node names from the shared arguments.
fn checker(args: &CheckArgs) -> anyhow::Result<(Checker, String, String)> {
    let zone = normalize_zone(&args.zone).map_err(usage)?;
    let node = NodeLabel::parse(&args.node).map_err(usage)?;
    let apex = hickory_proto::rr::Name::from_ascii(format!("{zone}."))?;
    let mut targets = Vec::new();
    for s in &args.servers {
        targets.push(parse_target(s, false)?);
    }
    for s in &args.resolvers {
        targets.push(parse_target(s, true)?);
    }
    if targets.is_empty() {
        return Err(usage("give at least one --server or --resolver").into());
    }
    let anchors = TrustAnchors::load(&args.trust_anchor, &apex).map_err(usage)?;
    let config = CheckConfig {
        targets,
        zone: apex,
        node: node.clone(),
        anchors,
        timeout: args.timeout,
        max_age: args.max_age,
        skew: Duration::from_secs(300),
    };
    Ok((Checker::new(config), zone, node.to_string()))
}

fn check(args: CheckCmd) -> anyhow::Result<u8> {
    let (checker, zone, node) = checker(&args.check)?;
    let applied = match &args.check.state {
        Some(path) => state::load(path, &zone, &node).map_err(usage)?,
        None => None,
    };
    let report = checker.check(applied.map(|s| s.seq), SystemClock.now());
    if args.json {
        print_out(&serde_json::to_string_pretty(&report)?)?;
    } else {
        match &report.outcome {
            Outcome::Found { commit, seq, .. } => {
                print_out(&format!("{} commit={commit} seq={seq}", report.name))?
            }
            Outcome::NoRecord => {
                print_out(&format!("{} no record (authenticated denial)", report.name))?
            }
            other => {
                for a in &report.attempts {
                    eprintln!("{}: {:?}", a.server, a.outcome);
                }
                eprintln!("error: {}: {other:?}", report.name);
            }
        }
    }
    Ok(report.exit_code())
}

fn watch(args: WatchCmd) -> anyhow::Result<u8> {
    let (checker, zone, node) = checker(&args.check)?;
    let state = args
        .check
        .state
        .clone()
        .ok_or_else(|| usage("herald watch needs --state FILE"))?;
    // Refuse an unreadable or foreign state file before the first round.
    state::load(&state, &zone, &node).map_err(usage)?;
    if args.hook_timeout.is_zero() {
        return Err(usage("--hook-timeout must be more than 0").into());
    }
    let reporter = match &args.report_key {
        None => None,
        Some(path) => {
            let key = ReportKey::load(path, &zone, &node).map_err(usage)?;
            let given = if args.report_targets.is_empty() {
                &args.check.servers
            } else {
                &args.report_targets
            };
            let targets = given
                .iter()
                .map(|t| parse_target(t, false).map(|t| t.addr))
                .collect::<Result<Vec<_>, _>>()?;
            if targets.is_empty() {
                return Err(
                    usage("--report-key needs --report ADDR or a --server to report to").into(),
                );
            }
            Some(std::sync::Arc::new(Reporter {
                key,
                targets,
                apex: hickory_proto::rr::Name::from_ascii(format!("{zone}."))?,
                timeout: args.check.timeout,
            }))
        }
    };
    let config = WatchConfig {
        checker: std::sync::Arc::new(checker),
        zone,
        node,
        state,
        exec: args.exec,
        interval: args.interval,
        once: args.once,
        hook_timeout: args.hook_timeout,
        reporter,
        report_every: args.report_every,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(async {
        run_watch(config, stop_on_signal("stopping after the running step")).await
    })?)
}
