//! Trust anchors: DNSKEY or DS records in zone-file presentation format, one per line, as
//! `herald key show` prints them and unbound's `trust-anchor-file` reads them:
//!
//! ```text
//! example.test. 3600 IN DNSKEY 257 3 13 m8k7mD6ENGcv…
//! example.test. 3600 IN DS 46711 13 2 040479EB8E55…
//! ```
//!
//! TTL and class are optional; the key or digest may be split over several fields; `;` starts
//! a comment. hickory-proto's zone-file parser refuses DNSKEY records ("should be dynamically
//! generated"), so the few fields are read here and handed to hickory-proto's DNSKEY and DS
//! types.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKeyBuf};
use hickory_proto::rr::Name;
use thiserror::Error;

/// A trust anchor file that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AnchorError {
    #[error("cannot read the trust anchor {path}")]
    Io {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("trust anchor line {line}: {reason}")]
    Line {
        line: usize,
        reason: String,
        /// What the decoder said, where one was involved.
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("the trust anchor file has no DNSKEY or DS record for {0}")]
    Empty(String),
}

/// The trusted keys and digests of one zone.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    pub dnskeys: Vec<DNSKEY>,
    pub ds: Vec<DS>,
}

impl TrustAnchors {
    /// Reads the anchors for `zone` from a file; records for other names are ignored.
    pub fn load(path: &Path, zone: &Name) -> Result<Self, AnchorError> {
        let text = std::fs::read_to_string(path).map_err(|cause| AnchorError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        Self::parse(&text, zone)
    }

    /// Parses anchors for `zone` from presentation-format text.
    pub fn parse(text: &str, zone: &Name) -> Result<Self, AnchorError> {
        let mut anchors = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split(';').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason: &str| AnchorError::Line {
                line: i + 1,
                reason: reason.to_owned(),
                cause: None,
            };
            let decoding =
                |reason: &str, cause: Box<dyn std::error::Error + Send + Sync>| AnchorError::Line {
                    line: i + 1,
                    reason: reason.to_owned(),
                    cause: Some(cause),
                };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let owner = Name::from_ascii(fields[0])
                .map_err(|e| decoding("the owner is not a name", e.into()))?;
            let Some(at) = fields
                .iter()
                .position(|f| f.eq_ignore_ascii_case("DNSKEY") || f.eq_ignore_ascii_case("DS"))
            else {
                return Err(bad("not a DNSKEY or DS record"));
            };
            // `DNSKEY 257 3 13 …`: the type where the owner should be.
            if at == 0 {
                return Err(bad(
                    "missing owner: expected `owner [ttl] [IN] DNSKEY|DS …`",
                ));
            }
            // Between owner and type there may be a TTL and the class.
            if fields[1..at]
                .iter()
                .any(|f| !(f.eq_ignore_ascii_case("IN") || f.parse::<u32>().is_ok()))
            {
                return Err(bad("expected `owner [ttl] [IN] DNSKEY|DS …`"));
            }
            if !owner.eq_ignore_root(zone) {
                continue;
            }
            let rest = &fields[at + 1..];
            // Each field parsed as its own width: 65536 is not a flags value of 0.
            fn number<T: std::str::FromStr>(s: Option<&&str>) -> Option<T> {
                s.and_then(|v| v.parse().ok())
            }
            if fields[at].eq_ignore_ascii_case("DNSKEY") {
                let key = dnskey_rdata(rest).map_err(|e| AnchorError::Line {
                    line: i + 1,
                    reason: e.reason.to_owned(),
                    cause: e.cause,
                })?;
                anchors.dnskeys.push(key);
            } else {
                let tag: u16 = number(rest.first()).ok_or_else(|| bad("bad DS key tag"))?;
                let alg =
                    Algorithm::from_u8(number(rest.get(1)).ok_or_else(|| bad("bad DS algorithm"))?);
                let digest_type = DigestType::from(
                    number::<u8>(rest.get(2)).ok_or_else(|| bad("bad DS digest type"))?,
                );
                let digest = hex(&rest.get(3..).unwrap_or_default().concat())
                    .ok_or_else(|| bad("the DS digest is not hex"))?;
                anchors.ds.push(DS::new(tag, alg, digest_type, digest));
            }
        }
        if anchors.dnskeys.is_empty() && anchors.ds.is_empty() {
            return Err(AnchorError::Empty(zone.to_ascii()));
        }
        Ok(anchors)
    }
}

/// Why the RDATA fields of a DNSKEY (`257 3 13 <base64>`) cannot be read.
#[derive(Debug, Error)]
#[error("{reason}")]
pub struct RdataError {
    pub reason: &'static str,
    /// What the decoder said, where one was involved.
    #[source]
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Reads the RDATA fields of a DNSKEY in presentation format (RFC 4034 §2.2): flags, protocol,
/// algorithm and the base64 key, which may be split over several fields. Shared by the trust
/// anchor file and the state file, which keeps the keys it tracks in this form.
pub fn dnskey_rdata(fields: &[&str]) -> Result<DNSKEY, RdataError> {
    let bad = |reason| RdataError {
        reason,
        cause: None,
    };
    // Each field parsed as its own width: 65536 is not a flags value of 0.
    fn number<T: std::str::FromStr>(s: Option<&&str>) -> Option<T> {
        s.and_then(|v| v.parse().ok())
    }
    let flags: u16 = number(fields.first()).ok_or_else(|| bad("bad DNSKEY flags"))?;
    let protocol: u8 = number(fields.get(1)).ok_or_else(|| bad("bad DNSKEY protocol"))?;
    if protocol != 3 {
        return Err(bad("DNSKEY protocol must be 3"));
    }
    let alg = Algorithm::from_u8(number(fields.get(2)).ok_or_else(|| bad("bad DNSKEY algorithm"))?);
    let key = STANDARD
        .decode(fields.get(3..).unwrap_or_default().concat())
        .map_err(|e| RdataError {
            reason: "the DNSKEY public key is not base64",
            cause: Some(e.into()),
        })?;
    if key.is_empty() {
        return Err(bad("the DNSKEY has no public key"));
    }
    Ok(DNSKEY::with_flags(flags, PublicKeyBuf::new(key, alg)))
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::PublicKey;

    fn zone() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    #[test]
    fn reads_what_key_show_prints() {
        let text = "; comment\n\
            example.test. 3600 IN DNSKEY 257 3 13 m8k7mD6ENGcv3xWq8LXHpo1doIUMhwFgjNCjNlhjzijHPWJ5ZGY9ZTXh 1Vi8AZExVANsrfdmq+faQgIZt5S7+A==\n\
            example.test. 3600 IN DS 46711 13 2 040479EB8E55A5352FFC5588E7E20BB0C26F1B394390FD3ED3628AB70EE365A2\n\
            other.test. IN DS 1 13 2 00FF\n\
            Example.Test DNSKEY 256 3 15 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
        let a = TrustAnchors::parse(text, &zone()).unwrap();
        assert_eq!(a.dnskeys.len(), 2);
        assert_eq!(a.dnskeys[0].flags(), 257);
        assert_eq!(
            a.dnskeys[0].public_key().algorithm(),
            Algorithm::ECDSAP256SHA256
        );
        assert_eq!(a.dnskeys[0].calculate_key_tag().unwrap(), 46711);
        assert_eq!(a.dnskeys[1].public_key().algorithm(), Algorithm::ED25519);
        assert_eq!(a.ds.len(), 1);
        assert_eq!((a.ds[0].key_tag(), a.ds[0].digest().len()), (46711, 32));
    }

    #[test]
    fn says_what_is_wrong() {
        for (text, needle) in [
            ("example.test. 3600 IN A 127.0.0.1", "not a DNSKEY or DS"),
            (
                "example.test. IN DNSKEY 257 2 13 AAAA",
                "protocol must be 3",
            ),
            ("example.test. IN DNSKEY 257 3 13 !!!", "not base64"),
            ("example.test. IN DS 1 13 2 XYZ", "not hex"),
            ("example.test. CH DNSKEY 257 3 13 AAAA", "expected"),
            // Out of range for the field's width: refused, never wrapped.
            (
                "example.test. IN DNSKEY 65793 3 13 AAAA",
                "bad DNSKEY flags",
            ),
            (
                "example.test. IN DNSKEY 257 259 13 AAAA",
                "bad DNSKEY protocol",
            ),
            (
                "example.test. IN DNSKEY 257 3 269 AAAA",
                "bad DNSKEY algorithm",
            ),
            ("example.test. IN DS 112247 13 2 00FF", "bad DS key tag"),
            ("example.test. IN DS 1 269 2 00FF", "bad DS algorithm"),
            ("example.test. IN DS 1 13 258 00FF", "bad DS digest type"),
            ("example.test. IN DS -1 13 2 00FF", "bad DS key tag"),
            (
                "other.test. IN DS 1 13 2 00FF",
                "no DNSKEY or DS record for example.test.",
            ),
            ("", "no DNSKEY or DS"),
            // The type first: refused, without a panic.
            ("DNSKEY 257 3 13 AAAA", "missing owner"),
            ("ds 1 13 2 00FF", "missing owner"),
        ] {
            let err = TrustAnchors::parse(text, &zone()).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
