//! The commands that talk to the admin API: `publish`, `import`, `token`, `nodes` and
//! `rollout`. Each reads its answer with the API's own JSON types and prints it as text, or
//! as JSON with `--json`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use herald::api::client::AdminClient;
use herald::api::import::ImportOptions;
use herald::api::rollout_view;
use herald::api::types::{DenyJson, NewRolloutJson, NewToken, NodesJson, RolloutJson};
use herald::config::value;
use herald::record::normalize_zone;

use super::{Secret, Usage, parse_duration, print_out, secret_arg, usage};

/// Where the admin API is, and the token to use.
#[derive(Debug, clap::Args)]
pub(super) struct ApiArgs {
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
pub(super) enum RolloutCommand {
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
pub(super) struct RolloutStartArgs {
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
pub(super) struct NodesArgs {
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
pub(super) struct ImportArgs {
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

#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
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

#[derive(Debug, clap::Args)]
pub(super) struct PublishArgs {
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

pub(super) fn publish(args: PublishArgs) -> anyhow::Result<()> {
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
pub(super) fn nodes(args: NodesArgs) -> anyhow::Result<()> {
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
    /// Whether to print the answer as JSON.
    pub(super) fn json(&self) -> bool {
        self.json
    }

    pub(super) fn client(&self) -> Result<AdminClient, Usage> {
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

pub(super) fn import(args: ImportArgs) -> anyhow::Result<()> {
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

pub(super) fn token(api: ApiArgs, command: TokenCommand) -> anyhow::Result<()> {
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
pub(super) fn rollout(api: ApiArgs, command: RolloutCommand) -> anyhow::Result<()> {
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
