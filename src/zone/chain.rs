//! Authenticated denial of existence: the NSEC chain (RFC 4034 §4, RFC 4035 §2.3) or the NSEC3
//! chain (RFC 5155) of a zone, as the snapshot holds it.
//!
//! Both are persistent sorted maps ([`SortedMap`]), so adding a node copies a chunk and shares
//! the rest with the previous snapshot, and the query path finds the record covering a name
//! that does not exist with two binary searches and no allocation:
//! - NSEC: the set of names that own data, in canonical order; each name's NSEC RRset lives in
//!   its [`NameEntry`](super::entry::NameEntry), so a lookup gives the predecessor's key and
//!   the entry gives its NSEC;
//! - NSEC3: hashed names (every name with data, and every empty non-terminal) mapped to their
//!   prepared NSEC3 RRset. Parameters follow RFC 9276: SHA-1, no extra iterations, no salt, no
//!   opt-out.

use std::sync::Arc;

use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::{NSEC, NSEC3};
use hickory_proto::rr::{Name, RecordType};
use ring::digest;

use super::canon::{CanonKey, RelName};
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
    Nsec(SortedMap<CanonKey, ()>),
    Nsec3(SortedMap<Hash, Arc<Nsec3Record>>),
}

impl Chain {
    /// NSEC: the name that owns the NSEC covering `rel` (the greatest name ≤ `rel`; the apex
    /// sorts first, so there always is one in a zone).
    #[inline]
    pub fn nsec_covering(&self, rel: &[u8]) -> Option<&[u8]> {
        match self {
            Chain::Nsec(order) => order.get_prev(RelName::new(rel)).map(|(k, _)| &*k.0),
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

/// NSEC: the name after `key` in canonical order, wrapping to the apex after the last
/// (RFC 4034 §4.1.1).
pub fn nsec_next(order: &SortedMap<CanonKey, ()>, key: &[u8]) -> NameKey {
    order
        .get_after(RelName::new(key))
        .map(|(k, _)| k.0.clone())
        .unwrap_or_else(|| NameKey::from(&[][..]))
}

/// NSEC: the name before `key`, wrapping to the last name.
pub fn nsec_prev(order: &SortedMap<CanonKey, ()>, key: &[u8]) -> Option<NameKey> {
    order
        .get_before(RelName::new(key))
        .or_else(|| order.last())
        .map(|(k, _)| k.0.clone())
}

/// NSEC3: the hash after `hash`, wrapping to the first.
pub fn nsec3_next(links: &SortedMap<Hash, Arc<Nsec3Record>>, hash: &Hash) -> Option<Hash> {
    links
        .get_after(hash)
        .or_else(|| links.first())
        .map(|(h, _)| *h)
}

/// NSEC3: the hash before `hash`, wrapping to the last.
pub fn nsec3_prev(links: &SortedMap<Hash, Arc<Nsec3Record>>, hash: &Hash) -> Option<Hash> {
    links
        .get_before(hash)
        .or_else(|| links.last())
        .map(|(h, _)| *h)
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

/// The owner label of an NSEC3 record: the hash in base32 with the extended hex alphabet
/// (RFC 4648 §7), lowercase, without padding; 20 octets give exactly 32 characters.
pub fn nsec3_label(hash: &Hash) -> [u8; 33] {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = [0u8; 33];
    out[0] = 32;
    let mut bits = 0u64;
    let mut nbits = 0;
    let mut i = 1;
    for &b in hash {
        bits = (bits << 8) | u64::from(b);
        nbits += 8;
        while nbits >= 5 {
            nbits -= 5;
            out[i] = ALPHABET[((bits >> nbits) & 31) as usize];
            i += 1;
        }
    }
    out
}

/// The RDATA of an NSEC at a name with `types` (NSEC and RRSIG are added, RFC 4034 §4.1.2).
pub fn nsec_rdata(next: Name, types: impl IntoIterator<Item = RecordType>) -> NSEC {
    NSEC::new_cover_self(next, types)
}

/// The RDATA of an NSEC3 with `types`: RRSIG is added when the name has any type; an empty
/// non-terminal has an empty bitmap (RFC 5155 §7.1).
pub fn nsec3_rdata(next: &Hash, types: &[RecordType]) -> NSEC3 {
    let mut all: Vec<RecordType> = types.to_vec();
    if !all.is_empty() {
        all.push(RecordType::RRSIG);
    }
    NSEC3::new(
        Nsec3HashAlgorithm::SHA1,
        false,
        0,
        Vec::new(),
        next.to_vec(),
        all,
    )
}

#[cfg(test)]
mod tests {
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
        // The label is hickory's base32hex, lowercased.
        let h = nsec3_hash(&name_wire(&Name::from_ascii("example.test.").unwrap()));
        let label = nsec3_label(&h);
        let expected = data_encoding_like_base32hex(&h);
        assert_eq!(std::str::from_utf8(&label[1..]).unwrap(), expected);
    }

    /// Base32hex via hickory's NSEC3 record, which encodes the next hash for display.
    fn data_encoding_like_base32hex(h: &Hash) -> String {
        let r = NSEC3::new(Nsec3HashAlgorithm::SHA1, false, 0, vec![], h.to_vec(), []);
        r.next_hashed_owner_name_base32()
            .unwrap()
            .to_ascii()
            .to_lowercase()
    }

    #[test]
    fn covering_wraps_around() {
        let rec = |n: u8| {
            Arc::new(Nsec3Record {
                name: NameKey::from(vec![1, n]),
                label: [0; 33],
                rrset: WireRrset::from_rdata(RecordType::NSEC3, 60, [&[n][..]]).unwrap(),
                sigs: None,
            })
        };
        let mut links = SortedMap::new();
        for n in [10u8, 20, 30] {
            links.insert([n; 20], rec(n));
        }
        let chain = Chain::Nsec3(links.clone());
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
        assert_eq!(nsec3_next(&links, &[30; 20]), Some([10; 20]));
        assert_eq!(nsec3_prev(&links, &[10; 20]), Some([30; 20]));
        assert_eq!(nsec3_next(&links, &[15; 20]), Some([20; 20]));
    }

    #[test]
    fn nsec_neighbours_wrap_to_the_apex() {
        let mut order = SortedMap::new();
        for k in [&b""[..], b"\x01a", b"\x01c"] {
            order.insert(CanonKey(NameKey::from(k)), ());
        }
        let chain = Chain::Nsec(order.clone());
        assert_eq!(chain.nsec_covering(b"\x01b"), Some(&b"\x01a"[..]));
        assert_eq!(chain.nsec_covering(b"\x01z"), Some(&b"\x01c"[..]));
        assert_eq!(&*nsec_next(&order, b"\x01a"), b"\x01c");
        assert_eq!(&*nsec_next(&order, b"\x01c"), b"");
        assert_eq!(
            &*nsec_next(&order, b"\x01b"),
            b"\x01c",
            "next of a name not in the chain"
        );
        assert_eq!(nsec_prev(&order, b"\x01b").as_deref(), Some(&b"\x01a"[..]));
        assert_eq!(nsec_prev(&order, b"").as_deref(), Some(&b"\x01c"[..]));
    }
}
