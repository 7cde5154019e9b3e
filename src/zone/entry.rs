//! One name's prepared data, in one allocation.
//!
//! The query path looks a name up and copies its RRset; every pointer it follows on the way is a
//! likely cache miss at a million names. So a name's key, its RRsets and their glue live in one
//! reference-counted byte block, and the index stores only that block:
//!
//! ```text
//! key_len: u8 | key | block*
//! block = rtype: u16 | count: u16 | records_len: u16 | glue_len: u16 | records | glue
//! glue  = (len: u8 | key)*
//! ```
//!
//! `records` is a [`WireRrset`]'s byte layout; blocks are sorted by type. With DNSSEC (issue 3)
//! a block gains the RRset's RRSIGs in the same record layout, and the name its NSEC as one more
//! block, so signed answers are copied from here the same way.

use std::sync::Arc;

use hickory_proto::rr::RecordType;

use super::ZoneError;
use super::snapshot::NameKey;
use super::wire::{Owner, WireRrset, write_records};

const BLOCK_HEADER: usize = 8;

/// An RRset and its glue, to be put into a [`NameEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsetEntry {
    pub rrset: WireRrset,
    /// Names whose A and AAAA RRsets go into the additional section with this RRset: the
    /// in-zone targets of NS and MX records (RFC 1035 §3.3.9, §3.3.11).
    pub glue: Vec<NameKey>,
}

/// Everything at one name. A name without RRsets is an empty non-terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry(Arc<[u8]>);

impl NameEntry {
    /// Encodes `key` and `rrsets` (in any order).
    pub fn new(key: &[u8], rrsets: &[RrsetEntry]) -> Result<Self, ZoneError> {
        let mut sorted: Vec<&RrsetEntry> = rrsets.iter().collect();
        sorted.sort_by_key(|e| u16::from(e.rrset.rtype()));
        let mut out = start(key)?;
        for e in sorted {
            let mut glue = Vec::new();
            for g in &e.glue {
                glue.push(g.len() as u8);
                glue.extend_from_slice(g);
            }
            push_block(
                &mut out,
                u16::from(e.rrset.rtype()),
                e.rrset.count(),
                e.rrset.bytes(),
                &glue,
            )?;
        }
        Ok(Self(out.into()))
    }

    /// A copy with `rrset` (no glue) replacing the RRset of its type, or added.
    pub fn with_rrset(&self, rrset: &WireRrset) -> Result<Self, ZoneError> {
        let rtype = u16::from(rrset.rtype());
        let mut out = start(self.key())?;
        let mut placed = false;
        for b in self.rrsets() {
            if !placed && b.rtype >= rtype {
                push_block(&mut out, rtype, rrset.count(), rrset.bytes(), &[])?;
                placed = true;
            }
            if b.rtype != rtype {
                push_block(&mut out, b.rtype, b.count, b.records, b.glue)?;
            }
        }
        if !placed {
            push_block(&mut out, rtype, rrset.count(), rrset.bytes(), &[])?;
        }
        Ok(Self(out.into()))
    }

    /// The name's key (see [`NameKey`]).
    #[inline]
    pub fn key(&self) -> &[u8] {
        let len = usize::from(self.0[0]);
        &self.0[1..1 + len]
    }

    /// The RRsets, sorted by type.
    #[inline]
    pub fn rrsets(&self) -> Rrsets<'_> {
        Rrsets(&self.0[1 + usize::from(self.0[0])..])
    }

    /// The RRset of `rtype`.
    #[inline]
    pub fn rrset(&self, rtype: RecordType) -> Option<RrsetRef<'_>> {
        let rtype = u16::from(rtype);
        self.rrsets().find(|r| r.rtype == rtype)
    }

    /// Whether the name has no RRsets: an empty non-terminal.
    pub fn is_empty(&self) -> bool {
        self.rrsets().next().is_none()
    }
}

fn start(key: &[u8]) -> Result<Vec<u8>, ZoneError> {
    let len = u8::try_from(key.len()).map_err(|_| ZoneError::Encode("name too long".into()))?;
    let mut out = Vec::with_capacity(1 + key.len() + 128);
    out.push(len);
    out.extend_from_slice(key);
    Ok(out)
}

fn push_block(
    out: &mut Vec<u8>,
    rtype: u16,
    count: u16,
    records: &[u8],
    glue: &[u8],
) -> Result<(), ZoneError> {
    let too_large = || ZoneError::Encode(format!("RRset of type {rtype} too large"));
    let records_len = u16::try_from(records.len()).map_err(|_| too_large())?;
    let glue_len = u16::try_from(glue.len()).map_err(|_| too_large())?;
    for v in [rtype, count, records_len, glue_len] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(records);
    out.extend_from_slice(glue);
    Ok(())
}

/// One RRset inside a [`NameEntry`].
#[derive(Debug, Clone, Copy)]
pub struct RrsetRef<'a> {
    rtype: u16,
    count: u16,
    records: &'a [u8],
    glue: &'a [u8],
}

impl<'a> RrsetRef<'a> {
    pub fn rtype(&self) -> RecordType {
        RecordType::from(self.rtype)
    }

    /// Appends the records to `out` (see [`write_records`]); returns how many.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, owner: Owner<'_>, apex_ptr: u16) -> u16 {
        write_records(self.records, out, owner, apex_ptr);
        self.count
    }

    /// The keys of the names whose addresses are glue for this RRset.
    pub fn glue(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = self.glue;
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
        let (records_len, glue_len) = (usize::from(field(4)), usize::from(field(6)));
        let (records, rest) = b[BLOCK_HEADER..].split_at(records_len);
        let (glue, rest) = rest.split_at(glue_len);
        self.0 = rest;
        Some(RrsetRef {
            rtype: field(0),
            count: field(2),
            records,
            glue,
        })
    }
}

#[cfg(test)]
mod tests {
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
    fn round_trips_key_rrsets_and_glue() {
        let glue: Vec<NameKey> = vec![
            NameKey::from(&b"\x03ns1"[..]),
            NameKey::from(&b"\x03ns2"[..]),
        ];
        let e = NameEntry::new(
            b"\x02n1",
            &[
                RrsetEntry {
                    rrset: txt("x"),
                    glue: vec![],
                },
                RrsetEntry {
                    rrset: a(),
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
        assert!(e.rrset(RecordType::MX).is_none());
        let mut out = Vec::new();
        assert_eq!(
            e.rrset(RecordType::TXT)
                .unwrap()
                .write(&mut out, Owner::Question, 0xC00C),
            1
        );
        let mut direct = Vec::new();
        txt("x").write(&mut direct, Owner::Question, 0xC00C);
        assert_eq!(out, direct);
    }

    #[test]
    fn with_rrset_replaces_or_adds_in_type_order() {
        let e = NameEntry::new(
            b"",
            &[RrsetEntry {
                rrset: a(),
                glue: vec![NameKey::from(&b"\x01g"[..])],
            }],
        )
        .unwrap();
        let e2 = e.with_rrset(&txt("one")).unwrap();
        let e3 = e2.with_rrset(&txt("two")).unwrap();
        let types: Vec<_> = e3.rrsets().map(|r| r.rtype()).collect();
        assert_eq!(types, [RecordType::A, RecordType::TXT]);
        let mut out = Vec::new();
        e3.rrset(RecordType::TXT)
            .unwrap()
            .write(&mut out, Owner::Question, 0xC00C);
        assert!(out.ends_with(b"two"));
        // The untouched RRset kept its glue.
        assert_eq!(e3.rrset(RecordType::A).unwrap().glue().count(), 1);
        assert!(NameEntry::new(b"\x01b", &[]).unwrap().is_empty());
    }
}
