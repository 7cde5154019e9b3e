//! `GET /metrics`: Prometheus text format, rendered with `prometheus-client`.
//!
//! What the hot paths count ([`crate::metrics`]) is summed at scrape time, and what describes
//! the zones is read then too: serial and node count, the IXFR journal, NOTIFY and transfer
//! counters, and how many serials each secondary is behind. Names follow Prometheus
//! conventions and the peers (NSD's `nsd_queries_by_rcode_total`, CoreDNS's
//! `coredns_dns_requests_total`); every one starts with `herald_`.
//!
//! The endpoint needs no token when the API listens on loopback, or when the configuration
//! says `metrics-public = true`; otherwise any valid token (admin or scoped) reads it.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use std::sync::Arc;

use super::AppState;
use super::auth::presented;
use super::error::ApiError;
use super::types::ErrorBody;
use crate::dns::secondaries::TransferCounts;
use crate::metrics::{
    Outcome, PUBLISH_BUCKETS, QuerySnapshot, ReportOutcome, SIZE_BUCKETS, Source, TRANSPORTS,
};
use crate::record::unix_now;
use crate::store::{NodeState, RolloutState};

/// One zone at scrape time.
#[derive(Debug)]
struct ZoneFacts {
    name: String,
    serial: u32,
    nodes: u64,
    journal_entries: usize,
    journal_bytes: usize,
    counts: TransferCounts,
    /// Seconds until the soonest RRSIG expiration, if anything is signed.
    expiry: Option<i64>,
    /// Its refreshed signatures could not be stored at the last try.
    at_risk: bool,
    /// (secondary address, serials behind) for those whose serial is known.
    behind: Vec<(String, u32)>,
    /// Nodes by state, in the order of `NodeState::ALL`.
    states: [u64; 4],
    /// Rollouts by state, in the order of `RolloutState::ALL`.
    rollouts: [u64; 5],
    /// The key rollover's step and the seconds until the next one is due (negative when
    /// late; `None` while it waits for the re-signing or the parent's DS), if the zone ever
    /// rolled its key.
    key_roll: Option<(&'static str, Option<i64>)>,
}

/// Everything a scrape shows, gathered first, then encoded.
#[derive(Debug)]
struct Scrape {
    queries: QuerySnapshot,
    publishes: Vec<(Source, Outcome, u64)>,
    visible: (Vec<u64>, f64),
    signatures: u64,
    reports: Vec<(ReportOutcome, u64)>,
    zones: Vec<ZoneFacts>,
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus (OpenMetrics) text: a token is needed unless the API listens on loopback or metrics-public is set", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 401, description = "No token, or not a valid one", body = ErrorBody),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    if !state.metrics_public {
        presented(&request)
            .and_then(|t| state.auth.identify(t, unix_now()))
            .ok_or(ApiError::Unauthorized)?;
    }
    let scrape = gather(&state).await?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

async fn gather(state: &AppState) -> Result<Scrape, ApiError> {
    let stats = state.publisher.stats();
    let publishes = Source::ALL
        .iter()
        .flat_map(|s| Outcome::ALL.iter().map(move |o| (*s, *o)))
        .map(|(s, o)| (s, o, stats.count(s, o)))
        .collect();
    let set = state.zones.load_full();
    let names: Vec<String> = set.iter().map(|z| z.name.to_string()).collect();
    let rows = state
        .read(move |s| {
            names
                .iter()
                .map(|n| s.zone(n).map(|r| r.map_or(0, |r| r.node_count)))
                .collect::<Result<Vec<u64>, _>>()
        })
        .await?;
    let expiries = expiries(state, &set).await?;
    let mut zones = Vec::new();
    for ((z, nodes), expiry) in set.iter().zip(rows).zip(expiries) {
        let (secondaries, counts) = state.secondaries.report(&z.name, z.serial);
        let behind = secondaries
            .iter()
            .filter_map(|s| {
                let have = s.last_transfer.as_ref().map(|t| t.serial)?;
                Some((
                    s.address.clone(),
                    z.serial.wrapping_sub(have).min(i32::MAX as u32),
                ))
            })
            .collect();
        let states = state.node_states(&z.name).await?;
        let name = z.name.to_string();
        let rollouts = state.read(move |s| s.rollout_states(&name)).await?;
        zones.push(ZoneFacts {
            name: z.name.to_string(),
            serial: z.serial,
            nodes,
            journal_entries: z.journal.len(),
            journal_bytes: z.journal.iter().map(|(_, e)| e.diff.len()).sum(),
            counts,
            expiry,
            at_risk: stats.is_at_risk(z.name.as_ref()),
            behind,
            rollouts,
            states,
            key_roll: z.keys.rollover.as_ref().map(|r| {
                let now = crate::record::unix_now() as i64;
                (r.step, r.next_step_at.map(|t| t as i64 - now))
            }),
        });
    }
    Ok(Scrape {
        queries: state.query_stats.snapshot(),
        publishes,
        visible: stats.visible(),
        signatures: stats.signatures(),
        reports: ReportOutcome::ALL
            .iter()
            .map(|o| (*o, stats.report_count(*o)))
            .collect(),
        zones,
    })
}

/// How long a zone's soonest RRSIG expiry is reused: finding it walks every name.
const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Per zone, the seconds until its soonest RRSIG expiry, walked at most once a minute (off the
/// async threads) and otherwise taken from the last walk, counted down.
async fn expiries(
    state: &AppState,
    set: &Arc<crate::zone::ZoneSet>,
) -> Result<Vec<Option<i64>>, ApiError> {
    let cache = state.expiry_cache.clone();
    let set = set.clone();
    tokio::task::spawn_blocking(move || {
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        set.iter()
            .map(|z| {
                if let Some((at, left)) = cache.get(&*z.name)
                    && now.duration_since(*at) < EXPIRY_EVERY
                {
                    return left.map(|l| l - now.duration_since(*at).as_secs() as i64);
                }
                let left = z.soonest_expiry(unix_now() as u32);
                cache.insert(z.name.to_string(), (now, left));
                left
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))
}

type Fmt = Result<(), std::fmt::Error>;

/// A gauge per zone: name, help, and how to read it.
type ZoneGauge = (&'static str, &'static str, fn(&ZoneFacts) -> i64);

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    ConstCounter::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Fmt {
        // Queries.
        {
            let mut m = encoder.encode_descriptor(
                "herald_dns_queries",
                "DNS answers sent by the query path, by transport, query type, RCODE and DO bit",
                None,
                MetricType::Counter,
            )?;
            for (transport, qtype, rcode, dnssec_ok, n) in &self.queries.answers {
                let labels = [
                    ("transport", *transport),
                    ("type", *qtype),
                    ("rcode", *rcode),
                    ("dnssec_ok", if *dnssec_ok { "true" } else { "false" }),
                ];
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_dns_truncated",
                "Answers sent with TC set (too large for the requester's UDP size)",
                None,
                MetricType::Counter,
            )?;
            for (t, transport) in TRANSPORTS.iter().enumerate() {
                ConstCounter::new(self.queries.truncated[t])
                    .encode(m.encode_family(&[("transport", *transport)])?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_dns_cookies",
                "Queries with a DNS cookie: valid (a server cookie this server made, in time), or new (none yet, stale or foreign: a fresh one was sent)",
                None,
                MetricType::Counter,
            )?;
            for (i, result) in ["valid", "new"].iter().enumerate() {
                ConstCounter::new(self.queries.shield[i])
                    .encode(m.encode_family(&[("result", *result)])?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_rrl_limited",
                "UDP answers response rate limiting held back: slipped (sent truncated, or BADCOOKIE) or dropped",
                None,
                MetricType::Counter,
            )?;
            for (i, action) in ["slipped", "dropped"].iter().enumerate() {
                ConstCounter::new(self.queries.shield[2 + i])
                    .encode(m.encode_family(&[("action", *action)])?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_dns_response_size_bytes",
                "Sizes of the answers sent by the query path",
                None,
                MetricType::Histogram,
            )?;
            for (t, transport) in TRANSPORTS.iter().enumerate() {
                let (counts, sum) = &self.queries.sizes[t];
                let buckets: Vec<(f64, u64)> = SIZE_BUCKETS
                    .iter()
                    .map(|b| *b as f64)
                    .chain([f64::INFINITY])
                    .zip(counts.iter().copied())
                    .collect();
                let total = counts.iter().sum();
                m.encode_family(&[("transport", *transport)])?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    *sum as f64,
                    total,
                    &buckets,
                    None,
                )?;
            }
        }
        // Publishes.
        {
            let mut m = encoder.encode_descriptor(
                "herald_publishes",
                "Changes handed to the writer, by path (api, batch, pdns, update) and result",
                None,
                MetricType::Counter,
            )?;
            for (source, outcome, n) in &self.publishes {
                let labels = [("path", source.as_str()), ("result", outcome.as_str())];
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let m = encoder.encode_descriptor(
                "herald_publish_visible_seconds",
                "From a change reaching the writer to its answer: durable, signed and served",
                None,
                MetricType::Histogram,
            )?;
            let (counts, sum) = &self.visible;
            let buckets: Vec<(f64, u64)> = PUBLISH_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(counts.iter().copied())
                .collect();
            let total = counts.iter().sum();
            let mut m = m;
            m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                *sum, total, &buckets, None,
            )?;
        }
        counter(
            &mut encoder,
            "herald_signatures",
            "RRSIGs made (publishes, refreshes, start-up)",
            self.signatures,
        )?;
        {
            let mut m = encoder.encode_descriptor(
                "herald_reports",
                "Node reports received, by what became of them",
                None,
                MetricType::Counter,
            )?;
            for (outcome, n) in &self.reports {
                ConstCounter::new(*n).encode(m.encode_family(&[("result", outcome.as_str())])?)?;
            }
        }
        // Zones.
        let gauges: [ZoneGauge; 5] = [
            ("herald_zone_serial", "The SOA serial served", |z| {
                i64::from(z.serial)
            }),
            ("herald_zone_nodes", "Nodes published in the zone", |z| {
                z.nodes as i64
            }),
            ("herald_journal_entries", "IXFR journal entries kept", |z| {
                z.journal_entries as i64
            }),
            ("herald_journal_bytes", "IXFR journal bytes kept", |z| {
                z.journal_bytes as i64
            }),
            (
                "herald_zone_at_risk",
                "1 while the store cannot take the zone's refreshed signatures (full or \
                 read-only disk): the served ones age toward expiry",
                |z| i64::from(z.at_risk),
            ),
        ];
        for (name, help, value) in gauges {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for z in &self.zones {
                ConstGauge::new(value(z)).encode(m.encode_family(&[("zone", z.name.as_str())])?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_rrsig_expiry_seconds",
                "Seconds until the zone's soonest RRSIG expiration (NSEC3 records left out); \
                 re-signing keeps it above the refresh setting",
                None,
                MetricType::Gauge,
            )?;
            for z in &self.zones {
                if let Some(left) = z.expiry {
                    ConstGauge::new(left).encode(m.encode_family(&[("zone", z.name.as_str())])?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_notifies",
                "NOTIFY messages sent to secondaries, and acknowledged",
                None,
                MetricType::Counter,
            )?;
            for z in &self.zones {
                for (state, n) in [
                    ("sent", z.counts.notifies_sent),
                    ("acked", z.counts.notifies_acked),
                ] {
                    let labels = [("zone", z.name.as_str()), ("state", state)];
                    ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_transfers",
                "Zone transfer requests, by kind: AXFR, IXFR, IXFR answered with the whole \
                 zone, IXFR already current, refused",
                None,
                MetricType::Counter,
            )?;
            for z in &self.zones {
                for (kind, n) in [
                    ("axfr", z.counts.axfr),
                    ("ixfr", z.counts.ixfr),
                    ("ixfr_fallback", z.counts.ixfr_fallback),
                    ("current", z.counts.current),
                    ("refused", z.counts.refused),
                ] {
                    let labels = [("zone", z.name.as_str()), ("kind", kind)];
                    ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_secondary_behind_serials",
                "How many serials a secondary's last transfer is behind the zone",
                None,
                MetricType::Gauge,
            )?;
            for z in &self.zones {
                for (secondary, behind) in &z.behind {
                    let labels = [("zone", z.name.as_str()), ("secondary", secondary.as_str())];
                    ConstGauge::new(i64::from(*behind)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_nodes",
                "Nodes by state, from their reports: current, behind, failed, silent",
                None,
                MetricType::Gauge,
            )?;
            for z in &self.zones {
                for (node_state, n) in NodeState::ALL.iter().zip(z.states) {
                    let labels = [("zone", z.name.as_str()), ("state", node_state.as_str())];
                    ConstGauge::new(n as i64).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_rollouts",
                "Rollouts by state: running, paused, halted, completed, aborted",
                None,
                MetricType::Gauge,
            )?;
            for z in &self.zones {
                for (rollout_state, n) in RolloutState::ALL.iter().zip(z.rollouts) {
                    let labels = [("zone", z.name.as_str()), ("state", rollout_state.as_str())];
                    ConstGauge::new(n as i64).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_key_rollover",
                "The step of the zone's key rollover (1 for the current one): publish, switch, \
                 revoke, done",
                None,
                MetricType::Gauge,
            )?;
            for z in &self.zones {
                if let Some((current, _)) = z.key_roll {
                    for step in ["publish", "switch", "revoke", "done"] {
                        let labels = [("zone", z.name.as_str()), ("step", step)];
                        ConstGauge::new(i64::from(step == current))
                            .encode(m.encode_family(&labels)?)?;
                    }
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "herald_key_rollover_next_step_seconds",
                "Seconds until the key rollover's next step is due (absent while it waits for \
                 the re-signing or the parent's DS)",
                None,
                MetricType::Gauge,
            )?;
            for z in &self.zones {
                if let Some((_, Some(left))) = z.key_roll {
                    let labels = [("zone", z.name.as_str())];
                    ConstGauge::new(left).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let m = encoder.encode_descriptor(
                "herald_build",
                "The running Herald",
                None,
                MetricType::Info,
            )?;
            let mut m = m;
            m.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        }
        Ok(())
    }
}
