//! Reading a query on the hot path.
//!
//! Written by hand, not with hickory-proto's `Message`, because decoding a whole message
//! allocates (names, record vectors) and this runs for every packet; the query path must allocate
//! nothing (DESIGN.md). It reads the header (RFC 1035 §4.1.1), the one question (§4.1.2) and the
//! additional section for the OPT record (RFC 6891 §6.1), and classifies everything else into the
//! RFC 8906 error answers. Records are skipped without being decoded.

/// Length of the DNS header.
pub const HEADER_LEN: usize = 12;

use super::cookie::{self, ClientCookie};

const OPCODE_QUERY: u8 = 0;
const TYPE_OPT: u16 = 41;
const TYPE_TSIG: u16 = 250;
/// IXFR (RFC 1995 §3): the one query type that carries a record in the authority section.
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;

/// Response codes used here (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 6891 §9).
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    /// A name exists that should not (RFC 2136 §2.2).
    pub const YXDOMAIN: u16 = 6;
    /// An RRset exists that should not.
    pub const YXRRSET: u16 = 7;
    /// An RRset that should exist does not.
    pub const NXRRSET: u16 = 8;
    /// Not authoritative; reused by TSIG for failed signatures (RFC 8945 §5.2).
    pub const NOTAUTH: u16 = 9;
    /// A name outside the zone of an UPDATE.
    pub const NOTZONE: u16 = 10;
    /// Extended: the upper 8 bits go in the OPT record.
    pub const BADVERS: u16 = 16;
}

/// The EDNS(0) parameters of a query (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The COOKIE option (RFC 7873), when the query carried one.
    pub cookie: Option<ClientCookie>,
}

/// A well-formed standard query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    pub id: u16,
    /// Header bytes 2 and 3 (QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE).
    pub flags: u16,
    /// QNAME QTYPE QCLASS exactly as sent, to echo in the response.
    pub question: &'a [u8],
    /// Length of QNAME in wire format, root label included.
    pub qname_len: usize,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    /// Whether the query carries a TSIG record (RFC 8945): it then takes the cold path that
    /// checks the signature and signs the answer.
    pub tsig: bool,
}

/// What to do with a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    Query(Query<'a>),
    /// Answer with `rcode` only (RFC 8906: every query gets an answer).
    Error {
        id: u16,
        flags: u16,
        rcode: u16,
        /// The question, when it could be read, to echo.
        question: Option<&'a [u8]>,
        edns: Option<Edns>,
    },
    /// No answer: shorter than a header, or itself a response (answering responses invites
    /// loops between servers).
    Drop,
}

/// Classifies `msg`.
pub fn parse(msg: &[u8]) -> Parsed<'_> {
    if msg.len() < HEADER_LEN {
        return Parsed::Drop;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & 0x8000 != 0 {
        return Parsed::Drop;
    }
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
    let opcode = ((flags >> 11) & 0xF) as u8;
    let error = |rcode, question, edns| Parsed::Error {
        id,
        flags,
        rcode,
        question,
        edns,
    };

    let question = if qdcount == 1 {
        read_question(msg)
    } else {
        None
    };
    // RFC 8906 §3.1.4: an unknown opcode gets NOTIMP, whatever else the message holds.
    if opcode != OPCODE_QUERY {
        return error(rcode::NOTIMP, question.map(|(q, _)| q), None);
    }
    let Some((question, qname_len)) = question else {
        return error(rcode::FORMERR, None, None);
    };
    let q = |i: usize| u16::from_be_bytes([question[qname_len + i], question[qname_len + i + 1]]);
    let qtype = q(0);
    // A query carries no answer or authority records, except IXFR's one SOA.
    let authority_ok = nscount == 0 || (nscount == 1 && qtype == TYPE_IXFR);
    if ancount != 0 || !authority_ok {
        return error(rcode::FORMERR, Some(question), None);
    }
    let (edns, tsig) = match read_additional(msg, HEADER_LEN + question.len(), nscount, arcount) {
        Ok(found) => found,
        Err(()) => return error(rcode::FORMERR, Some(question), None),
    };
    if let Some(e) = edns
        && e.version > 0
    {
        // RFC 6891 §6.1.3: BADVERS, answered with the highest version we do support (0).
        return error(rcode::BADVERS, Some(question), Some(e));
    }
    Parsed::Query(Query {
        id,
        flags,
        question,
        qname_len,
        qtype,
        qclass: q(2),
        edns,
        tsig,
    })
}

/// Reads the question at offset 12: an uncompressed name (a pointer cannot point anywhere
/// useful this early), then QTYPE and QCLASS. Returns the question's bytes and QNAME's length.
fn read_question(msg: &[u8]) -> Option<(&[u8], usize)> {
    let mut i = HEADER_LEN;
    loop {
        let len = usize::from(*msg.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        // 0x40 and 0x80 are extended label types, 0xC0 a pointer: none belong in a question.
        if len & 0xC0 != 0 {
            return None;
        }
        i += len + 1;
        // RFC 1035 §3.1: a name is at most 255 octets.
        if i - HEADER_LEN > 255 - 1 {
            return None;
        }
    }
    let qname_len = i - HEADER_LEN;
    let end = i + 4;
    (end <= msg.len()).then(|| (&msg[HEADER_LEN..end], qname_len))
}

/// Skips `nscount` records from `pos`, then walks `arcount` records and returns the OPT
/// record's parameters and whether a TSIG record is present. Errors on a truncated record, an
/// OPT not owned by the root, or a second OPT (RFC 6891 §6.1.1).
fn read_additional(
    msg: &[u8],
    mut pos: usize,
    nscount: u16,
    arcount: u16,
) -> Result<(Option<Edns>, bool), ()> {
    for _ in 0..nscount {
        pos = skip_name(msg, pos)?;
        let fixed = msg.get(pos..pos + 10).ok_or(())?;
        pos += 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    }
    if pos > msg.len() {
        return Err(());
    }
    let mut edns = None;
    let mut tsig = false;
    for _ in 0..arcount {
        let owner_is_root = *msg.get(pos).ok_or(())? == 0;
        pos = skip_name(msg, pos)?;
        let fixed = msg.get(pos..pos + 10).ok_or(())?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata = msg.get(pos + 10..pos + 10 + rdlen).ok_or(())?;
        if rtype == TYPE_OPT {
            if edns.is_some() || !owner_is_root {
                return Err(());
            }
            edns = Some(Edns {
                udp_size: u16::from_be_bytes([fixed[2], fixed[3]]),
                version: fixed[5],
                dnssec_ok: fixed[6] & 0x80 != 0,
                cookie: read_options(rdata)?,
            });
        }
        tsig |= rtype == TYPE_TSIG;
        pos += 10 + rdlen;
    }
    Ok((edns, tsig))
}

/// Skips a possibly compressed name; returns the offset after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, ()> {
    loop {
        let len = *msg.get(pos).ok_or(())?;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => pos += usize::from(len) + 1,
            0xC0 => {
                return if pos + 2 <= msg.len() {
                    Ok(pos + 2)
                } else {
                    Err(())
                };
            }
            _ => return Err(()),
        }
    }
}

/// EDNS options are code/length/value triples that must exactly fill the RDATA. The COOKIE
/// option is read; a malformed one, or two, make the query malformed (RFC 7873 §5.2.2). Other
/// options are ignored, as unknown options must be (RFC 6891 §6.1.2).
fn read_options(mut rdata: &[u8]) -> Result<Option<ClientCookie>, ()> {
    let mut cookie = None;
    while !rdata.is_empty() {
        if rdata.len() < 4 {
            return Err(());
        }
        let code = u16::from_be_bytes([rdata[0], rdata[1]]);
        let len = usize::from(u16::from_be_bytes([rdata[2], rdata[3]]));
        let value = rdata.get(4..4 + len).ok_or(())?;
        if code == cookie::OPTION_CODE {
            if cookie.is_some() {
                return Err(());
            }
            cookie = Some(ClientCookie::read(value).ok_or(())?);
        }
        rdata = &rdata[4 + len..];
    }
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n1.example.test TXT IN`, id 0x1234, RD set.
    fn query(extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(b"\x02n1\x07example\x04test\x00\x00\x10\x00\x01");
        m.extend_from_slice(extra);
        m
    }

    fn opt(size: u16, version: u8, do_bit: bool, options: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41];
        o.extend_from_slice(&size.to_be_bytes());
        o.extend_from_slice(&[0, version, if do_bit { 0x80 } else { 0 }, 0]);
        o.extend_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        o
    }

    fn rcode_of(p: Parsed<'_>) -> u16 {
        match p {
            Parsed::Error { rcode, .. } => rcode,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_plain_query() {
        let m = query(&[], 0);
        let Parsed::Query(q) = parse(&m) else {
            panic!()
        };
        assert_eq!((q.id, q.flags, q.qtype, q.qclass), (0x1234, 0x0100, 16, 1));
        assert_eq!(q.qname_len, 17);
        assert_eq!(q.question.len(), 21);
        assert_eq!(q.edns, None);
    }

    #[test]
    fn reads_edns_with_options() {
        // A cookie option, as dig sends.
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let m = query(&opt(4096, 0, true, &cookie), 1);
        let Parsed::Query(q) = parse(&m) else {
            panic!()
        };
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 0,
                dnssec_ok: true,
                cookie: ClientCookie::read(&[1, 2, 3, 4, 5, 6, 7, 8]),
            })
        );
        // Another option beside it is skipped.
        let both = [&[0, 8, 0, 4, 0, 1, 0, 0][..], &cookie].concat();
        let m = query(&opt(1232, 0, false, &both), 1);
        let Parsed::Query(q) = parse(&m) else {
            panic!()
        };
        assert_eq!(
            q.edns.unwrap().cookie.unwrap().client,
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn a_malformed_or_second_cookie_is_formerr() {
        // RFC 7873 §5.2.2: shorter than a client cookie, 9 to 15 bytes, longer than 40.
        for len in [0usize, 7, 9, 15, 41] {
            let mut option = vec![0, 10];
            option.extend_from_slice(&(len as u16).to_be_bytes());
            option.extend(std::iter::repeat_n(7, len));
            let m = query(&opt(1232, 0, false, &option), 1);
            assert_eq!(rcode_of(parse(&m)), rcode::FORMERR, "{len} bytes");
        }
        let one = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let m = query(&opt(1232, 0, false, &one.repeat(2)), 1);
        assert_eq!(rcode_of(parse(&m)), rcode::FORMERR, "two cookies");
    }

    #[test]
    fn classifies_bad_messages() {
        assert_eq!(parse(&[0; 11]), Parsed::Drop);
        let mut response = query(&[], 0);
        response[2] |= 0x80;
        assert_eq!(parse(&response), Parsed::Drop);

        let mut notify = query(&[], 0);
        notify[2] = 4 << 3; // opcode NOTIFY
        assert_eq!(rcode_of(parse(&notify)), rcode::NOTIMP);
        let mut two = query(&[], 0);
        two[5] = 2;
        assert_eq!(rcode_of(parse(&two)), rcode::FORMERR);
        let mut none = query(&[], 0);
        none[5] = 0;
        assert_eq!(rcode_of(parse(&none)), rcode::FORMERR);
        let mut answer = query(&[], 0);
        answer[7] = 1;
        assert_eq!(rcode_of(parse(&answer)), rcode::FORMERR);

        let short = query(&[], 0);
        assert_eq!(rcode_of(parse(&short[..short.len() - 1])), rcode::FORMERR);
        let mut pointer = query(&[], 0);
        pointer[12] = 0xC0;
        assert_eq!(rcode_of(parse(&pointer)), rcode::FORMERR);
        let mut long = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 16, 0, 1]);
        assert_eq!(rcode_of(parse(&long)), rcode::FORMERR);

        // OPT trouble: two of them, a non-root owner, options overrunning, truncated.
        let o = opt(1232, 0, false, &[]);
        assert_eq!(
            rcode_of(parse(&query(&[o.clone(), o.clone()].concat(), 2))),
            rcode::FORMERR
        );
        let mut named = vec![1, b'x'];
        named.extend_from_slice(&o);
        assert_eq!(rcode_of(parse(&query(&named, 1))), rcode::FORMERR);
        assert_eq!(
            rcode_of(parse(&query(&opt(1232, 0, false, &[0, 10, 0, 9, 1]), 1))),
            rcode::FORMERR
        );
        assert_eq!(
            rcode_of(parse(&query(&o[..o.len() - 1], 1))),
            rcode::FORMERR
        );
        assert_eq!(rcode_of(parse(&query(&[], 1))), rcode::FORMERR);

        let badvers = query(&opt(1232, 1, true, &[]), 1);
        let Parsed::Error {
            rcode,
            edns,
            question,
            ..
        } = parse(&badvers)
        else {
            panic!()
        };
        assert_eq!(rcode, rcode::BADVERS);
        assert_eq!(edns.unwrap().version, 1);
        assert!(question.is_some());
    }

    #[test]
    fn skips_other_additional_records() {
        // A TSIG-like record with a compressed owner name before the OPT.
        let mut extra = vec![0xC0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 2, 9, 9];
        extra.extend_from_slice(&opt(1400, 0, false, &[]));
        let m = query(&extra, 2);
        let Parsed::Query(q) = parse(&m) else {
            panic!()
        };
        assert_eq!(q.edns.unwrap().udp_size, 1400);
        assert!(q.tsig, "the TSIG record is noticed");
        let plain = query(&opt(1400, 0, false, &[]), 1);
        let Parsed::Query(q) = parse(&plain) else {
            panic!()
        };
        assert!(!q.tsig);
    }

    #[test]
    fn ixfr_carries_one_soa_in_authority() {
        let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
        m.extend_from_slice(b"\x07example\x04test\x00\x00\xfb\x00\x01");
        // The client's SOA: owner compressed to the question, 22 bytes of RDATA.
        m.extend_from_slice(&[0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22]);
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let Parsed::Query(q) = parse(&m) else {
            panic!("{:?}", parse(&m))
        };
        assert_eq!(q.qtype, TYPE_IXFR);
        // The same authority record on any other type is malformed, and so is a truncated one.
        let mut soa_query = m.clone();
        soa_query[12 + 14 + 1] = 6;
        assert_eq!(rcode_of(parse(&soa_query)), rcode::FORMERR);
        assert_eq!(rcode_of(parse(&m[..m.len() - 1])), rcode::FORMERR);
    }
}
