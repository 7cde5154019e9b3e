//! `herald key show|report|roll`: the zone's keys from the data directory, a node's report
//! key, and key rollovers through the admin API (with `--wait-ds`, asking the parent zone's
//! servers for the DS).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use herald::dnssec::ZoneKey;
use herald::record::{NodeLabel, normalize_zone, unix_now};

use super::admin::ApiArgs;
use super::{parse_duration, print_out, usage};

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Print the zone's DNSKEY and DS records (the DS goes to the parent zone; either is a trust
    /// anchor for `herald check` and unbound).
    Show(KeyShowArgs),
    /// Print a node's report key (`NAME:hmac-sha256:BASE64`), for `herald watch --report-key`:
    /// hand it to the node with the trust anchor, as a secret.
    Report(KeyReportArgs),
    /// Start a rollover of the zone's signing key through the admin API (or, with
    /// --revoke-old, hurry the running one to revoking the old key); prints the keys and the
    /// rollover's step. Without a change it shows them: `herald key roll --zone Z --status`.
    Roll(KeyRollArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct KeyRollArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The zone, such as example.test.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// The new key's algorithm: 13 or 15 (the current key's by default).
    #[arg(long, value_name = "ALG")]
    algorithm: Option<u8>,
    /// End with the old key published revoked (RFC 5011), so that nodes drop it at once.
    #[arg(long)]
    revoke_old: bool,
    /// Keep the old key until the parent's DS names the new one: start the rollover so, then
    /// ask every --parent until their DS names the new key and tell the server (exits then).
    #[arg(long, requires = "parent")]
    wait_ds: bool,
    /// A server of the parent zone (ADDR or ADDR:PORT), asked for the zone's DS; repeatable.
    #[arg(long, value_name = "ADDR", value_parser = parse_server)]
    parent: Vec<SocketAddr>,
    /// How often --wait-ds asks the parent.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    poll: Duration,
    /// Only show the keys and the rollover.
    #[arg(long, conflicts_with_all = ["algorithm", "revoke_old", "wait_ds"])]
    status: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct KeyReportArgs {
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
pub(super) struct KeyShowArgs {
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

/// Prints the DNSKEY and DS lines of every key a node may pin: the zone's first key, or
/// during and after a rollover the keys the store names (a revoked one left out).
pub(super) fn key_show(args: KeyShowArgs) -> anyhow::Result<()> {
    let zone = normalize_zone(&args.zone)?;
    let apex = hickory_proto::rr::Name::from_ascii(format!("{zone}."))?;
    let store_path = herald::store::Store::path_in(&args.data);
    let roll = if store_path.exists() {
        herald::store::Store::open_reader(&store_path)?.key_roll(&zone)?
    } else {
        None
    };
    let keys = match roll {
        None => vec![ZoneKey::load(&args.data, &zone, &apex)?],
        Some(row) => {
            let mut files = vec![row.active];
            if row.step != "revoke" {
                files.extend(row.other);
            }
            files
                .iter()
                .map(|f| ZoneKey::load_named(&args.data, f, &apex))
                .collect::<Result<_, _>>()?
        }
    };
    let lines: Vec<String> = keys
        .iter()
        .flat_map(|k| [k.dnskey_line(args.ttl), k.ds_line(args.ttl)])
        .collect();
    print_out(&lines.join("\n"))
}

pub(super) fn key_roll(args: KeyRollArgs) -> anyhow::Result<()> {
    let zone = normalize_zone(&args.zone).map_err(usage)?;
    let client = args.api.client()?;
    let keys = if args.status {
        let z = client.zone(&zone)?;
        herald::api::types::KeysJson {
            keys: z.keys,
            rollover: z.rollover,
        }
    } else {
        let req = herald::api::types::RollKeyJson {
            algorithm: args.algorithm,
            revoke_old: args.revoke_old,
            wait_ds: args.wait_ds,
        };
        match client.roll_key(&zone, &req) {
            Ok(keys) => keys,
            // A rollover started with --wait-ds before: wait for its DS.
            Err(herald::api::client::ClientError::Api { status: 409, .. }) if args.wait_ds => {
                let z = client.zone(&zone)?;
                herald::api::types::KeysJson {
                    keys: z.keys,
                    rollover: z.rollover,
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    print_keys(&args, &keys)?;
    if args.wait_ds {
        wait_ds(&args, &zone, &client)?;
    }
    Ok(())
}

/// `herald key roll --wait-ds`: asks every parent for the zone's DS until all of them name
/// the new key, then tells the server, with the DS TTL.
fn wait_ds(
    args: &KeyRollArgs,
    zone: &str,
    client: &herald::api::client::AdminClient,
) -> anyhow::Result<()> {
    let apex = hickory_proto::rr::Name::from_ascii(format!("{zone}."))?;
    let mut said = String::new();
    let mut say = |line: String| -> anyhow::Result<()> {
        if line != said {
            eprintln!("{line}");
            said = line;
        }
        Ok(())
    };
    loop {
        let z = client.zone(zone)?;
        let step = z
            .rollover
            .as_ref()
            .map(|r| r.step.clone())
            .unwrap_or_default();
        match step.as_str() {
            "publish" => {
                say("waiting for the switch: CDS and CDNSKEY name the new key from then on".into())?
            }
            "switch" => {
                // The signing key's DS comes first.
                let want: String =
                    z.ds.first()
                        .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default();
                let mut ttl = 0;
                let mut missing = Vec::new();
                for parent in &args.parent {
                    match herald::client::parent::ds_at(*parent, &apex, Duration::from_secs(3)) {
                        Ok(ds) if ds.names(&want) => ttl = ttl.max(ds.ttl),
                        Ok(ds) => missing.push(format!("{parent} has {:?}", ds.records)),
                        Err(e) => missing.push(format!("{parent}: {e}")),
                    }
                }
                if missing.is_empty() {
                    client.ds_seen(zone, &herald::api::types::DsSeenJson { ttl })?;
                    return print_out(&format!(
                        "the parent's DS names the new key ({want}, TTL {ttl} s); the old key \
                         goes once that DS is in every cache"
                    ));
                }
                say(format!(
                    "waiting for the parent's DS to be {want}: {}",
                    missing.join("; ")
                ))?;
            }
            other => {
                return print_out(&format!(
                    "the rollover is at step {other:?}: past the DS, nothing to wait for"
                ));
            }
        }
        std::thread::sleep(args.poll);
    }
}

/// A `--parent` server: `ADDR` or `ADDR:PORT`.
fn parse_server(text: &str) -> Result<SocketAddr, String> {
    super::node::parse_target(text, false)
        .map(|t| t.addr)
        .map_err(|e| e.to_string())
}

fn print_keys(args: &KeyRollArgs, keys: &herald::api::types::KeysJson) -> anyhow::Result<()> {
    if args.api.json() {
        return print_out(&serde_json::to_string_pretty(&keys)?);
    }
    let mut out: Vec<String> = keys
        .keys
        .iter()
        .map(|k| {
            format!(
                "key {} algorithm {} {} ({})",
                k.tag, k.algorithm, k.state, k.file
            )
        })
        .collect();
    if let Some(r) = &keys.rollover {
        let next = r
            .next_step_at
            .map(|t| format!(", next step in {} s", t.saturating_sub(unix_now())))
            .unwrap_or_default();
        out.push(format!(
            "rollover step {}{next}: waiting for {}",
            r.step, r.waiting_for
        ));
    }
    print_out(&out.join("\n"))
}

pub(super) fn key_report(args: KeyReportArgs) -> anyhow::Result<()> {
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
