//! Building a response from the snapshot: the lean query path.
//!
//! For a query this copies the header and question, looks the name up in the zone's map, and
//! appends prepared RRsets ([`WireRrset::write`](crate::zone::wire::WireRrset::write)): bytes
//! copied, a few pointers patched, nothing encoded and nothing allocated once `out` has grown. hickory-server's `Catalog` is not used:
//! its NXDOMAIN path scans the whole zone (DESIGN.md, "What the libraries give").
//!
//! Behaviour (RFC 1034 §4.3.2, RFC 2308, RFC 6891, RFC 8906):
//! - a name with the asked type: the RRset in the answer section, glue for NS/MX in additional;
//! - a name without it: NODATA, the SOA in authority; a missing name: NXDOMAIN, the SOA in
//!   authority, with TTL min(SOA TTL, MINIMUM) (RFC 2308 §3);
//! - with the DO bit (RFC 3225): every RRset with its RRSIGs, and negative answers with their
//!   NSEC or NSEC3 proofs (RFC 4035 §3.1.3, RFC 5155 §7.2; see [`super::denial`]);
//! - ANY: one RRset of the name (RFC 8482 §4.2);
//! - a CNAME answers every type at its name; it is not chased, the resolver follows it;
//! - names outside every zone, other classes, and zone transfers over UDP: REFUSED (transfers
//!   over TCP and TSIG-signed queries go to [`super::transfer`]);
//! - AA on every authoritative answer; RD and CD copied; the question echoed as asked.
//! - UDP answers fit the requester's EDNS size, at most 1232 bytes (512 without EDNS); an answer
//!   that does not fit loses its glue first, then is sent empty with TC set (RFC 2181 §9). The
//!   cold path can ask for room to be left for the TSIG record it appends
//!   ([`respond_reserving`], RFC 8945 §5.3).

use hickory_proto::rr::RecordType;

use super::cookie;
use super::denial;
use super::message::{Edns, Parsed, Query, TYPE_AXFR, TYPE_IXFR, parse, rcode};
use super::shield::{self, Client, Outcome};
use crate::metrics::QueryCounters;
use crate::zone::snapshot::{ZoneSet, ZoneSnapshot};
use crate::zone::wire::{Apex, Owner};

/// Largest UDP answer Herald sends: the DNS flag day 2020 value, which avoids IP fragmentation.
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Without EDNS a UDP answer is limited to 512 bytes (RFC 1035 §4.2.1).
const CLASSIC_UDP_PAYLOAD: u16 = 512;

const CLASS_IN: u16 = 1;
const TYPE_ANY: u16 = 255;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
/// RD and CD are copied from the query (RFC 1035 §4.1.1, RFC 4035 §3.2.2).
const COPIED_FLAGS: u16 = 0x0100 | 0x0010;
const OPT_LEN: usize = 11;

/// How the message arrived; decides the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the sockets do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Send `out`.
    Send,
    /// Send nothing.
    Drop,
    /// Hand the message to [`super::transfer`], the cold path, for the reason given. `out` is
    /// empty.
    Defer(Deferred),
}

/// Why a message was not answered on the query path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferred {
    /// A zone transfer (AXFR or IXFR) over TCP, signed or not: [`super::transfer::transfer`].
    Transfer,
    /// A TSIG-signed query: [`super::transfer::signed_query`] checks the signature and signs
    /// the answer.
    Signed,
    /// An RFC 2136 UPDATE: [`super::update`].
    Update,
}

/// The UPDATE opcode (RFC 2136 §1.3), in the header's third byte.
const OPCODE_UPDATE: u8 = 5;

/// The socket loops' entry: [`respond`], except that signed queries, UPDATEs and (over TCP)
/// zone transfers are deferred to the cold path rather than answered here.
#[inline]
pub fn handle(zones: &ZoneSet, msg: &[u8], transport: Transport, out: &mut Vec<u8>) -> Reply {
    handle_counted(zones, msg, transport, out, None, None)
}

/// [`handle`], counting each answer sent in `counters` (by transport, type, RCODE and DO;
/// size; truncation). Over UDP the block is the calling thread's own; over TCP it is shared.
/// Answers of the cold path (signed queries, transfers, UPDATE) are not counted here.
///
/// With a `client`, the abuse controls apply ([`shield`]): a query's cookie is answered, and
/// over UDP the rate limiter may drop the answer or send it truncated.
#[inline]
pub fn handle_counted(
    zones: &ZoneSet,
    msg: &[u8],
    transport: Transport,
    out: &mut Vec<u8>,
    counters: Option<&QueryCounters>,
    client: Option<Client<'_>>,
) -> Reply {
    out.clear();
    // A request (QR clear) with the UPDATE opcode: one byte tested on the query path.
    if msg.len() >= 12 && msg[2] & 0x80 == 0 && (msg[2] >> 3) & 0x0F == OPCODE_UPDATE {
        return Reply::Defer(Deferred::Update);
    }
    let parsed = parse(msg);
    let (qtype, edns, question_len) = match &parsed {
        Parsed::Query(q) => {
            if transport == Transport::Tcp && (q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR) {
                return Reply::Defer(Deferred::Transfer);
            }
            if q.tsig {
                return Reply::Defer(Deferred::Signed);
            }
            (q.qtype, q.edns, q.question.len())
        }
        Parsed::Error { edns, question, .. } => (0, *edns, question.map_or(0, <[u8]>::len)),
        Parsed::Drop => return Reply::Drop,
    };
    let dnssec_ok = edns.is_some_and(|e| e.dnssec_ok);
    // The clock is read only when a cookie or the limiter needs it.
    let mut now = None;
    let mut now = || *now.get_or_insert_with(shield::now);
    let cookie = match (client, edns.and_then(|e| e.cookie)) {
        (Some(c), Some(sent)) => Some(c.shield.cookies.check(&sent, c.ip, now())),
        _ => None,
    };
    let reserve = if cookie.is_some() {
        cookie::OPTION_LEN
    } else {
        0
    };
    if !reply(zones, parsed, transport, reserve, out) {
        return Reply::Drop;
    }
    if let Some(k) = &cookie {
        shield::append_cookie(out, &k.reply);
        if let Some(c) = counters {
            c.cookie(k.valid, transport == Transport::Tcp);
        }
    }
    if let Some(client) = client
        && transport == Transport::Udp
        && let Some(rrl) = &client.shield.rrl
        && !cookie.is_some_and(|c| c.valid)
    {
        let outcome = shield::limit(
            rrl,
            client.ip,
            now(),
            out,
            question_len,
            edns,
            cookie.as_ref(),
        );
        if let Some(c) = counters
            && outcome != Outcome::Sent
        {
            c.limited(outcome == Outcome::Dropped);
        }
        if outcome == Outcome::Dropped {
            return Reply::Drop;
        }
    }
    if let Some(c) = counters {
        match transport {
            Transport::Udp => c.record(0, qtype, dnssec_ok, out),
            Transport::Tcp => c.add(1, qtype, dnssec_ok, out),
        }
    }
    Reply::Send
}

/// Answers the message `msg`, writing the response into `out`. Returns `false` when nothing is
/// to be sent back. A TSIG record is not checked here, and zone transfers are REFUSED: see
/// [`handle`].
pub fn respond(zones: &ZoneSet, msg: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
    respond_reserving(zones, msg, transport, 0, out)
}

/// [`respond`], with the answer's size limit lowered by `reserve` bytes: room for a record
/// the caller appends afterwards (a TSIG record, RFC 8945 §5.3), so that the answer with it
/// still fits what the requester can take.
pub fn respond_reserving(
    zones: &ZoneSet,
    msg: &[u8],
    transport: Transport,
    reserve: usize,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    reply(zones, parse(msg), transport, reserve, out)
}

#[inline]
fn reply(
    zones: &ZoneSet,
    parsed: Parsed<'_>,
    transport: Transport,
    reserve: usize,
    out: &mut Vec<u8>,
) -> bool {
    match parsed {
        Parsed::Drop => false,
        Parsed::Error {
            id,
            flags,
            rcode,
            question,
            edns,
        } => {
            let opcode_bits = flags & 0x7800;
            header(
                out,
                id,
                FLAG_QR | opcode_bits | (flags & COPIED_FLAGS),
                rcode,
            );
            if let Some(q) = question {
                out.extend_from_slice(q);
                set_count(out, 4, 1);
            }
            if let Some(e) = edns {
                push_opt(out, e, rcode);
                set_count(out, 10, 1);
            }
            true
        }
        Parsed::Query(q) => {
            answer(zones, &q, transport, reserve, out);
            true
        }
    }
}

fn answer(zones: &ZoneSet, q: &Query<'_>, transport: Transport, reserve: usize, out: &mut Vec<u8>) {
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => usize::from(q.edns.map_or(CLASSIC_UDP_PAYLOAD, |e| {
            e.udp_size.clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
        })),
    }
    .saturating_sub(reserve);
    let dnssec = q.edns.is_some_and(|e| e.dnssec_ok);
    let flags = FLAG_QR | (q.flags & COPIED_FLAGS);
    header(out, q.id, flags, rcode::REFUSED);
    out.extend_from_slice(q.question);
    set_count(out, 4, 1);
    let question_end = out.len();

    // Names compare case-insensitively; label length octets are < 64 and so never change.
    let mut lower = [0u8; 255];
    let qname = &mut lower[..q.qname_len];
    qname.copy_from_slice(&q.question[..q.qname_len]);
    qname.make_ascii_lowercase();
    let qname = &*qname;

    let zone = match zones.find(qname) {
        Some(z) if q.qclass == CLASS_IN && q.qtype != TYPE_AXFR && q.qtype != TYPE_IXFR => z,
        _ => return finish(out, q.edns, rcode::REFUSED, question_end, limit, None),
    };
    let cut = q.qname_len - zone.apex_wire.len();
    let apex = Apex {
        ptr: 0xC000 | (12 + cut) as u16,
        wire: &zone.apex_wire,
    };
    set_flags(out, flags | FLAG_AA);
    let rel = &qname[..cut];

    let Some(entry) = zone.lookup(rel) else {
        let mut ns = negative_soa(zone, out, apex, dnssec);
        if dnssec {
            ns += denial::no_name(zone, qname, cut, out, apex);
        }
        set_count(out, 8, ns);
        return finish(out, q.edns, rcode::NXDOMAIN, question_end, limit, None);
    };
    let found = if q.qtype == TYPE_ANY {
        entry.rrsets().next()
    } else {
        let qtype = RecordType::from(q.qtype);
        entry
            .rrset(qtype)
            .or_else(|| entry.rrset(RecordType::CNAME))
    };
    let Some(found) = found else {
        let mut ns = negative_soa(zone, out, apex, dnssec);
        if dnssec {
            ns += denial::no_type(zone, entry, qname, cut, out, apex);
        }
        set_count(out, 8, ns);
        return finish(out, q.edns, rcode::NOERROR, question_end, limit, None);
    };
    let an = found.write(out, Owner::Question, apex, dnssec);
    set_count(out, 6, an);
    let before_glue = out.len();
    let mut ar = 0;
    for key in found.glue() {
        if let Some(target) = zone.lookup(key) {
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = target.rrset(t) {
                    ar += set.write(out, Owner::Relative(key), apex, dnssec);
                }
            }
        }
    }
    set_count(out, 10, ar);
    finish(
        out,
        q.edns,
        rcode::NOERROR,
        question_end,
        limit,
        Some(before_glue),
    );
}

/// The SOA of a negative answer (RFC 2308 §3), with its RRSIG when DNSSEC was asked for
/// (RFC 4035 §3.1.3); returns the record count.
fn negative_soa(zone: &ZoneSnapshot, out: &mut Vec<u8>, apex: Apex<'_>, dnssec: bool) -> u16 {
    let mut n = zone.negative_soa.write(out, Owner::Relative(&[]), apex);
    if dnssec && let Some(sigs) = &zone.negative_soa_sigs {
        n += sigs.write(out, Owner::Relative(&[]), apex);
    }
    n
}

/// Sets the RCODE, appends the OPT record and enforces the size limit: drop the additional
/// section if that is enough (`before_glue`), else send the question alone with TC.
fn finish(
    out: &mut Vec<u8>,
    edns: Option<Edns>,
    rcode: u16,
    question_end: usize,
    limit: usize,
    before_glue: Option<usize>,
) {
    let opt_len = if edns.is_some() { OPT_LEN } else { 0 };
    if out.len() + opt_len > limit {
        match before_glue {
            Some(at) if at + opt_len <= limit => {
                out.truncate(at);
                set_count(out, 10, 0);
            }
            _ => {
                out.truncate(question_end);
                for at in [6, 8, 10] {
                    set_count(out, at, 0);
                }
                let flags = u16::from_be_bytes([out[2], out[3]]);
                set_flags(out, flags | FLAG_TC);
            }
        }
    }
    out[3] = (out[3] & 0xF0) | (rcode & 0xF) as u8;
    if let Some(e) = edns {
        push_opt(out, e, rcode);
        let ar = u16::from_be_bytes([out[10], out[11]]);
        set_count(out, 10, ar + 1);
    }
}

/// Whether the answer in `out` has TC set.
pub fn truncated(out: &[u8]) -> bool {
    out.len() >= 4 && u16::from_be_bytes([out[2], out[3]]) & FLAG_TC != 0
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, rcode: u16) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(flags | (rcode & 0xF)).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
}

fn set_flags(out: &mut [u8], flags: u16) {
    let rcode = u16::from(out[3] & 0xF);
    out[2..4].copy_from_slice(&(flags | rcode).to_be_bytes());
}

fn set_count(out: &mut [u8], at: usize, n: u16) {
    out[at..at + 2].copy_from_slice(&n.to_be_bytes());
}

/// The response's OPT record (RFC 6891 §6.1.2): our payload size, the upper bits of an extended
/// RCODE, version 0, and the DO bit echoed (RFC 3225 §3).
pub(super) fn push_opt(out: &mut Vec<u8>, edns: Edns, rcode: u16) {
    out.push(0);
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
    out.push((rcode >> 4) as u8);
    out.push(0);
    out.push(if edns.dnssec_ok { 0x80 } else { 0 });
    out.push(0);
    out.extend_from_slice(&[0, 0]);
}

/// An answer with only `rcode` and the question (RD copied).
pub fn error_answer(msg: &[u8], rcode: u16, out: &mut Vec<u8>) {
    out.clear();
    let (id, flags, question) = match parse(msg) {
        Parsed::Query(q) => (q.id, q.flags, Some(q.question)),
        Parsed::Error {
            id,
            flags,
            question,
            ..
        } => (id, flags, question),
        Parsed::Drop => (0, 0, None),
    };
    out.extend_from_slice(&id.to_be_bytes());
    let flags = 0x8000 | (flags & 0x7900) | rcode;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(question.unwrap_or_default());
}

#[cfg(test)]
mod tests;
