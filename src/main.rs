//! The `herald` binary: parses the command line, starts logging, and calls the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use herald::api::auth::ADMIN_TOKEN_ENV;
use herald::api::client::AdminClient;
use herald::record::normalize_zone;
use herald::serve::{ServeConfig, run};
use herald::zone::keys::ZoneKey;
use herald::zone::policy::{ZonePolicy, parse_flag};

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
    /// Show a zone's signing key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print the zone's DNSKEY and DS records (the DS goes to the parent zone; either is a trust
    /// anchor for `herald check` and unbound).
    Show(KeyShowArgs),
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
    /// Data directory: the SQLite store and the generated admin token.
    #[arg(long, value_name = "DIR", default_value = "./herald-data")]
    data: PathBuf,
    /// Directory of zone files, one `<zone>.zone` per zone.
    #[arg(long, value_name = "DIR", default_value = "./zones")]
    zones: PathBuf,
    /// Address for DNS over UDP and TCP; repeat for several. Port 0 picks a free port.
    #[arg(long = "dns", value_name = "ADDR", default_value = "127.0.0.1:5353")]
    dns: Vec<SocketAddr>,
    /// Address of the admin API. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8053")]
    api: SocketAddr,
    /// Signing settings of one zone, repeatable:
    /// ZONE:algorithm=13|15,denial=nsec|nsec3,validity=14d,inception-offset=1h,refresh=7d,node-ttl=60
    #[arg(long = "dnssec", value_name = "ZONE:SETTINGS", value_parser = parse_flag)]
    dnssec: Vec<(String, ZonePolicy)>,
}

#[derive(Debug, clap::Args)]
struct PublishArgs {
    /// Base URL of the admin API.
    #[arg(
        long,
        value_name = "URL",
        env = "HERALD_API",
        default_value = "http://127.0.0.1:8053"
    )]
    api: String,
    /// API token (the admin token, or one scoped to the node).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HERALD_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    token: String,
    /// Zone of the node, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// Print the node as JSON.
    #[arg(long)]
    json: bool,
    /// Node name (one DNS label).
    node: String,
    /// Commit: 40 or 64 lowercase hex digits.
    commit: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Publish(_) | Command::Key { .. } => "warn",
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
        Command::Serve(args) => serve(args),
        Command::Publish(args) => publish(args),
        Command::Key {
            command: KeyCommand::Show(args),
        } => key_show(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig {
        data_dir: args.data,
        zones_dir: args.zones,
        dns: args.dns,
        api: args.api,
        admin_token: std::env::var(ADMIN_TOKEN_ENV).ok(),
        policies: args.dnssec.into_iter().collect(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("herald")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        run(config, shutdown).await.context("herald serve")
    });
    // Tasks of connections that outlived the grace period are abandoned, not awaited.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    shutdown.cancel();
    tracing::info!("{name} received, shutting down");
}

fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.api, &args.token);
    let node = client.publish(&args.zone, &args.node, &args.commit)?;
    if args.json {
        print_out(&serde_json::to_string_pretty(&node)?)
    } else {
        print_out(&format!(
            "{} commit={} seq={} serial={}",
            node.name, node.commit, node.seq, node.serial
        ))
    }
}

/// Prints a line to stdout; a reader that went away (`| head`) is not an error.
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
