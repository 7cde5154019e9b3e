//! Asking a parent zone's servers for a child zone's DS RRset (RFC 4035 §3.1.4.1: the parent
//! answers DS queries for its delegations), for `herald key roll --wait-ds`: the old key may
//! go only once the parent's DS names the new one.
//!
//! The question goes over TCP, so no one off the path can answer it. The answer is not
//! validated: a server that lies can make Herald keep the old key longer, or, pointed at by
//! `--parent` without being the parent's, hurry it (never before the re-signing and the wait
//! after it). Give it the parent's own servers.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use thiserror::Error;

use super::transport::{TransportError, exchange_over_tcp};

/// Why a parent server gave no DS answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ParentError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the parent answered {0}")]
    Rcode(ResponseCode),
}

/// A parent's DS RRset for the zone: each record as `<tag> <alg> <digest type> <HEX>` (as
/// `herald key show` prints it after `IN DS`), and the RRset's TTL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentDs {
    pub records: Vec<String>,
    pub ttl: u32,
}

impl ParentDs {
    /// Whether a record equals `ds` (`<tag> <alg> <digest type> <hex>`, hex in any case).
    pub fn names(&self, ds: &str) -> bool {
        let want = normalize(ds);
        self.records.iter().any(|r| normalize(r) == want)
    }
}

fn normalize(ds: &str) -> String {
    ds.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// Asks `server` for `zone`'s DS RRset (no recursion); an empty answer is an empty set.
pub fn ds_at(server: SocketAddr, zone: &Name, timeout: Duration) -> Result<ParentDs, ParentError> {
    let mut q = Message::query();
    q.metadata.recursion_desired = false;
    q.add_query(Query::query(zone.clone(), RecordType::DS));
    let response = exchange_over_tcp(server, &q, timeout)?;
    let rcode = response.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Err(ParentError::Rcode(rcode));
    }
    let mut out = ParentDs::default();
    for r in response
        .answers
        .iter()
        .filter(|r| r.name.eq_ignore_root(zone))
    {
        if let RData::DNSSEC(DNSSECRData::DS(ds)) = &r.data {
            out.records.push(ds.to_string());
            out.ttl = out.ttl.max(r.ttl);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ds_is_named_whatever_its_spacing_or_case() {
        let parent = ParentDs {
            records: vec!["31466 13 2 B6D82EEE29CE".into()],
            ttl: 3600,
        };
        assert!(parent.names("31466 13 2 b6d82eee29ce"));
        assert!(parent.names(" 31466  13 2 B6D82EEE29CE "));
        assert!(!parent.names("31466 13 2 B6D82EEE29CF"));
        assert!(!parent.names("31467 13 2 B6D82EEE29CE"));
        assert!(!ParentDs::default().names("31466 13 2 B6D82EEE29CE"));
    }
}
