//! Making the records of the denial chain (RFC 4034 §4, RFC 5155 §3): a name's neighbours in
//! the chain, NSEC and NSEC3 RDATA, and the hashed owner label of an NSEC3 record.
//!
//! The chain itself, as the snapshot holds it and the query path searches it, is
//! [`crate::zone::chain`]; this module is what the signer needs to keep it signed.

use std::sync::Arc;

use data_encoding::BASE32HEX_NOPAD;
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::{NSEC, NSEC3};
use hickory_proto::rr::{Name, RecordType};

use crate::zone::chain::{Hash, Nsec3Record};
use crate::zone::order::NameOrder;
use crate::zone::snapshot::NameKey;
use crate::zone::sorted::SortedMap;

/// NSEC: the name after `key` in canonical order, wrapping to the apex after the last
/// (RFC 4034 §4.1.1).
pub fn nsec_next(order: &NameOrder, key: &[u8]) -> NameKey {
    NameKey::from(order.get_after(key).unwrap_or_default())
}

/// NSEC: the name before `key`, wrapping to the last name.
pub fn nsec_prev(order: &NameOrder, key: &[u8]) -> Option<NameKey> {
    order
        .get_before(key)
        .or_else(|| order.last())
        .map(NameKey::from)
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

/// The owner label of an NSEC3 record in wire format: length 32, then the hash in base32 with
/// the extended hex alphabet (RFC 4648 §7, as RFC 5155 §3.3 asks), lowercase, without padding;
/// 20 octets give exactly 32 characters.
pub fn nsec3_label(hash: &Hash) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = 32;
    BASE32HEX_NOPAD.encode_mut(hash, &mut out[1..]);
    out[1..].make_ascii_lowercase();
    out
}

/// The RDATA of an NSEC at a name with `types` (NSEC and RRSIG are added, RFC 4034 §4.1.2).
pub fn nsec_rdata(next: Name, types: impl IntoIterator<Item = RecordType>) -> NSEC {
    NSEC::new_cover_self(next, types)
}

/// The RDATA of an NSEC3 with `types`: RRSIG is added when the name has any type; an empty
/// non-terminal has an empty bitmap (RFC 5155 §7.1). RFC 9276's parameters: SHA-1, no extra
/// iterations, no salt, no opt-out.
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
    use crate::zone::chain::{nsec3_hash, test_links};
    use crate::zone::wire::name_wire;

    #[test]
    fn labels_are_hickorys_base32hex_lowercased() {
        for name in ["example.test.", "n1.example.test.", "*.example.test."] {
            let h = nsec3_hash(&name_wire(&Name::from_ascii(name).unwrap()));
            let label = nsec3_label(&h);
            // hickory encodes an NSEC3's next hash for display: the same alphabet, uppercase.
            let theirs = NSEC3::new(Nsec3HashAlgorithm::SHA1, false, 0, vec![], h.to_vec(), [])
                .next_hashed_owner_name_base32()
                .unwrap()
                .to_ascii()
                .to_lowercase();
            assert_eq!(label[0], 32);
            assert_eq!(std::str::from_utf8(&label[1..]).unwrap(), theirs, "{name}");
        }
    }

    #[test]
    fn nsec3_neighbours_wrap_around() {
        let links = test_links(&[10, 20, 30]);
        assert_eq!(nsec3_next(&links, &[30; 20]), Some([10; 20]));
        assert_eq!(nsec3_prev(&links, &[10; 20]), Some([30; 20]));
        assert_eq!(nsec3_next(&links, &[15; 20]), Some([20; 20]));
    }

    #[test]
    fn nsec_neighbours_wrap_to_the_apex() {
        let order = NameOrder::from_sorted([&b""[..], b"\x01a", b"\x01c"]);
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
