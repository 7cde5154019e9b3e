//! Per-zone signing settings: algorithm, denial of existence, signature lifetimes, node TTL.
//!
//! Set with `herald serve --dnssec ZONE:key=value,…` (repeatable) until the configuration file
//! takes them over:
//!
//! | key | values | default |
//! |---|---|---|
//! | `algorithm` | `13` / `ecdsap256sha256`, `15` / `ed25519` | 13 |
//! | `denial` | `nsec`, `nsec3` (RFC 9276: SHA-1, 0 extra iterations, no salt, no opt-out) | `nsec` |
//! | `validity` | signature lifetime, e.g. `14d` | 14 days |
//! | `inception-offset` | how far inception is back-dated, for clock skew | 1 hour |
//! | `refresh` | re-sign when less than this is left, and the signature is at least this old | half the validity |
//! | `node-ttl` | TTL of node TXT records | 60 s |
//! | `holddown` | the nodes' RFC 5011 add hold-down, which a key rollover waits for | 30 days |
//! | `propagation` | how long a change takes to reach every secondary, for rollover waits | 1 hour |
//!
//! A policy that would re-sign fresh signatures is refused ([`largest_refresh`]): expirations
//! are jittered over the last quarter of the validity, so a signature can expire three
//! quarters of the validity after it was made, and the refresh window must close before that,
//! with a margin of an eighth of the validity. Validity may be as short as 10 s, for tests
//! that run a rollover in minutes; below an hour it is only for tests.

use hickory_proto::dnssec::Algorithm;
use thiserror::Error;

use crate::config::value::{ValueError, duration};
use crate::record::{DEFAULT_NODE_TTL, RecordError, normalize_zone};

/// How nonexistence is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// An NSEC chain over the names in canonical order (RFC 4034 §4, RFC 4035 §3.1.3).
    Nsec,
    /// An NSEC3 chain over hashed names (RFC 5155) with RFC 9276's parameters.
    Nsec3,
}

/// The settings of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonePolicy {
    pub algorithm: Algorithm,
    pub denial: Denial,
    /// Seconds from signing to expiration (before jitter).
    pub validity: u32,
    /// Seconds the inception is back-dated.
    pub inception_offset: u32,
    /// A signature with less than this many seconds left is re-signed.
    pub refresh: u32,
    pub node_ttl: u32,
    /// Seconds a new key is published before it signs, beyond the DNSKEY TTL and the
    /// propagation delay: at least the nodes' RFC 5011 add hold-down.
    pub holddown: u32,
    /// Seconds a change takes to reach every secondary (RFC 7583's Dprp).
    pub propagation: u32,
}

const DAY: u32 = 86_400;

impl Default for ZonePolicy {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::ECDSAP256SHA256,
            denial: Denial::Nsec,
            validity: 14 * DAY,
            inception_offset: 3600,
            refresh: 7 * DAY,
            node_ttl: DEFAULT_NODE_TTL,
            holddown: 30 * DAY,
            propagation: 3600,
        }
    }
}

/// A `--dnssec` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("--dnssec {value:?}: {problem}")]
pub struct PolicyError {
    value: String,
    problem: PolicyProblem,
}

/// What is wrong with a `--dnssec` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyProblem {
    #[error("expected ZONE:key=value,…")]
    Syntax,
    #[error(transparent)]
    Zone(#[from] RecordError),
    #[error("{0:?} is not key=value")]
    NotKeyValue(String),
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    #[error("algorithm {0:?}: use 13 (ecdsap256sha256) or 15 (ed25519)")]
    Algorithm(String),
    #[error("denial {0:?}: use nsec or nsec3")]
    Denial(String),
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("validity must be at least 10s")]
    ShortValidity,
    #[error("refresh must be above 0 and below the validity")]
    Refresh,
    /// The refresh window reaches into the expirations of fresh signatures: they would be
    /// re-signed over and over, each time with a new serial.
    #[error(
        "refresh {} with validity {}: a fresh signature can expire {} after it is made (the \
         last quarter of the validity is jitter), so it would be re-signed at once, again and \
         again; the largest refresh that works with this validity is {}",
        human(*refresh), human(*validity), human(validity - validity / 4), human(largest_refresh(*validity))
    )]
    Churn { refresh: u32, validity: u32 },
}

impl PolicyError {
    /// What is wrong, without the value (for errors that say where the value came from).
    pub fn problem(&self) -> &PolicyProblem {
        &self.problem
    }
}

/// Parses `ZONE:key=value,…` into the zone's API name and its settings.
pub fn parse_flag(value: &str) -> Result<(String, ZonePolicy), PolicyError> {
    parse(value).map_err(|problem| PolicyError {
        value: value.to_owned(),
        problem,
    })
}

fn parse(value: &str) -> Result<(String, ZonePolicy), PolicyProblem> {
    let (zone, settings) = value.split_once(':').ok_or(PolicyProblem::Syntax)?;
    let zone = normalize_zone(zone)?;
    let mut policy = ZonePolicy::default();
    let mut refresh_set = false;
    for item in settings.split(',').filter(|s| !s.is_empty()) {
        let (key, v) = item
            .split_once('=')
            .ok_or_else(|| PolicyProblem::NotKeyValue(item.to_owned()))?;
        match key {
            "algorithm" => {
                policy.algorithm = match v.to_ascii_lowercase().as_str() {
                    "13" | "ecdsap256sha256" => Algorithm::ECDSAP256SHA256,
                    "15" | "ed25519" => Algorithm::ED25519,
                    _ => return Err(PolicyProblem::Algorithm(v.to_owned())),
                }
            }
            "denial" => {
                policy.denial = match v.to_ascii_lowercase().as_str() {
                    "nsec" => Denial::Nsec,
                    "nsec3" => Denial::Nsec3,
                    _ => return Err(PolicyProblem::Denial(v.to_owned())),
                }
            }
            "validity" => policy.validity = duration(v)?,
            "inception-offset" => policy.inception_offset = duration(v)?,
            "refresh" => {
                policy.refresh = duration(v)?;
                refresh_set = true;
            }
            "node-ttl" => policy.node_ttl = duration(v)?,
            "holddown" => policy.holddown = duration(v)?,
            "propagation" => policy.propagation = duration(v)?,
            _ => return Err(PolicyProblem::UnknownKey(key.to_owned())),
        }
    }
    if !refresh_set {
        policy.refresh = policy.validity / 2;
    }
    if policy.validity < 10 {
        return Err(PolicyProblem::ShortValidity);
    }
    if policy.refresh == 0 || policy.refresh >= policy.validity {
        return Err(PolicyProblem::Refresh);
    }
    if policy.refresh > largest_refresh(policy.validity) {
        return Err(PolicyProblem::Churn {
            refresh: policy.refresh,
            validity: policy.validity,
        });
    }
    Ok((zone, policy))
}

/// The largest refresh that never touches a fresh signature: the earliest expiration of one,
/// three quarters of the validity after signing (`sign.rs` jitters over the last quarter), less
/// a margin of an eighth of the validity for the sweep to get round to it.
pub fn largest_refresh(validity: u32) -> u32 {
    validity - validity / 4 - validity / 8
}

/// Seconds as a setting takes them: in the largest unit that divides them (`45m`, `210h`,
/// `2250s`), so a value from a message can be pasted back.
fn human(secs: u32) -> String {
    [("w", 7 * DAY), ("d", DAY), ("h", 3600), ("m", 60)]
        .into_iter()
        .find(|(_, size)| secs >= *size && secs.is_multiple_of(*size))
        .map_or_else(
            || format!("{secs}s"),
            |(unit, size)| format!("{}{unit}", secs / size),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let (zone, p) = parse_flag("Example.Test.:").unwrap();
        assert_eq!(
            (zone.as_str(), &p),
            ("example.test", &ZonePolicy::default())
        );
        let (_, p) = parse_flag("example.test:algorithm=ed25519,denial=nsec3,validity=2w,inception-offset=30m,node-ttl=300").unwrap();
        assert_eq!(p.algorithm, Algorithm::ED25519);
        assert_eq!(p.denial, Denial::Nsec3);
        assert_eq!(
            (p.validity, p.refresh, p.inception_offset, p.node_ttl),
            (14 * DAY, 7 * DAY, 1800, 300)
        );
        let (_, p) = parse_flag("example.test:algorithm=13,validity=10d,refresh=3d").unwrap();
        assert_eq!(
            (p.algorithm, p.validity, p.refresh),
            (Algorithm::ECDSAP256SHA256, 10 * DAY, 3 * DAY)
        );
    }

    #[test]
    fn the_largest_refresh_is_accepted_and_one_more_second_is_not() {
        for validity in ["10s", "1h", "1d", "14d"] {
            let v = crate::config::value::duration(validity).unwrap();
            let largest = human(largest_refresh(v));
            let flag = format!("example.test:validity={validity},refresh={largest}");
            assert_eq!(
                parse_flag(&flag).unwrap().1.refresh,
                largest_refresh(v),
                "{flag}"
            );
            let over = largest_refresh(v) + 1;
            let flag = format!("example.test:validity={validity},refresh={over}s");
            assert!(parse_flag(&flag).is_err(), "{flag}");
        }
        assert_eq!(human(largest_refresh(14 * DAY)), "210h");
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (flag, needle) in [
            ("example.test", "ZONE:key=value"),
            ("example.test:algorithm=8", "use 13"),
            ("example.test:denial=nsec5", "nsec or nsec3"),
            ("example.test:validity=10x", "not a duration"),
            ("example.test:validity=9s", "at least 10s"),
            (
                "example.test:validity=1h,refresh=55m",
                "refresh 55m with validity 1h: a fresh signature can expire 45m after it is made \
                 (the last quarter of the validity is jitter), so it would be re-signed at once, \
                 again and again; the largest refresh that works with this validity is 2250s",
            ),
            ("example.test:refresh=20d", "below the validity"),
            ("example.test:colour=blue", "unknown key"),
            ("example.test:denial", "not key=value"),
            ("bad zone:denial=nsec", "not a valid domain name"),
        ] {
            let err = parse_flag(flag).unwrap_err().to_string();
            assert!(err.contains(needle), "{flag}: {err}");
        }
    }
}
