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
use herald::serve::{ServeConfig, run};

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
        Command::Publish(_) => "warn",
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
        println!("{}", serde_json::to_string_pretty(&node)?);
    } else {
        println!(
            "{} commit={} seq={} serial={}",
            node.name, node.commit, node.seq, node.serial
        );
    }
    Ok(())
}
