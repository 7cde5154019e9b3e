//! The node side's commands: `check` (one validated look at a node's record) and `watch`
//! (the loop that runs the hook and reports).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use herald::client::report::{ReportKey, Reporter};
use herald::client::state;
use herald::client::watch::{WatchConfig, watch as run_watch};
use herald::client::{CheckConfig, Checker, Outcome, Target, TrustAnchors, TrustState};
use herald::record::{Clock, NodeLabel, SystemClock, normalize_zone};

use super::{Usage, parse_duration, print_out, stop_on_signal, usage};

/// What `check` and `watch` share.
#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
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
    /// RFC 5011 hold-down: a new zone key, seen in DNSKEY RRsets that a trusted key signs, is
    /// trusted after this long (and a revoked one forgotten this long after). At least 1s.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
    holddown: Duration,
}

#[derive(Debug, clap::Args)]
pub(super) struct CheckCmd {
    #[command(flatten)]
    check: CheckArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct WatchCmd {
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

/// `ADDR` or `ADDR:PORT`; IPv6 as `::1` or `[::1]:53`.
pub(super) fn parse_target(text: &str, recursive: bool) -> Result<Target, Usage> {
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
pub(super) fn checker(args: &CheckArgs) -> anyhow::Result<(Checker, String, String)> {
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
    if args.holddown < Duration::from_secs(1) {
        return Err(usage("--holddown must be at least 1s").into());
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
        holddown: args.holddown,
    };
    Ok((Checker::new(config), zone, node.to_string()))
}

pub(super) fn check(args: CheckCmd) -> anyhow::Result<u8> {
    let (checker, zone, node) = checker(&args.check)?;
    let report = match &args.check.state {
        Some(path) => {
            // An unreadable or foreign state file is the caller's to fix (exit 2).
            state::load(path, &zone, &node).map_err(usage)?;
            // Read, check and write back under the state file's lock, so that a watcher on the
            // same file waits rather than puts back an older trust state, or loses this one.
            state::update(path, &zone, &node, |current| {
                checker.check(current.applied(), &mut current.trust, SystemClock.now())
            })?
        }
        None => checker.check(None, &mut TrustState::default(), SystemClock.now()),
    };
    for change in &report.trust_changes {
        change.log(&zone);
    }
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
                    eprintln!("{}: {}", a.server, a.outcome);
                }
                eprintln!("error: {}: {other}", report.name);
            }
        }
    }
    Ok(report.exit_code())
}

pub(super) fn watch(args: WatchCmd) -> anyhow::Result<u8> {
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
