//! Node reports: what `herald watch` tells the server after each hook run, and the per-node
//! key it signs with (DESIGN.md, "Rollouts"; README, "Node reports").
//!
//! A report is one RFC 2136 UPDATE of zone Z, TSIG-signed (hmac-sha256), whose update section
//! holds one TXT record (class IN, TTL 0) owned by `<node>._report.<Z>.`, the same name as the
//! key that signs it. The name is reserved: `_report` is not a node label, the zone never
//! serves it, and the server takes such a message off the update path. The TXT record holds
//! one character-string:
//!
//! `v=herald-report1 seq=<n> commit=<hex> status=applied|failed code=<exit code> at=<unix-seconds>`
//!
//! The key's secret is `HMAC-SHA256(zone report secret, node label)`: the server keeps one
//! secret per zone and derives any node's key on demand, and a node's key signs only reports
//! for that node, since its name is the owner of the one record it may carry.

use std::fmt;

use ring::hmac;
use thiserror::Error;

use super::{Commit, NodeLabel, RecordError};

/// The version tag of a report.
pub const REPORT_VERSION: &str = "herald-report1";

/// The label under the zone apex below which reports are sent: `<node>._report.<zone>.`.
pub const REPORT_LABEL: &str = "_report";

/// How a hook run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Applied,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "applied" => Some(Self::Applied),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One node's report of one hook run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seq the hook ran for.
    pub seq: u64,
    pub commit: Commit,
    pub status: Status,
    /// The hook's exit code; -1 when it had none (killed by a signal, or timed out).
    pub code: i32,
    /// When the hook ended, in Unix seconds, by the node's clock.
    pub at: u64,
}

/// Why a report's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("not a herald report: {0}")]
    Syntax(&'static str),
    #[error("bad commit in report")]
    Commit(#[source] RecordError),
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v={REPORT_VERSION} seq={} commit={} status={} code={} at={}",
            self.seq,
            self.commit,
            self.status.as_str(),
            self.code,
            self.at
        )
    }
}

impl Report {
    /// Parses the text [`Report`]'s `Display` writes: every field once, in any order, nothing
    /// else.
    pub fn parse(text: &str) -> Result<Self, ReportError> {
        let mut fields: [Option<&str>; 6] = [None; 6];
        const NAMES: [&str; 6] = ["v", "seq", "commit", "status", "code", "at"];
        for part in text.split(' ').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or(ReportError::Syntax("a field without '='"))?;
            let i = NAMES
                .iter()
                .position(|n| *n == key)
                .ok_or(ReportError::Syntax("an unknown field"))?;
            if fields[i].replace(value).is_some() {
                return Err(ReportError::Syntax("a field given twice"));
            }
        }
        let [
            Some(v),
            Some(seq),
            Some(commit),
            Some(status),
            Some(code),
            Some(at),
        ] = fields
        else {
            return Err(ReportError::Syntax("a field is missing"));
        };
        if v != REPORT_VERSION {
            return Err(ReportError::Syntax("unknown v="));
        }
        let number = |t: &str| t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty();
        if !number(seq) || !number(at) {
            return Err(ReportError::Syntax("seq= and at= are decimal numbers"));
        }
        Ok(Self {
            seq: seq
                .parse()
                .map_err(|_| ReportError::Syntax("seq= out of range"))?,
            commit: Commit::parse(commit).map_err(ReportError::Commit)?,
            status: Status::parse(status)
                .ok_or(ReportError::Syntax("status= is applied or failed"))?,
            code: code
                .parse()
                .map_err(|_| ReportError::Syntax("code= is an integer"))?,
            at: at
                .parse()
                .map_err(|_| ReportError::Syntax("at= out of range"))?,
        })
    }
}

/// The name of `node`'s report key and of the record it sends, for a zone `zone` in API form
/// (no trailing dot): `<node>._report.<zone>.`.
pub fn report_name(node: &NodeLabel, zone: &str) -> String {
    format!("{node}.{REPORT_LABEL}.{zone}.")
}

/// The secret of `node`'s report key: `HMAC-SHA256(zone_secret, node label)`.
pub fn node_report_secret(zone_secret: &[u8], node: &NodeLabel) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, zone_secret);
    let tag = hmac::sign(&key, node.as_str().as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

    #[test]
    fn renders_and_parses_back() {
        let r = Report {
            seq: 7,
            commit: Commit::parse(SHA1).unwrap(),
            status: Status::Failed,
            code: -1,
            at: 1_764_086_400,
        };
        let text = r.to_string();
        assert_eq!(
            text,
            format!("v=herald-report1 seq=7 commit={SHA1} status=failed code=-1 at=1764086400")
        );
        assert_eq!(Report::parse(&text).unwrap(), r);
        assert!(text.len() < 255, "one character-string");
    }

    #[test]
    fn refuses_what_it_would_not_write() {
        let good = format!("v=herald-report1 seq=1 commit={SHA1} status=applied code=0 at=1");
        for bad in [
            String::new(),
            good.replace("herald-report1", "herald-report2"),
            good.replace("seq=1", "seq=-1"),
            good.replace("seq=1", "seq=99999999999999999999999"),
            good.replace("status=applied", "status=done"),
            good.replace("code=0", "code=zero"),
            good.replace(SHA1, "xyz"),
            good.replace(" at=1", ""),
            format!("{good} seq=2"),
            format!("{good} extra=1"),
            format!("{good} junk"),
        ] {
            assert!(Report::parse(&bad).is_err(), "{bad:?}");
        }
        assert!(Report::parse(&good).is_ok());
    }

    #[test]
    fn node_keys_differ_per_node_and_per_zone_secret() {
        let n1 = NodeLabel::parse("n1").unwrap();
        let n2 = NodeLabel::parse("n2").unwrap();
        let a = node_report_secret(b"zone secret a", &n1);
        assert_eq!(a, node_report_secret(b"zone secret a", &n1));
        assert_ne!(a, node_report_secret(b"zone secret a", &n2));
        assert_ne!(a, node_report_secret(b"zone secret b", &n1));
        assert_eq!(report_name(&n1, "example.test"), "n1._report.example.test.");
    }
}
