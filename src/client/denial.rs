//! Whether NSEC or NSEC3 records prove that `<node>.<zone> TXT` does not exist (RFC 4035 §5.4,
//! RFC 5155 §8). The records' signatures are checked by the caller; this is only the name
//! arithmetic, in canonical order (hickory's `Name` ordering is RFC 4034 §6.1's).

use data_encoding::BASE32HEX_NOPAD;
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::{NSEC, NSEC3};
use hickory_proto::rr::{Name, RecordType};

use super::validate::Bogus;

/// NSEC3 records with more extra iterations than this are not trusted (RFC 9276 §3.2 lets
/// validators treat them as insecure; Herald's own zones use none).
const MAX_ITERATIONS: u16 = 150;

/// Does the NSEC `owner`→`next` cover `name` (owner < name < next, wrapping at the apex)?
fn nsec_covers(owner: &Name, next: &Name, name: &Name) -> bool {
    if owner < next {
        owner < name && name < next
    } else {
        // The last NSEC points back to the apex.
        owner < name || name < next
    }
}

/// How many labels `a` and `b` have in common, from the root.
fn common_labels(a: &Name, b: &Name) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x.eq_ignore_ascii_case(y))
        .count()
}

fn wildcard_of(name: &Name) -> Option<Name> {
    name.prepend_label("*").ok()
}

/// NSEC proof: NODATA needs the name's own NSEC without TXT or CNAME; NXDOMAIN needs an NSEC
/// covering the name and one covering the wildcard at the closest encloser.
pub fn nsec_proves(qname: &Name, zone: &Name, nsecs: &[(Name, &NSEC)], nxdomain: bool) -> bool {
    let qname = qname.to_lowercase();
    if !nxdomain {
        return nsecs.iter().any(|(owner, n)| {
            *owner == qname
                && !n
                    .type_bit_maps()
                    .any(|t| t == RecordType::TXT || t == RecordType::CNAME)
        }) || covered_empty_non_terminal(&qname, nsecs);
    }
    let Some((owner, n)) = nsecs
        .iter()
        .find(|(o, n)| nsec_covers(o, &n.next_domain_name().to_lowercase(), &qname))
    else {
        return false;
    };
    // The closest encloser is the longest ancestor of the name that the covering NSEC shows
    // to exist: the longer common part with its owner or its next name (RFC 5155 §8.3 idea,
    // for NSEC).
    let next = n.next_domain_name().to_lowercase();
    let labels = common_labels(&qname, owner)
        .max(common_labels(&qname, &next))
        .max(usize::from(zone.num_labels()));
    let encloser = qname.trim_to(labels);
    let Some(wild) = wildcard_of(&encloser) else {
        return false;
    };
    nsecs
        .iter()
        .any(|(o, n)| nsec_covers(o, &n.next_domain_name().to_lowercase(), &wild))
}

/// NODATA at an empty non-terminal: an NSEC covers the name and its next name is below it
/// (RFC 4035 §3.1.3.2).
fn covered_empty_non_terminal(qname: &Name, nsecs: &[(Name, &NSEC)]) -> bool {
    nsecs.iter().any(|(o, n)| {
        let next = n.next_domain_name().to_lowercase();
        nsec_covers(o, &next, qname) && qname.zone_of(&next) && next != *qname
    })
}

/// The hash in an NSEC3 owner name's first label (base32hex, RFC 4648 §7, any case).
fn owner_hash(owner: &Name, zone: &Name) -> Option<Vec<u8>> {
    if owner.num_labels() != zone.num_labels() + 1 || !zone.zone_of(owner) {
        return None;
    }
    let label = owner.iter().next()?.to_ascii_uppercase();
    BASE32HEX_NOPAD.decode(&label).ok()
}

/// NSEC3 proof (RFC 5155 §8.4, §8.5): NODATA needs the record matching the name without TXT or
/// CNAME; NXDOMAIN needs the closest encloser proof: a record matching the closest encloser,
/// one covering the next closer name, and one covering the wildcard at the closest encloser.
pub fn nsec3_proves(
    qname: &Name,
    zone: &Name,
    nsec3s: &[(Name, &NSEC3)],
    nxdomain: bool,
) -> Result<bool, Bogus> {
    let mut links: Vec<(Vec<u8>, &NSEC3)> = Vec::new();
    for (owner, n) in nsec3s {
        let hash = owner_hash(owner, zone).ok_or_else(|| Bogus::Nsec3Owner {
            owner: Box::new(owner.clone()),
            zone: Box::new(zone.clone()),
        })?;
        if n.iterations() > MAX_ITERATIONS {
            return Err(Bogus::Iterations(n.iterations()));
        }
        links.push((hash, n));
    }
    let (salt, iterations) = match links.first() {
        Some((_, n)) => (n.salt().to_vec(), n.iterations()),
        None => return Ok(false),
    };
    let hash = |name: &Name| -> Result<Vec<u8>, Bogus> {
        Nsec3HashAlgorithm::SHA1
            .hash(&salt, name, iterations)
            .map(|d| d.as_ref().to_vec())
            .map_err(Bogus::Hash)
    };
    let matching = |h: &[u8]| links.iter().find(|(o, _)| o == h).map(|(_, n)| *n);
    let covering = |h: &[u8]| {
        links.iter().any(|(o, n)| {
            let next = n.next_hashed_owner_name();
            if o.as_slice() < next {
                o.as_slice() < h && h < next
            } else {
                o.as_slice() < h || h < next
            }
        })
    };
    let qname = qname.to_lowercase();
    if !nxdomain {
        return Ok(matching(&hash(&qname)?).is_some_and(|n| {
            !n.type_bit_maps()
                .any(|t| t == RecordType::TXT || t == RecordType::CNAME)
        }));
    }
    if matching(&hash(&qname)?).is_some() {
        return Ok(false);
    }
    // Walk up from the name to the apex for the closest encloser.
    let mut next_closer = qname.clone();
    while next_closer.num_labels() > zone.num_labels() {
        let encloser = next_closer.base_name();
        if matching(&hash(&encloser)?).is_some() {
            let Some(wild) = wildcard_of(&encloser) else {
                return Ok(false);
            };
            return Ok(covering(&hash(&next_closer)?) && covering(&hash(&wild)?));
        }
        next_closer = encloser;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::rdata::NSEC;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn nsec_nxdomain_and_nodata() {
        let zone = n("example.test.");
        let apex = NSEC::new_cover_self(n("b.example.test."), [RecordType::SOA]);
        let b = NSEC::new_cover_self(n("d.example.test."), [RecordType::TXT]);
        let d = NSEC::new_cover_self(n("example.test."), [RecordType::TXT]);
        let all = [
            (n("example.test."), &apex),
            (n("b.example.test."), &b),
            (n("d.example.test."), &d),
        ];
        // c is covered by b→d, and *.example.test by the apex→b record.
        assert!(nsec_proves(&n("c.example.test."), &zone, &all, true));
        assert!(
            nsec_proves(&n("zz.example.test."), &zone, &all, true),
            "covered by the last NSEC"
        );
        // Without the apex record the wildcard is not denied.
        assert!(!nsec_proves(&n("c.example.test."), &zone, &all[1..], true));
        // An existing name is not denied.
        assert!(!nsec_proves(&n("b.example.test."), &zone, &all, true));
        // NODATA: b has TXT, so TXT at b is not denied; A would be.
        assert!(!nsec_proves(&n("b.example.test."), &zone, &all, false));
        let no_txt = NSEC::new_cover_self(n("d.example.test."), [RecordType::A]);
        assert!(nsec_proves(
            &n("b.example.test."),
            &zone,
            &[(n("b.example.test."), &no_txt)],
            false
        ));
    }

    #[test]
    fn base32hex_owner_labels() {
        let zone = n("example.test.");
        assert_eq!(
            owner_hash(&n("00000000000000000000000000000000.example.test."), &zone),
            Some(vec![0; 20])
        );
        assert_eq!(
            owner_hash(&n("vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv.example.test."), &zone),
            Some(vec![0xff; 20])
        );
        assert_eq!(owner_hash(&n("zz.example.test."), &zone), None);
        assert_eq!(owner_hash(&n("a.b.example.test."), &zone), None);
    }
}
