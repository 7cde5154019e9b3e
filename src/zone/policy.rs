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
//! | `refresh` | re-sign when less than this is left | half the validity |
//! | `node-ttl` | TTL of node TXT records | 60 s |

use hickory_proto::dnssec::Algorithm;
use thiserror::Error;

use crate::record::normalize_zone;

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
            node_ttl: crate::zone::DEFAULT_NODE_TTL,
        }
    }
}

/// A `--dnssec` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("--dnssec {value:?}: {reason}")]
pub struct PolicyError {
    value: String,
    reason: String,
}

/// Parses `ZONE:key=value,…` into the zone's API name and its settings.
pub fn parse_flag(value: &str) -> Result<(String, ZonePolicy), PolicyError> {
    let fail = |reason: String| PolicyError {
        value: value.to_owned(),
        reason,
    };
    let (zone, settings) = value
        .split_once(':')
        .ok_or_else(|| fail("expected ZONE:key=value,…".into()))?;
    let zone = normalize_zone(zone).map_err(|e| fail(e.to_string()))?;
    let mut policy = ZonePolicy::default();
    let mut refresh_set = false;
    for item in settings.split(',').filter(|s| !s.is_empty()) {
        let (key, v) = item
            .split_once('=')
            .ok_or_else(|| fail(format!("{item:?} is not key=value")))?;
        match key {
            "algorithm" => {
                policy.algorithm = match v.to_ascii_lowercase().as_str() {
                    "13" | "ecdsap256sha256" => Algorithm::ECDSAP256SHA256,
                    "15" | "ed25519" => Algorithm::ED25519,
                    _ => {
                        return Err(fail(format!(
                            "algorithm {v:?}: use 13 (ecdsap256sha256) or 15 (ed25519)"
                        )));
                    }
                }
            }
            "denial" => {
                policy.denial = match v.to_ascii_lowercase().as_str() {
                    "nsec" => Denial::Nsec,
                    "nsec3" => Denial::Nsec3,
                    _ => return Err(fail(format!("denial {v:?}: use nsec or nsec3"))),
                }
            }
            "validity" => policy.validity = duration(v).map_err(&fail)?,
            "inception-offset" => policy.inception_offset = duration(v).map_err(&fail)?,
            "refresh" => {
                policy.refresh = duration(v).map_err(&fail)?;
                refresh_set = true;
            }
            "node-ttl" => policy.node_ttl = duration(v).map_err(&fail)?,
            _ => return Err(fail(format!("unknown key {key:?}"))),
        }
    }
    if !refresh_set {
        policy.refresh = policy.validity / 2;
    }
    if policy.validity < 3600 {
        return Err(fail("validity must be at least 1h".into()));
    }
    if policy.refresh == 0 || policy.refresh >= policy.validity {
        return Err(fail(
            "refresh must be above 0 and below the validity".into(),
        ));
    }
    Ok((zone, policy))
}

/// `90`, `90s`, `30m`, `12h`, `14d` or `2w`, in seconds.
pub fn duration(text: &str) -> Result<u32, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => {
            return Err(format!(
                "{text:?} is not a duration like 90s, 30m, 12h, 14d or 2w"
            ));
        }
    };
    digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{text:?} is not a duration like 90s, 30m, 12h, 14d or 2w"))
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
    fn bad_values_say_what_is_wrong() {
        for (flag, needle) in [
            ("example.test", "ZONE:key=value"),
            ("example.test:algorithm=8", "use 13"),
            ("example.test:denial=nsec5", "nsec or nsec3"),
            ("example.test:validity=10x", "not a duration"),
            ("example.test:validity=30m", "at least 1h"),
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
