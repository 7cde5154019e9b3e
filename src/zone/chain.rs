//! Authenticated denial of existence: the NSEC chain (RFC 4034 §4, RFC 4035 §2.3) or the NSEC3
//! chain (RFC 5155) of a zone, as the snapshot holds it and the query path searches it. The
//! records in it are made and signed by [`crate::dnssec`].
//!
//! Both are persistent two-level sorted structures, so adding a node copies a chunk and shares
//! the rest with the previous snapshot, and the query path finds the record covering a name
//! that does not exist with two binary searches and no allocation:
//! - NSEC: the set of names that own data, in canonical order, packed ([`NameOrder`]); each
//!   name's NSEC RRset lives in its [`NameEntry`](super::entry::NameEntry), so a lookup gives
//!   the predecessor's key and the entry gives its NSEC;
//! - NSEC3 ([`SortedMap`]): hashed names (every name with data, and every empty non-terminal)
//!   mapped to their prepared NSEC3 RRset. Parameters follow RFC 9276: SHA-1, no extra
//!   iterations, no salt, no opt-out.

use std::sync::Arc;

use ring::digest;

use super::order::NameOrder;
use super::snapshot::NameKey;
use super::sorted::SortedMap;
use super::wire::WireRrset;

/// An NSEC3 hash (SHA-1).
pub type Hash = [u8; 20];

/// The NSEC3 record of one hashed name, prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nsec3Record {
    /// The name it stands for.
    pub name: NameKey,
    /// The owner's first label in wire format: length 32 and the base32hex hash.
    pub label: [u8; 33],
    pub rrset: WireRrset,
    pub sigs: Option<WireRrset>,
}

/// The chain of a zone.
#[derive(Debug, Clone)]
pub enum Chain {
    Nsec(NameOrder),
    Nsec3(SortedMap<Hash, Arc<Nsec3Record>>),
}

impl Chain {
    /// NSEC: the name that owns the NSEC covering `rel` (the greatest name ≤ `rel`; the apex
    /// sorts first, so there always is one in a zone).
    #[inline]
    pub fn nsec_covering(&self, rel: &[u8]) -> Option<&[u8]> {
        match self {
            Chain::Nsec(order) => order.get_prev(rel),
            Chain::Nsec3(_) => None,
        }
    }

    /// NSEC3: the record whose owner hash is exactly `hash`.
    #[inline]
    pub fn nsec3_matching(&self, hash: &Hash) -> Option<&Nsec3Record> {
        match self {
            Chain::Nsec3(links) => links.get(hash).map(|r| &**r),
            Chain::Nsec(_) => None,
        }
    }

    /// NSEC3: the record covering `hash`: the greatest owner hash below it, or the last one,
    /// whose next hash wraps around to the first (RFC 5155 §3.1.7).
    #[inline]
    pub fn nsec3_covering(&self, hash: &Hash) -> Option<&Nsec3Record> {
        match self {
            Chain::Nsec3(links) => links
                .get_before(hash)
                .or_else(|| links.last())
                .map(|(_, r)| &**r),
            Chain::Nsec(_) => None,
        }
    }
}

/// The NSEC3 hash of a name given in lowercase wire format (root label included): SHA-1 over
/// the name and the empty salt, with no extra iterations (RFC 5155 §5, RFC 9276 §3.1).
#[inline]
pub fn nsec3_hash(wire: &[u8]) -> Hash {
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, wire);
    let mut h = [0u8; 20];
    h.copy_from_slice(d.as_ref());
    h
}

/// Links at the hashes `[n; 20]` for each `n` of `ns`, each standing for the name `\x01 n`:
/// a chain to test the neighbour and covering lookups on.
#[cfg(test)]
pub fn test_links(ns: &[u8]) -> SortedMap<Hash, Arc<Nsec3Record>> {
    let mut links = SortedMap::new();
    for &n in ns {
        let record = Nsec3Record {
            name: NameKey::from(vec![1, n]),
            label: [0; 33],
            rrset: WireRrset::from_rdata(hickory_proto::rr::RecordType::NSEC3, 60, [&[n][..]])
                .unwrap(),
            sigs: None,
        };
        links.insert([n; 20], Arc::new(record));
    }
    links
}

#[cfg(test)]
mod tests {
    use hickory_proto::dnssec::Nsec3HashAlgorithm;
    use hickory_proto::rr::Name;

    use super::*;
    use crate::zone::wire::name_wire;

    #[test]
    fn hashes_match_hickory_and_rfc5155() {
        // RFC 5155 Appendix A: H(example) with salt aabbccdd and 12 iterations is
        // 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom. Herald uses no salt and no iterations, so compare
        // with hickory's implementation of the same parameters instead.
        for name in [
            "example.test.",
            "n1.example.test.",
            "*.example.test.",
            "A.B.Example.Test.",
        ] {
            let n = Name::from_ascii(name).unwrap();
            let ours = nsec3_hash(&name_wire(&n));
            let theirs = Nsec3HashAlgorithm::SHA1.hash(&[], &n, 0).unwrap();
            assert_eq!(&ours[..], theirs.as_ref(), "{name}");
        }
    }

    #[test]
    fn covering_wraps_around() {
        let chain = Chain::Nsec3(test_links(&[10, 20, 30]));
        let cover = |n: u8| chain.nsec3_covering(&[n; 20]).unwrap().name[1];
        assert_eq!(cover(15), 10);
        assert_eq!(cover(35), 30);
        assert_eq!(
            cover(5),
            30,
            "below the first hash wraps to the last record"
        );
        assert_eq!(chain.nsec3_matching(&[20; 20]).unwrap().name[1], 20);
        assert!(chain.nsec3_matching(&[21; 20]).is_none());
    }

    #[test]
    fn nsec_covering_is_the_greatest_name_not_above() {
        let chain = Chain::Nsec(NameOrder::from_sorted([&b""[..], b"\x01a", b"\x01c"]));
        assert_eq!(chain.nsec_covering(b"\x01b"), Some(&b"\x01a"[..]));
        assert_eq!(chain.nsec_covering(b"\x01z"), Some(&b"\x01c"[..]));
        assert_eq!(chain.nsec_covering(b"\x01a"), Some(&b"\x01a"[..]));
    }
}
