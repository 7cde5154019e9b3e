//! Zone files: `zones/<zone>.zone`, RFC 1035 master files with the SOA, NS, glue and any static
//! records of a zone.
//!
//! hickory-proto parses the file; this module checks that the result is something Herald can
//! serve correctly and says exactly what is wrong when it is not. Herald owns the DNSSEC records
//! (it signs the zone itself) and serves a flat zone of nodes, so delegations, DNAME, wildcards
//! and DNSSEC records in the file are refused rather than served wrongly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::txt::Parser;
use ring::digest;

use super::ZoneError;
use crate::record::normalize_zone;

/// One RRset of the zone file.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticRrset {
    pub rtype: RecordType,
    /// The lowest TTL of the set's records (RFC 2181 §5.2 wants them equal).
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// A parsed and checked zone file.
#[derive(Debug, Clone)]
pub struct StaticZone {
    /// The zone in API form: lowercase, no trailing dot.
    pub name: String,
    /// The apex, lowercase and fully qualified.
    pub apex: Name,
    pub soa: SOA,
    pub soa_ttl: u32,
    /// Every RRset except the SOA, by lowercase owner name.
    pub rrsets: BTreeMap<Name, Vec<StaticRrset>>,
    /// SHA-256 over the records (with the SOA serial left out): tells the store whether the
    /// file's content changed since the last start.
    pub digest: [u8; 32],
    pub path: PathBuf,
}

/// Types that Herald generates itself and so refuses in a zone file.
const GENERATED: &[RecordType] = &[
    RecordType::DNSKEY,
    RecordType::RRSIG,
    RecordType::NSEC,
    RecordType::NSEC3,
    RecordType::NSEC3PARAM,
    RecordType::CDS,
    RecordType::CDNSKEY,
];

/// Loads every `*.zone` file of `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<StaticZone>, ZoneError> {
    let io = |cause| ZoneError::Io {
        path: dir.to_owned(),
        cause,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "zone") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(ZoneError::NoZones(dir.to_owned()));
    }
    let zones = paths
        .iter()
        .map(|p| load_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(zones)
}

/// Loads one zone file; the zone's name is the file name without `.zone`.
pub fn load_file(path: &Path) -> Result<StaticZone, ZoneError> {
    let invalid = |msg: String| ZoneError::Invalid {
        path: path.to_owned(),
        msg,
    };
    let file_name = |cause| ZoneError::FileName {
        path: path.to_owned(),
        cause,
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| file_name(None))?;
    let name = normalize_zone(stem).map_err(|e| file_name(Some(e)))?;
    let apex = Name::from_ascii(format!("{name}."))?.to_lowercase();
    let text = std::fs::read_to_string(path).map_err(|cause| ZoneError::Io {
        path: path.to_owned(),
        cause,
    })?;
    let (_origin, sets) = Parser::new(text, Some(path.to_owned()), Some(apex.clone()))
        .parse()
        .map_err(|cause| ZoneError::Parse {
            path: path.to_owned(),
            cause,
        })?;

    let mut soa = None;
    let mut rrsets: BTreeMap<Name, Vec<StaticRrset>> = BTreeMap::new();
    let mut lines = Vec::new();
    for (key, set) in sets {
        let owner = Name::from(key.name.clone()).to_lowercase();
        let rtype = key.record_type;
        let shown = owner.to_ascii();
        if !apex.zone_of(&owner) {
            return Err(invalid(format!(
                "{shown} {rtype} is outside the zone {apex}"
            )));
        }
        if GENERATED.contains(&rtype) {
            return Err(invalid(format!(
                "{shown} {rtype}: Herald signs the zone itself; remove DNSSEC records from the file"
            )));
        }
        if owner.is_wildcard() {
            return Err(invalid(format!(
                "{shown}: wildcard names are not supported"
            )));
        }
        match rtype {
            RecordType::DNAME => {
                return Err(invalid(format!("{shown} DNAME: DNAME is not supported")));
            }
            RecordType::NS if owner != apex => {
                return Err(invalid(format!(
                    "{shown} NS: delegations below the apex are not supported"
                )));
            }
            RecordType::SOA if owner != apex => {
                return Err(invalid(format!("{shown} SOA: the SOA belongs at the apex")));
            }
            _ => {}
        }
        let mut ttl = u32::MAX;
        let mut rdatas = Vec::new();
        for record in set.records_without_rrsigs() {
            if record.dns_class != DNSClass::IN {
                return Err(invalid(format!(
                    "{shown} {rtype}: class {} is not served, only IN",
                    record.dns_class
                )));
            }
            ttl = ttl.min(record.ttl);
            let mut data = record.data.clone();
            if let RData::SOA(s) = &mut data {
                // The serial is Herald's to manage; leave it out of the content digest.
                s.serial = 0;
            }
            lines.push(format!("{owner} {} {rtype} {data}", record.ttl));
            rdatas.push(record.data.clone());
        }
        if rdatas.is_empty() {
            continue;
        }
        if rtype == RecordType::SOA {
            let [RData::SOA(s)] = rdatas.as_slice() else {
                return Err(invalid("the zone must have exactly one SOA record".into()));
            };
            soa = Some((s.clone(), ttl));
            continue;
        }
        rrsets
            .entry(owner)
            .or_default()
            .push(StaticRrset { rtype, ttl, rdatas });
    }

    let (soa, soa_ttl) = soa.ok_or_else(|| invalid(format!("no SOA record at the apex {apex}")))?;
    if !rrsets
        .get(&apex)
        .is_some_and(|sets| sets.iter().any(|s| s.rtype == RecordType::NS))
    {
        return Err(invalid(format!("no NS records at the apex {apex}")));
    }
    for (owner, sets) in &rrsets {
        // RFC 1034 §3.6.2: a CNAME is the only data at its name; RFC 2181 §10.1: not at the apex.
        if sets.iter().any(|s| s.rtype == RecordType::CNAME) && (sets.len() > 1 || *owner == apex) {
            return Err(invalid(format!(
                "{owner} CNAME: a CNAME must be the only record at its name and not at the apex"
            )));
        }
    }

    lines.sort();
    let mut ctx = digest::Context::new(&digest::SHA256);
    for line in &lines {
        ctx.update(line.as_bytes());
        ctx.update(b"\n");
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(ctx.finish().as_ref());

    Ok(StaticZone {
        name,
        apex,
        soa,
        soa_ttl,
        rrsets,
        digest,
        path: path.to_owned(),
    })
}

impl StaticZone {
    /// Every name that exists in the zone file, including empty non-terminals (RFC 8020: a name
    /// with no records but with names below it exists, and answers NODATA, not NXDOMAIN).
    pub fn names(&self) -> BTreeSet<Name> {
        let mut names = BTreeSet::new();
        for owner in self.rrsets.keys() {
            let mut n = owner.clone();
            while n.num_labels() >= self.apex.num_labels() && names.insert(n.clone()) {
                if n == self.apex {
                    break;
                }
                n = n.base_name();
            }
        }
        names.insert(self.apex.clone());
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = "$TTL 3600
@       IN SOA ns1 hostmaster 2025112501 3600 900 1209600 60
        IN NS  ns1
ns1     IN A   127.0.0.1
a.b     IN TXT \"deep\"
www  300 IN CNAME ns1
";

    #[test]
    fn loads_a_zone_file() {
        let dir = tempfile::tempdir().unwrap();
        let z = load_file(&write(dir.path(), "Example.Test.zone", GOOD)).unwrap();
        assert_eq!(z.name, "example.test");
        assert_eq!(z.apex, Name::from_ascii("example.test.").unwrap());
        assert_eq!(z.soa.serial, 2025112501);
        assert_eq!(z.soa.minimum, 60);
        assert_eq!(z.soa_ttl, 3600);
        let www = &z.rrsets[&Name::from_ascii("www.example.test.").unwrap()];
        assert_eq!((www[0].rtype, www[0].ttl), (RecordType::CNAME, 300));
        let names: Vec<String> = z.names().iter().map(|n| n.to_ascii()).collect();
        // b.example.test exists as an empty non-terminal.
        for want in [
            "example.test.",
            "ns1.example.test.",
            "b.example.test.",
            "a.b.example.test.",
        ] {
            assert!(
                names.contains(&want.to_owned()),
                "{want} missing from {names:?}"
            );
        }
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn digest_ignores_the_serial_but_not_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_file(&write(dir.path(), "example.test.zone", GOOD)).unwrap();
        let bumped = GOOD.replace("2025112501", "2025112599");
        let b = load_file(&write(dir.path(), "example.test.zone", &bumped)).unwrap();
        assert_eq!(a.digest, b.digest);
        let changed = GOOD.replace("127.0.0.1", "127.0.0.2");
        let c = load_file(&write(dir.path(), "example.test.zone", &changed)).unwrap();
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("@ IN NS ns1\nns1 IN A 127.0.0.1\n", "no SOA"),
            ("@ IN SOA ns1 h 1 2 3 4 5\n", "no NS records"),
            ("sub IN NS ns.other.test.\n", "delegations"),
            ("* IN TXT \"x\"\n", "wildcard"),
            ("d IN DNAME other.test.\n", "DNAME"),
            // hickory's parser refuses DNSKEY itself; the file check covers the other DNSSEC types.
            ("@ IN DNSKEY 257 3 13 AAAA\n", "DNSKEY"),
            (
                "www IN CNAME ns1\nwww IN A 127.0.0.2\n",
                "CNAME must be the only",
            ),
            ("other.test. IN A 127.0.0.1\n", "outside the zone"),
            ("x IN A\n", "parse"),
        ];
        for (extra, want) in cases {
            let text = if want == "no SOA" || want == "no NS records" {
                format!("$TTL 60\n{extra}")
            } else {
                format!("{GOOD}{extra}")
            };
            let err = load_file(&write(dir.path(), "example.test.zone", &text)).unwrap_err();
            // The message and its cause (hickory's parser's, for a file it refuses itself).
            let cause = std::error::Error::source(&err).map(ToString::to_string);
            let err = format!("{err}: {}", cause.unwrap_or_default());
            assert!(
                err.contains(want) || (want == "parse" && err.contains("cannot parse")),
                "{extra:?}: {err}"
            );
            assert!(
                err.contains("example.test.zone"),
                "error names the file: {err}"
            );
        }
    }

    #[test]
    fn load_dir_needs_at_least_one_zone() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load_dir(dir.path()), Err(ZoneError::NoZones(_))));
        write(dir.path(), "example.test.zone", GOOD);
        write(dir.path(), "README", "not a zone");
        assert_eq!(load_dir(dir.path()).unwrap().len(), 1);
        assert!(matches!(
            load_dir(&dir.path().join("missing")),
            Err(ZoneError::Io { .. })
        ));
    }
}
