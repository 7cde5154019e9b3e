//! Prepared RRsets: wire format built once at publish time and copied into answers.
//!
//! The DNS query path must not encode records per query (DESIGN.md, "What follows for Herald"),
//! so every RRset is encoded here, when its data changes, into a compact form that the answer
//! writer only has to copy. Two things in a record depend on the query and are filled in at
//! answer time:
//!
//! - the owner name, which is either the question name (a pointer to offset 12) or a name of the
//!   zone written relative to the apex (the covering NSEC of a negative answer, glue, the SOA);
//! - pointers to the zone apex inside RDATA, whose offset depends on the question's length: the
//!   apex is always a suffix of the question name, at `12 + qname_len - apex_len`.
//!
//! Names in RDATA are compressed against the apex only for the RFC 1035 types that allow it
//! (RFC 3597 §4: NS, CNAME, SOA, PTR, MX), as NSD does; all other RDATA is encoded by
//! hickory-proto without compression.
//!
//! Layout of [`WireRrset::bytes`], one block per record:
//! `rdata_len: u16 | fixups: u8 | fixup offsets: u16 × fixups | rdata`, where `rdata` is the
//! RDATA as stored and each fixup offset (relative to it, ascending) marks either a two-byte
//! compression pointer to be set to the apex, or, with its top bit ([`SPLICE`]) set, the place
//! where the apex is inserted whole. The second kind is for the names that must not be
//! compressed and always end in the apex: an RRSIG's signer name (RFC 4034 §3.1.7) and an
//! NSEC's next name (§4.1.1). Leaving the apex out of the stored bytes saves its length twice
//! per node (the RRSIGs of its TXT and of its NSEC) and once more in its NSEC, 54 bytes a node
//! for a zone like `nodes.xnode.test`.
//!
//! TYPE, CLASS and TTL are the same for every record of an RRset (RFC 2181 §5.2; the class is
//! always IN here), so they are kept once beside the records ([`Records`]) and written in front
//! of each at answer time, with RDLENGTH: the stored length plus the apex once per splice. At a
//! million nodes, each with four records, that is 40 MB not stored.

use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::ZoneError;

/// Marks a fixup offset as "insert the apex here, uncompressed".
const SPLICE: u16 = 0x8000;

/// The owner name to write in front of each record of a [`WireRrset`].
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// The question name: a compression pointer to offset 12 (RFC 1035 §4.1.4).
    Question,
    /// A name in the zone: these lowercase wire-format labels, then a pointer to the apex.
    /// Empty for the apex itself.
    Relative(&'a [u8]),
}

/// One RRset in prepared wire form, without owner names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRrset {
    rtype: RecordType,
    ttl: u32,
    count: u16,
    bytes: Box<[u8]>,
}

/// The records of one RRset as stored: the TYPE and TTL they share, and their bytes in the
/// layout of the module documentation. Borrowed from a [`WireRrset`] or from a name's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Records<'a> {
    pub rtype: u16,
    pub ttl: u32,
    pub bytes: &'a [u8],
}

impl<'a> Records<'a> {
    /// No records (an unsigned RRset's signatures).
    pub const NONE: Records<'static> = Records {
        rtype: 0,
        ttl: 0,
        bytes: &[],
    };

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// See [`first_rdata`].
    pub fn first_rdata(&self) -> Option<&'a [u8]> {
        first_rdata(self.bytes)
    }

    /// See [`write_records`].
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, owner: Owner<'_>, apex: Apex<'_>) -> u16 {
        write_records(*self, out, owner, apex)
    }

    /// See [`records_uncompressed`].
    pub fn uncompressed(&self, owner: &[u8], apex: &[u8]) -> Vec<Vec<u8>> {
        records_uncompressed(*self, owner, apex)
    }
}

impl WireRrset {
    /// Encodes the records of one RRset (all of `rtype`, class IN, one TTL) of the zone `apex`.
    pub fn build<'r>(
        rtype: RecordType,
        ttl: u32,
        rdatas: impl IntoIterator<Item = &'r RData>,
        apex: &Name,
    ) -> Result<Self, ZoneError> {
        let mut bytes = Vec::new();
        let mut count: u16 = 0;
        let mut rdata_out = Vec::with_capacity(64);
        let mut fixups: Vec<u16> = Vec::new();
        for rdata in rdatas {
            rdata_out.clear();
            fixups.clear();
            encode_rdata(rdata, apex, &mut rdata_out, &mut fixups)?;
            let len = u16::try_from(rdata_out.len()).map_err(|_| ZoneError::TooLarge(rtype))?;
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.push(u8::try_from(fixups.len()).map_err(|_| ZoneError::TooManyNames)?);
            for f in &fixups {
                bytes.extend_from_slice(&f.to_be_bytes());
            }
            bytes.extend_from_slice(&rdata_out);
            count = count.checked_add(1).ok_or(ZoneError::TooLarge(rtype))?;
        }
        Ok(Self {
            rtype,
            ttl,
            count,
            bytes: bytes.into_boxed_slice(),
        })
    }

    /// Records whose RDATA is already in wire format and holds no compressible names, such as
    /// RRSIGs read back from the store, stored as given.
    pub fn from_rdata<'r>(
        rtype: RecordType,
        ttl: u32,
        rdatas: impl IntoIterator<Item = &'r [u8], IntoIter: Clone>,
    ) -> Result<Self, ZoneError> {
        Self::from_rdata_in(rtype, ttl, rdatas, &[])
    }

    /// Like [`WireRrset::from_rdata`], for RDATA of the zone whose apex is `apex` (lowercase
    /// wire format): an RRSIG's signer name and an NSEC's next name that end in the apex are
    /// stored without it (see [`SPLICE`]).
    pub fn from_rdata_in<'r>(
        rtype: RecordType,
        ttl: u32,
        rdatas: impl IntoIterator<Item = &'r [u8], IntoIter: Clone>,
        apex: &[u8],
    ) -> Result<Self, ZoneError> {
        let rdatas = rdatas.into_iter();
        // Sized exactly: `into_boxed_slice` would otherwise reallocate (this runs a few
        // million times at start).
        let stored = |r: &[u8]| match splice_at(rtype, r, apex) {
            Some(_) => 5 + r.len() - apex.len(),
            None => 3 + r.len(),
        };
        let mut bytes = Vec::with_capacity(rdatas.clone().map(stored).sum());
        let mut count: u16 = 0;
        for rdata in rdatas {
            u16::try_from(rdata.len()).map_err(|_| ZoneError::TooLarge(rtype))?;
            let at = splice_at(rtype, rdata, apex);
            let kept = rdata.len() - at.map_or(0, |_| apex.len());
            bytes.extend_from_slice(&(kept as u16).to_be_bytes());
            match at {
                Some(at) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(SPLICE | at as u16).to_be_bytes());
                }
                None => bytes.push(0),
            }
            match at {
                Some(at) => {
                    bytes.extend_from_slice(&rdata[..at]);
                    bytes.extend_from_slice(&rdata[at + apex.len()..]);
                }
                None => bytes.extend_from_slice(rdata),
            }
            count = count.checked_add(1).ok_or(ZoneError::TooLarge(rtype))?;
        }
        debug_assert_eq!(bytes.len(), bytes.capacity());
        Ok(Self {
            rtype,
            ttl,
            count,
            bytes: bytes.into_boxed_slice(),
        })
    }

    /// This RRset with its signer or next names stored without the apex, as
    /// [`WireRrset::from_rdata_in`] makes it. RRsets of other types, and records that already
    /// have fixups, are kept as they are.
    pub fn spliced(self, apex: &[u8]) -> Result<Self, ZoneError> {
        if !matches!(self.rtype, RecordType::RRSIG | RecordType::NSEC)
            || records(&self.bytes).any(|(fix, _)| !fix.is_empty())
        {
            return Ok(self);
        }
        let rdatas: Vec<&[u8]> = records(&self.bytes).map(|(_, rdata)| rdata).collect();
        Self::from_rdata_in(self.rtype, self.ttl, rdatas, apex)
    }

    /// A copy with every record's TTL set to `ttl`.
    pub fn with_ttl(&self, ttl: u32) -> Self {
        Self {
            ttl,
            ..self.clone()
        }
    }

    pub fn rtype(&self) -> RecordType {
        self.rtype
    }

    /// The TTL of every record.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The number of records.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Appends every record to `out` (see [`write_records`]) and returns the record count.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, owner: Owner<'_>, apex: Apex<'_>) -> u16 {
        self.records().write(out, owner, apex)
    }

    /// The records in the block layout described in the module documentation.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The records with their TYPE and TTL.
    pub fn records(&self) -> Records<'_> {
        Records {
            rtype: u16::from(self.rtype),
            ttl: self.ttl,
            bytes: &self.bytes,
        }
    }
}

/// The RDATA of the first record of `bytes` (the block layout above) as stored: compression
/// pointers unset and a spliced apex left out. Used to read an RRSIG's times (which come before
/// its signer name) or a TXT record back.
pub fn first_rdata(bytes: &[u8]) -> Option<&[u8]> {
    records(bytes).next().map(|(_, rdata)| rdata)
}

/// The RDATA of every record of `bytes`, as [`first_rdata`] gives the first.
pub fn all_rdata(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    records(bytes).map(|(_, rdata)| rdata)
}

/// The zone apex as the writers need it: `ptr`, the compression pointer (`0xC000 | offset`) to
/// the apex inside the message being written, and `wire`, the apex in lowercase wire format,
/// for the names that must be written whole.
#[derive(Debug, Clone, Copy)]
pub struct Apex<'a> {
    pub ptr: u16,
    pub wire: &'a [u8],
}

/// Appends `records` to `out`, each with `owner` as its owner name, the RRset's TYPE, CLASS IN
/// and TTL, its apex pointers set to `apex.ptr` and the apex spliced in whole where marked.
/// Returns how many records it wrote, so that no count needs to be stored beside them.
///
/// This is on the query path: it copies bytes and allocates nothing once `out` has grown to a
/// response's size.
#[inline]
pub fn write_records(
    records: Records<'_>,
    out: &mut Vec<u8>,
    owner: Owner<'_>,
    apex: Apex<'_>,
) -> u16 {
    let mut count = 0u16;
    let apex_ptr = apex.ptr.to_be_bytes();
    let [t0, t1] = records.rtype.to_be_bytes();
    let [c0, c1] = u16::from(DNSClass::IN).to_be_bytes();
    let [l0, l1, l2, l3] = records.ttl.to_be_bytes();
    for (fix, rdata) in self::records(records.bytes) {
        match owner {
            Owner::Question => out.extend_from_slice(&[0xC0, 0x0C]),
            Owner::Relative(labels) => {
                out.extend_from_slice(labels);
                out.extend_from_slice(&apex_ptr);
            }
        }
        let rdlen = rdata.len() + splices(fix) * apex.wire.len();
        let [r0, r1] = (rdlen as u16).to_be_bytes();
        out.extend_from_slice(&[t0, t1, c0, c1, l0, l1, l2, l3, r0, r1]);
        count += 1;
        if fix.is_empty() {
            out.extend_from_slice(rdata);
            continue;
        }
        let mut at = 0;
        for f in fix.chunks_exact(2) {
            let f = u16::from_be_bytes([f[0], f[1]]);
            let pos = usize::from(f & !SPLICE);
            out.extend_from_slice(&rdata[at..pos]);
            if f & SPLICE != 0 {
                out.extend_from_slice(apex.wire);
                at = pos;
            } else {
                out.extend_from_slice(&apex_ptr);
                at = pos + 2;
            }
        }
        out.extend_from_slice(&rdata[at..]);
    }
    count
}

/// The records of `bytes` (the block layout above), each as its fixup offsets (two bytes
/// each) and its stored RDATA.
#[inline]
fn records(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.len() < 3 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let nfix = usize::from(rest[2]);
        let (fix, rdata) = rest[3..].split_at(nfix * 2);
        let (rdata, next) = rdata.split_at(len);
        rest = next;
        Some((fix, rdata))
    })
}

/// How many of the fixups `fix` are splices.
#[inline]
fn splices(fix: &[u8]) -> usize {
    fix.chunks_exact(2)
        .filter(|f| u16::from_be_bytes([f[0], f[1]]) & SPLICE != 0)
        .count()
}

/// Renders `records` uncompressed, each as one complete RR: `owner` (a whole wire-format name)
/// and the record with every apex pointer and splice replaced by `apex` (the apex in wire
/// format), RDLENGTH adjusted. For the IXFR journal, whose RRs must not depend on a message
/// they are copied into.
pub fn records_uncompressed(records: Records<'_>, owner: &[u8], apex: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (fix, rdata) in self::records(records.bytes) {
        let nfix = fix.len() / 2;
        let mut rr = Vec::with_capacity(owner.len() + 10 + rdata.len() + nfix * apex.len());
        rr.extend_from_slice(owner);
        // Pointers grow by the apex's length less their own two bytes; splices by all of it.
        let spliced = splices(fix);
        let rdlen = rdata.len() + (nfix - spliced) * (apex.len() - 2) + spliced * apex.len();
        rr.extend_from_slice(&records.rtype.to_be_bytes());
        rr.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        rr.extend_from_slice(&records.ttl.to_be_bytes());
        rr.extend_from_slice(&(rdlen as u16).to_be_bytes());
        let mut at = 0;
        for f in fix.chunks_exact(2) {
            let f = u16::from_be_bytes([f[0], f[1]]);
            let pos = usize::from(f & !SPLICE);
            rr.extend_from_slice(&rdata[at..pos]);
            rr.extend_from_slice(apex);
            at = if f & SPLICE != 0 { pos } else { pos + 2 };
        }
        rr.extend_from_slice(&rdata[at..]);
        out.push(rr);
    }
    out
}

/// Where the apex starts in `rdata` when it is the end of the one name that is stored without
/// it: an RRSIG's signer name (after 18 fixed octets, RFC 4034 §3.1) or an NSEC's next name
/// (first, §4.1). Checked on label boundaries, so only the zone's own names match.
fn splice_at(rtype: RecordType, rdata: &[u8], apex: &[u8]) -> Option<usize> {
    let start = match rtype {
        RecordType::RRSIG => 18,
        RecordType::NSEC => 0,
        _ => return None,
    };
    if apex.is_empty() {
        return None;
    }
    let mut i = start;
    loop {
        if rdata.get(i..i + apex.len()) == Some(apex) {
            return Some(i);
        }
        let len = usize::from(*rdata.get(i)?);
        if len == 0 || len > 63 {
            return None;
        }
        i += 1 + len;
    }
}

/// Encodes one RDATA into `out`, compressing names against the apex where RFC 3597 §4 allows.
fn encode_rdata(
    rdata: &RData,
    apex: &Name,
    out: &mut Vec<u8>,
    fixups: &mut Vec<u16>,
) -> Result<(), ZoneError> {
    let mut name = |n: &Name, out: &mut Vec<u8>| write_name(n, apex, out, fixups);
    match rdata {
        RData::NS(ns) => name(&ns.0, out),
        RData::CNAME(cname) => name(&cname.0, out),
        RData::PTR(ptr) => name(&ptr.0, out),
        RData::MX(mx) => {
            out.extend_from_slice(&mx.preference.to_be_bytes());
            name(&mx.exchange, out);
        }
        RData::SOA(soa) => {
            name(&soa.mname, out);
            name(&soa.rname, out);
            for v in [
                soa.serial,
                soa.refresh as u32,
                soa.retry as u32,
                soa.expire as u32,
                soa.minimum,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        other => {
            let mut rdata = Vec::new();
            let mut encoder = BinEncoder::new(&mut rdata);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            other.emit(&mut encoder)?;
            out.extend_from_slice(&rdata);
        }
    }
    Ok(())
}

/// Writes `name`: relative labels plus a pointer to the apex when it is at or below the apex,
/// else the whole name uncompressed.
fn write_name(name: &Name, apex: &Name, out: &mut Vec<u8>, fixups: &mut Vec<u16>) {
    if apex.zone_of(name) {
        let relative = usize::from(name.num_labels() - apex.num_labels());
        for label in name.iter().take(relative) {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        // Offsets are relative to the RDATA, which starts at `out[0]`.
        fixups.push(out.len() as u16);
        out.extend_from_slice(&[0, 0]);
    } else {
        for label in name.iter() {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }
}

/// Lowercase wire-format labels of `name` relative to `apex` (empty for the apex).
pub fn relative_key(name: &Name, apex: &Name) -> Vec<u8> {
    let relative = usize::from(name.num_labels() - apex.num_labels());
    let mut key = Vec::with_capacity(name.len());
    for label in name.iter().take(relative) {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key
}

/// Lowercase wire format of a whole name, root label included.
pub fn name_wire(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{A, MX, NS, SOA, TXT};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// Builds a response the way the answer path does and lets hickory decode it.
    fn decode(qname: &str, rrset: &WireRrset, owner: Owner<'_>, apex: &Name) -> Message {
        let q = name(qname);
        let mut out = vec![0u8; 12];
        out[2] = 0x84; // QR, AA
        out[5] = 1; // QDCOUNT
        let wire = name_wire(&q);
        let apex_off = 12 + wire.len() - name_wire(apex).len();
        // Echo the question in its original case.
        for label in q.iter() {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
        out.extend_from_slice(&[0, 16, 0, 1]);
        let apex_wire = name_wire(apex);
        let apex = Apex {
            ptr: 0xC000 | apex_off as u16,
            wire: &apex_wire,
        };
        let n = rrset.write(&mut out, owner, apex);
        out[7] = n as u8;
        Message::from_vec(&out).expect("hickory decodes the prepared answer")
    }

    #[test]
    fn owner_can_be_the_question_or_relative() {
        let apex = name("example.test.");
        let txt = RData::TXT(TXT::new(vec!["hello".into()]));
        let rrset = WireRrset::build(RecordType::TXT, 60, [&txt], &apex).unwrap();
        let m = decode("N1.Example.Test.", &rrset, Owner::Question, &apex);
        assert_eq!(m.answers.len(), 1);
        // The owner echoes the question's case.
        assert_eq!(m.answers[0].name.to_ascii(), "N1.Example.Test.");
        assert_eq!(m.answers[0].ttl, 60);
        assert_eq!(m.answers[0].data, txt);

        let key = relative_key(&name("www.sub.example.test."), &apex);
        assert_eq!(key, b"\x03www\x03sub");
        let m = decode("x.example.test.", &rrset, Owner::Relative(&key), &apex);
        assert_eq!(m.answers[0].name, name("www.sub.example.test."));
        let m = decode("x.example.test.", &rrset, Owner::Relative(&[]), &apex);
        assert_eq!(m.answers[0].name, apex);
    }

    #[test]
    fn rdata_names_compress_against_the_apex_wherever_it_lands() {
        let apex = name("example.test.");
        let soa = RData::SOA(SOA::new(
            name("ns1.example.test."),
            name("hostmaster.example.org."),
            7,
            3600,
            900,
            1209600,
            60,
        ));
        let rrset = WireRrset::build(RecordType::SOA, 3600, [&soa], &apex).unwrap();
        for q in [
            "example.test.",
            "a.b.c.example.test.",
            "a-very-long-label-here.example.test.",
        ] {
            let m = decode(q, &rrset, Owner::Relative(&[]), &apex);
            assert_eq!(m.answers[0].data, soa, "for question {q}");
        }
        // Three bytes of length and fixup count, one fixup; mname compressed (3ns1 + pointer =
        // 6 bytes), rname outside the zone in full (24), five numbers (20); no TYPE, CLASS, TTL.
        assert_eq!(rrset.bytes.len(), 3 + 2 + 6 + 24 + 20);

        let mx = RData::MX(MX::new(10, name("mail.example.test.")));
        let ns1 = RData::NS(NS(name("ns1.example.test.")));
        let ns2 = RData::NS(NS(name("ns.other.test.")));
        let rrset = WireRrset::build(RecordType::NS, 3600, [&ns1, &ns2], &apex).unwrap();
        let m = decode("deep.er.example.test.", &rrset, Owner::Question, &apex);
        assert_eq!(
            m.answers.iter().map(|r| r.data.clone()).collect::<Vec<_>>(),
            [ns1, ns2]
        );
        let rrset = WireRrset::build(RecordType::MX, 300, [&mx], &apex).unwrap();
        assert_eq!(
            decode("example.test.", &rrset, Owner::Question, &apex).answers[0].data,
            mx
        );
    }

    #[test]
    fn uncompressed_records_decode_alone() {
        let apex = name("example.test.");
        let soa = RData::SOA(SOA::new(
            name("ns1.example.test."),
            name("h.example.org."),
            7,
            1,
            2,
            3,
            4,
        ));
        let rrset = WireRrset::build(RecordType::SOA, 3600, [&soa], &apex).unwrap();
        let rrs = records_uncompressed(rrset.records(), &name_wire(&apex), &name_wire(&apex));
        assert_eq!(rrs.len(), 1);
        let mut d = hickory_proto::serialize::binary::BinDecoder::new(&rrs[0]);
        let rec =
            <hickory_proto::rr::Record as hickory_proto::serialize::binary::BinDecodable>::read(
                &mut d,
            )
            .unwrap();
        assert_eq!((rec.name.clone(), rec.ttl, rec.data), (apex, 3600, soa));
    }

    #[test]
    fn other_rdata_is_uncompressed() {
        let apex = name("example.test.");
        let a = RData::A(A::new(192, 0, 2, 1));
        let b = RData::A(A::new(192, 0, 2, 2));
        let rrset = WireRrset::build(RecordType::A, 300, [&a, &b], &apex).unwrap();
        assert_eq!(rrset.count(), 2);
        let m = decode("ns1.example.test.", &rrset, Owner::Question, &apex);
        assert_eq!(m.answers.len(), 2);
        assert_eq!(m.answers[1].data, b);
    }

    #[test]
    fn signer_and_next_names_are_stored_without_the_apex_and_written_whole() {
        let apex = name("example.test.");
        let apex_wire = name_wire(&apex);
        // An RRSIG: 18 fixed octets, the signer name (the apex), a signature.
        let rrsig = [
            &[0u8, 16, 13, 3, 0, 0, 0, 60][..],
            &[7; 10],
            &apex_wire,
            &[9; 64],
        ]
        .concat();
        // An NSEC: the next name (n2 in the zone), then a type bitmap.
        let nsec = [&b"\x02n2"[..], &apex_wire, &[0, 6, 0, 0, 0x80, 0, 0, 3]].concat();
        for (rtype, rdata) in [(RecordType::RRSIG, &rrsig), (RecordType::NSEC, &nsec)] {
            let whole = WireRrset::from_rdata(rtype, 60, [&rdata[..]]).unwrap();
            let spliced = WireRrset::from_rdata_in(rtype, 60, [&rdata[..]], &apex_wire).unwrap();
            assert_eq!(
                whole.bytes().len() - spliced.bytes().len(),
                apex_wire.len() - 2,
                "{rtype}: the apex is left out, for a two-byte fixup"
            );
            assert_eq!(whole.clone().spliced(&apex_wire).unwrap(), spliced);
            for owner in [Owner::Question, Owner::Relative(b"\x02n1")] {
                let a = decode("n1.example.test.", &whole, owner, &apex);
                let b = decode("N1.EXAMPLE.test.", &spliced, owner, &apex);
                assert_eq!(a.answers, b.answers, "{rtype}");
            }
            let owner = [&b"\x02n1"[..], &apex_wire].concat();
            assert_eq!(
                records_uncompressed(spliced.records(), &owner, &apex_wire),
                records_uncompressed(whole.records(), &owner, &apex_wire),
            );
            assert_eq!(
                records_uncompressed(whole.records(), &owner, &apex_wire)[0],
                [
                    &owner[..],
                    &u16::from(rtype).to_be_bytes(),
                    &[0, 1, 0, 0, 0, 60],
                    &(rdata.len() as u16).to_be_bytes(),
                    rdata
                ]
                .concat()
            );
            // A TTL change keeps the splice.
            let short = spliced.with_ttl(5);
            assert_eq!(
                records_uncompressed(short.records(), &owner, &apex_wire)[0]
                    [owner.len() + 4..owner.len() + 8],
                [0, 0, 0, 5]
            );
        }
        // A name outside the zone, or a label that only ends like the apex, is stored whole.
        let other = name_wire(&name("example.org."));
        let foreign = [&[0u8; 18][..], &other, &[9; 64]].concat();
        let kept =
            WireRrset::from_rdata_in(RecordType::RRSIG, 60, [&foreign[..]], &apex_wire).unwrap();
        assert_eq!(
            kept,
            WireRrset::from_rdata(RecordType::RRSIG, 60, [&foreign[..]]).unwrap()
        );
        let inside_label = [
            &[0u8; 18][..],
            &[1 + apex_wire.len() as u8, b'x'],
            &apex_wire[..],
            &[0],
        ]
        .concat();
        let kept = WireRrset::from_rdata_in(RecordType::RRSIG, 60, [&inside_label[..]], &apex_wire)
            .unwrap();
        assert_eq!(
            kept,
            WireRrset::from_rdata(RecordType::RRSIG, 60, [&inside_label[..]]).unwrap()
        );
        // Other types are never spliced.
        let txt =
            WireRrset::from_rdata_in(RecordType::TXT, 60, [&apex_wire[..]], &apex_wire).unwrap();
        assert_eq!(
            txt,
            WireRrset::from_rdata(RecordType::TXT, 60, [&apex_wire[..]]).unwrap()
        );
    }
}
