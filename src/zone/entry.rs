//! One name's prepared data, in one allocation.
//!
//! The query path looks a name up and copies its RRset; every pointer it follows on the way is a
//! likely cache miss at a million names. So a name's key, its RRsets and their glue live in one
//! reference-counted byte block, and the index stores only that block:
//!
//! ```text
//! key_len: u8 | key | block*
//! block = rtype: u16 | records_len: u16 | sigs_len: u16 | glue_len: u16 | ttl: u32
//!         | records | sigs | glue
//! glue  = (len: u8 | key)*
//! ```
//!
//! `records` and `sigs` (the RRset's RRSIGs) are in a [`WireRrset`]'s byte layout; blocks are
//! sorted by type. One TTL serves both: an RRSIG's TTL is that of the RRset it covers
//! (RFC 4034 §3). Record counts are not stored: writing the records counts them. With NSEC denial the name's NSEC RRset is one more block, so an answer with
//! DO=1 copies signatures and proofs from here the same way as the data.

use hickory_proto::rr::RecordType;

use triomphe::ThinArc;

use super::ZoneError;
use super::snapshot::NameKey;
use super::wire::{Apex, Owner, Records, WireRrset, write_records};

const BLOCK_HEADER: usize = 12;

/// An RRset, its signatures and its glue, to be put into a [`NameEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsetEntry {
    pub rrset: WireRrset,
    /// The RRSIG RRset covering it.
    pub sigs: Option<WireRrset>,
    /// Names whose A and AAAA RRsets go into the additional section with this RRset: the
    /// in-zone targets of NS and MX records (RFC 1035 §3.3.9, §3.3.11).
    pub glue: Vec<NameKey>,
}

/// Everything at one name. A name without RRsets is an empty non-terminal.
///
/// A thin pointer (triomphe's `ThinArc` keeps the length in the allocation): the name index
/// holds a million of these in hash tables about half full, where each byte of the pointer
/// costs two.
#[derive(Clone, PartialEq, Eq)]
pub struct NameEntry(ThinArc<(), u8>);

impl std::fmt::Debug for NameEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NameEntry").field(&self.bytes()).finish()
    }
}

/// An entry's bytes as a thin shared allocation.
fn thin(bytes: Vec<u8>) -> ThinArc<(), u8> {
    ThinArc::from_header_and_slice((), &bytes)
}

impl NameEntry {
    /// Encodes `key` and `rrsets` (in any order).
    pub fn new(key: &[u8], rrsets: &[RrsetEntry]) -> Result<Self, ZoneError> {
        let mut sorted: Vec<&RrsetEntry> = rrsets.iter().collect();
        sorted.sort_by_key(|e| u16::from(e.rrset.rtype()));
        let size = rrsets
            .iter()
            .map(|e| {
                BLOCK_HEADER
                    + e.rrset.bytes().len()
                    + e.sigs.as_ref().map_or(0, |s| s.bytes().len())
                    + e.glue.iter().map(|g| 1 + g.len()).sum::<usize>()
            })
            .sum();
        let mut out = start(key, size)?;
        for e in sorted {
            let mut glue = Vec::new();
            for g in &e.glue {
                glue.push(g.len() as u8);
                glue.extend_from_slice(g);
            }
            let block = Block::of(&e.rrset, e.sigs.as_ref(), &glue)?;
            push_block(&mut out, &block)?;
        }
        Ok(Self(thin(out)))
    }

    /// A copy with `rrset` and its `sigs` replacing the RRset of its type (keeping that RRset's
    /// glue), or added without glue.
    pub fn with_rrset(
        &self,
        rrset: &WireRrset,
        sigs: Option<&WireRrset>,
    ) -> Result<Self, ZoneError> {
        let glue = self.rrset(rrset.rtype()).map_or(&[][..], |r| r.block.glue);
        let new = Block::of(rrset, sigs, glue)?;
        let mut out = start(self.key(), self.bytes().len() + 256)?;
        let mut placed = false;
        for b in self.rrsets() {
            if !placed && b.block.rtype >= new.rtype {
                push_block(&mut out, &new)?;
                placed = true;
            }
            if b.block.rtype != new.rtype {
                push_block(&mut out, &b.block)?;
            }
        }
        if !placed {
            push_block(&mut out, &new)?;
        }
        Ok(Self(thin(out)))
    }

    /// A copy without the RRset of `rtype`.
    pub fn without(&self, rtype: RecordType) -> Result<Self, ZoneError> {
        let rtype = u16::from(rtype);
        let mut out = start(self.key(), self.bytes().len() + 256)?;
        for b in self.rrsets().filter(|b| b.block.rtype != rtype) {
            push_block(&mut out, &b.block)?;
        }
        Ok(Self(thin(out)))
    }

    /// Whether `other` holds the same bytes; true without reading them when both are the
    /// same allocation, as an entry a publish did not touch is in every snapshot since.
    #[inline]
    pub fn same(&self, other: &NameEntry) -> bool {
        self.0.as_ptr() == other.0.as_ptr() || self.bytes() == other.bytes()
    }

    /// The name's key (see [`NameKey`]).
    #[inline]
    pub fn key(&self) -> &[u8] {
        let b = self.bytes();
        &b[1..1 + usize::from(b[0])]
    }

    /// The whole encoding: key length, key, blocks.
    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.0.slice
    }

    /// The RRsets, sorted by type.
    #[inline]
    pub fn rrsets(&self) -> Rrsets<'_> {
        let b = self.bytes();
        Rrsets(&b[1 + usize::from(b[0])..])
    }

    /// The RRset of `rtype`.
    #[inline]
    pub fn rrset(&self, rtype: RecordType) -> Option<RrsetRef<'_>> {
        let rtype = u16::from(rtype);
        self.rrsets().find(|r| r.block.rtype == rtype)
    }

    /// Whether the name has no RRsets: an empty non-terminal.
    pub fn is_empty(&self) -> bool {
        self.rrsets().next().is_none()
    }
}

/// The entry's first bytes, in a buffer with room for `blocks` more.
fn start(key: &[u8], blocks: usize) -> Result<Vec<u8>, ZoneError> {
    let len = u8::try_from(key.len()).map_err(|_| ZoneError::NameTooLong)?;
    let mut out = Vec::with_capacity(1 + key.len() + blocks);
    out.push(len);
    out.extend_from_slice(key);
    Ok(out)
}

/// One block's fields, borrowed.
#[derive(Debug, Clone, Copy)]
struct Block<'a> {
    rtype: u16,
    ttl: u32,
    records: &'a [u8],
    sigs: &'a [u8],
    glue: &'a [u8],
}

impl<'a> Block<'a> {
    fn of(
        rrset: &'a WireRrset,
        sigs: Option<&'a WireRrset>,
        glue: &'a [u8],
    ) -> Result<Self, ZoneError> {
        if let Some(s) = sigs
            && s.ttl() != rrset.ttl()
        {
            return Err(ZoneError::SigTtl(rrset.rtype()));
        }
        Ok(Self {
            rtype: u16::from(rrset.rtype()),
            ttl: rrset.ttl(),
            records: rrset.bytes(),
            sigs: sigs.map_or(&[], WireRrset::bytes),
            glue,
        })
    }
}

fn push_block(out: &mut Vec<u8>, b: &Block<'_>) -> Result<(), ZoneError> {
    let too_large = || ZoneError::TooLarge(RecordType::from(b.rtype));
    let len = |bytes: &[u8]| u16::try_from(bytes.len()).map_err(|_| too_large());
    let fields = [b.rtype, len(b.records)?, len(b.sigs)?, len(b.glue)?];
    for v in fields {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&b.ttl.to_be_bytes());
    out.extend_from_slice(b.records);
    out.extend_from_slice(b.sigs);
    out.extend_from_slice(b.glue);
    Ok(())
}

/// One RRset inside a [`NameEntry`].
#[derive(Debug, Clone, Copy)]
pub struct RrsetRef<'a> {
    block: Block<'a>,
}

impl<'a> RrsetRef<'a> {
    pub fn rtype(&self) -> RecordType {
        RecordType::from(self.block.rtype)
    }

    /// Appends the records, and with `dnssec` their RRSIGs, to `out` (see [`write_records`]);
    /// returns how many records were written.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, owner: Owner<'_>, apex: Apex<'_>, dnssec: bool) -> u16 {
        let n = write_records(self.records(), out, owner, apex);
        if dnssec {
            n + write_records(self.sigs(), out, owner, apex)
        } else {
            n
        }
    }

    /// The records.
    #[inline]
    pub fn records(&self) -> Records<'a> {
        Records {
            rtype: self.block.rtype,
            ttl: self.block.ttl,
            bytes: self.block.records,
        }
    }

    /// The RRSIG records; empty when unsigned.
    #[inline]
    pub fn sigs(&self) -> Records<'a> {
        Records {
            rtype: u16::from(RecordType::RRSIG),
            ttl: self.block.ttl,
            bytes: self.block.sigs,
        }
    }

    /// The keys of the names whose addresses are glue for this RRset.
    pub fn glue(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = self.block.glue;
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let (key, next) = tail.split_at(usize::from(len));
            rest = next;
            Some(key)
        })
    }
}

/// Iterator over the RRsets of a [`NameEntry`].
pub struct Rrsets<'a>(&'a [u8]);

impl<'a> Iterator for Rrsets<'a> {
    type Item = RrsetRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<RrsetRef<'a>> {
        let b = self.0;
        if b.len() < BLOCK_HEADER {
            return None;
        }
        let field = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let (records, rest) = b[BLOCK_HEADER..].split_at(usize::from(field(2)));
        let (sigs, rest) = rest.split_at(usize::from(field(4)));
        let (glue, rest) = rest.split_at(usize::from(field(6)));
        self.0 = rest;
        Some(RrsetRef {
            block: Block {
                rtype: field(0),
                ttl: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                records,
                sigs,
                glue,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    /// The apex pointer and name the tests write with.
    const Q: Apex<'static> = Apex {
        ptr: 0xC00C,
        wire: b"\x07example\x04test\x00",
    };
    use super::*;
    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::{Name, RData};

    fn apex() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    fn txt(s: &str) -> WireRrset {
        WireRrset::build(
            RecordType::TXT,
            60,
            [&RData::TXT(TXT::new(vec![s.into()]))],
            &apex(),
        )
        .unwrap()
    }

    /// A stand-in RRSIG RRset: its content does not matter to the layout.
    fn sig() -> WireRrset {
        WireRrset::from_rdata(RecordType::RRSIG, 60, [&b"not a real signature"[..]]).unwrap()
    }

    fn a() -> WireRrset {
        WireRrset::build(
            RecordType::A,
            60,
            [&RData::A(A::new(127, 0, 0, 1))],
            &apex(),
        )
        .unwrap()
    }

    #[test]
    fn round_trips_key_rrsets_sigs_and_glue() {
        let glue: Vec<NameKey> = vec![
            NameKey::from(&b"\x03ns1"[..]),
            NameKey::from(&b"\x03ns2"[..]),
        ];
        let e = NameEntry::new(
            b"\x02n1",
            &[
                RrsetEntry {
                    rrset: txt("x"),
                    sigs: Some(sig()),
                    glue: vec![],
                },
                RrsetEntry {
                    rrset: a(),
                    sigs: None,
                    glue: glue.clone(),
                },
            ],
        )
        .unwrap();
        assert_eq!(e.key(), b"\x02n1");
        let types: Vec<_> = e.rrsets().map(|r| r.rtype()).collect();
        assert_eq!(types, [RecordType::A, RecordType::TXT], "sorted by type");
        let a_set = e.rrset(RecordType::A).unwrap();
        assert_eq!(
            a_set.glue().collect::<Vec<_>>(),
            [&b"\x03ns1"[..], &b"\x03ns2"[..]]
        );
        assert!(a_set.sigs().is_empty());
        assert!(e.rrset(RecordType::MX).is_none());

        let t = e.rrset(RecordType::TXT).unwrap();
        let mut out = Vec::new();
        assert_eq!(t.write(&mut out, Owner::Question, Q, false), 1);
        let mut direct = Vec::new();
        txt("x").write(&mut direct, Owner::Question, Q);
        assert_eq!(out, direct);
        // With DNSSEC the RRSIG follows.
        out.clear();
        assert_eq!(t.write(&mut out, Owner::Question, Q, true), 2);
        sig().write(&mut direct, Owner::Question, Q);
        assert_eq!(out, direct);
        assert_eq!(t.sigs().bytes, sig().bytes());
    }

    #[test]
    fn with_rrset_replaces_or_adds_in_type_order_and_keeps_glue() {
        let e = NameEntry::new(
            b"",
            &[RrsetEntry {
                rrset: a(),
                sigs: None,
                glue: vec![NameKey::from(&b"\x01g"[..])],
            }],
        )
        .unwrap();
        let e2 = e.with_rrset(&txt("one"), None).unwrap();
        let e3 = e2.with_rrset(&txt("two"), Some(&sig())).unwrap();
        let types: Vec<_> = e3.rrsets().map(|r| r.rtype()).collect();
        assert_eq!(types, [RecordType::A, RecordType::TXT]);
        let mut out = Vec::new();
        e3.rrset(RecordType::TXT)
            .unwrap()
            .write(&mut out, Owner::Question, Q, false);
        assert!(out.ends_with(b"two"));
        // Re-signing the A RRset keeps its glue.
        let e4 = e3.with_rrset(&a(), Some(&sig())).unwrap();
        assert_eq!(e4.rrset(RecordType::A).unwrap().glue().count(), 1);
        assert_eq!(e4.rrset(RecordType::A).unwrap().sigs().bytes, sig().bytes());
        let e5 = e4.without(RecordType::TXT).unwrap();
        assert!(e5.rrset(RecordType::TXT).is_none());
        assert!(NameEntry::new(b"\x01b", &[]).unwrap().is_empty());
    }

    #[test]
    fn one_ttl_per_block_serves_the_rrset_and_its_rrsigs() {
        let long = WireRrset::build(
            RecordType::TXT,
            86_400,
            [&RData::TXT(TXT::new(vec!["x".into()]))],
            &apex(),
        )
        .unwrap();
        let long_sig = sig().with_ttl(86_400);
        let e = NameEntry::new(
            b"\x02n1",
            &[RrsetEntry {
                rrset: long.clone(),
                sigs: Some(long_sig.clone()),
                glue: vec![],
            }],
        )
        .unwrap();
        let t = e.rrset(RecordType::TXT).unwrap();
        assert_eq!((t.records().ttl, t.sigs().ttl), (86_400, 86_400));
        assert_eq!(t.records(), long.records());
        assert_eq!(t.sigs(), long_sig.records());
        // Every written record carries it: TYPE, CLASS, TTL follow the two-byte owner pointer.
        let mut out = Vec::new();
        t.write(&mut out, Owner::Question, Q, true);
        assert_eq!(&out[2..10], &[0, 16, 0, 1, 0, 1, 0x51, 0x80]);
        let sig_at = out.len() - (2 + 10 + b"not a real signature".len());
        assert_eq!(
            &out[sig_at + 2..sig_at + 10],
            &[0, 46, 0, 1, 0, 1, 0x51, 0x80]
        );
        // RRSIGs with another TTL than their RRset's are refused (RFC 4034 §3), in a new entry
        // and in a replaced RRset alike.
        let mismatched = RrsetEntry {
            rrset: long.clone(),
            sigs: Some(sig()),
            glue: vec![],
        };
        assert!(matches!(
            NameEntry::new(b"\x02n1", &[mismatched]),
            Err(ZoneError::SigTtl(RecordType::TXT))
        ));
        assert!(matches!(
            e.with_rrset(&long, Some(&sig())),
            Err(ZoneError::SigTtl(RecordType::TXT))
        ));
    }
}
