//! The cold path of the DNS server: zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995) and
//! TSIG-signed queries (RFC 8945).
//!
//! [`super::answer::handle`] defers these here. Speed matters less than on the query path, so
//! the request is decoded with hickory-proto's `Message` (for the TSIG record and IXFR's SOA),
//! and the access rules are checked:
//! - a request with a TSIG record must verify against a `--tsig-key`; otherwise the answer is
//!   NOTAUTH with the TSIG error (RFC 8945 §5.2), whatever the source address;
//! - a transfer is allowed to a valid TSIG signer whose key has no scope, or whose scope is the
//!   whole zone (a key scoped to some nodes may update them, not read the rest), or to an
//!   address inside an `--allow-transfer` prefix; anyone else gets REFUSED (RFC 5936 §6);
//! - an answer to a signed request is signed, every message of a transfer included
//!   (RFC 8945 §5.3).
//!
//! A transfer streams from one `Arc` of the zone's snapshot, taken when the request arrives:
//! publishes that land meanwhile swap in new snapshots without disturbing it, so the peer gets
//! one consistent serial (RFC 5936 §6). AXFR sends the SOA, every RRset with its RRSIGs, the
//! NSEC3 chain, and the SOA again. IXFR answers from the zone's journal: one SOA when the peer
//! is current, the difference sequences when the journal reaches back to the peer's serial,
//! and the whole zone otherwise (RFC 1995 §4).

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use hickory_proto::rr::RecordType;
use ipnet::IpNet;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::answer::{Transport, error_answer, respond, respond_reserving, truncated};
use super::message::{Parsed, TYPE_AXFR, TYPE_IXFR, parse, rcode};
use super::secondaries::{Secondaries, TransferKind};
use super::tsig::{RequestAuth, ResponseSigner, TsigKey, check_request};
use super::update::Updates;
use crate::record::{NodePattern, serial_gt, unix_now};
use crate::zone::chain::Chain;
use crate::zone::journal::{self, JournalEntry};
use crate::zone::snapshot::{ZoneSet, ZoneSnapshot};
use crate::zone::wire::{Apex, Owner, write_records};

/// A transfer message is sent once it holds this many bytes (a message may hold 64 KiB; BIND
/// and Knot send around 16 KiB so that one RRset never has to wait for a huge buffer).
const MESSAGE_TARGET: usize = 16 * 1024;
/// The compression pointer to the question name, which is the apex in a transfer.
const APEX_PTR: u16 = 0xC00C;

/// The apex as the record writers need it in a transfer message (see `APEX_PTR`).
fn apex_of(zone: &ZoneSnapshot) -> Apex<'_> {
    Apex {
        ptr: APEX_PTR,
        wire: &zone.apex_wire,
    }
}

/// [`Access`] as the sockets share it: read per request, replaced on a reload.
pub type SharedAccess = Arc<arc_swap::ArcSwap<Access>>;

/// Who may transfer zones, and the keys that sign.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `--allow-transfer` prefixes: every zone.
    pub allow: Vec<IpNet>,
    /// Prefixes allowed one zone only (a zone's own `allow-transfer` in the configuration
    /// file), by zone.
    pub zone_allow: std::collections::HashMap<String, Vec<IpNet>>,
    /// `--tsig-key` keys; a valid signature with any of them allows a transfer.
    pub keys: Vec<TsigKey>,
}

/// Everything the cold path needs, shared by the sockets.
#[derive(Debug, Default)]
pub struct Transfers {
    /// Swapped whole on a reload (SIGHUP); shared with the UPDATE intake.
    pub access: SharedAccess,
    pub secondaries: Arc<Secondaries>,
    /// RFC 2136 UPDATE intake; without it an UPDATE is answered NOTIMP.
    pub updates: Option<Updates>,
}

/// Answers a TSIG-signed query that is not a transfer (a secondary's SOA check, say): the
/// ordinary answer, signed; or NOTAUTH when the signature does not verify. Returns `false`
/// when nothing is to be sent.
pub fn signed_query(
    ctx: &Transfers,
    zones: &ZoneSet,
    msg: &[u8],
    transport: Transport,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let Ok(request) = Message::from_vec(msg) else {
        // hickory could not read it (a TSIG record not at the end, say): answer as unsigned.
        return respond(zones, msg, transport, out);
    };
    match authenticate(ctx, msg, &request) {
        RequestAuth::Unsigned => respond(zones, msg, transport, out),
        RequestAuth::Failed(failure) => {
            failure.answer(msg, out);
            true
        }
        RequestAuth::Signed { key, mac, id } => {
            // The answer and its TSIG record together must fit what the requester can take,
            // so the answer is made with room left for the record. RFC 8945 §5.3: an answer
            // that fits only without the record is sent truncated (TC) with RCODE 0, signed,
            // and the requester asks again over TCP. (One whose question and TSIG record alone
            // exceed the limit, with a key name of hundreds of octets, goes out as it is.)
            if !respond_reserving(zones, msg, transport, key.record_len(), out) {
                return false;
            }
            if truncated(out) {
                let mut whole = Vec::new();
                if respond(zones, msg, transport, &mut whole) && !truncated(&whole) {
                    out[3] &= 0xF0;
                }
            }
            let mut signer = ResponseSigner::new(key, mac, id);
            if let Err(e) = signer.sign(out) {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "cannot sign an answer"
                );
                return false;
            }
            true
        }
    }
}

fn authenticate(ctx: &Transfers, msg: &[u8], request: &Message) -> RequestAuth {
    let tsig = request.signature();
    check_request(
        &ctx.access.load().keys,
        msg,
        tsig.map(|r| &r.data),
        tsig.map(|r| &r.name),
        request.metadata.id,
    )
}

/// Serves one AXFR or IXFR request that arrived over TCP from `peer`, writing the framed
/// answer messages to `writer`.
pub async fn transfer<W: AsyncWrite + Unpin>(
    ctx: &Transfers,
    zones: &ZoneSet,
    msg: &[u8],
    peer: IpAddr,
    writer: &mut W,
) -> std::io::Result<()> {
    let Parsed::Query(q) = parse(msg) else {
        return Ok(());
    };
    let mut out = Vec::new();
    let request = match Message::from_vec(msg) {
        Ok(m) => m,
        Err(_) => {
            error_answer(msg, rcode::FORMERR, &mut out);
            return send(writer, &out).await;
        }
    };
    let mut qname = q.question[..q.qname_len].to_vec();
    qname.make_ascii_lowercase();
    let zone = zones.iter().find(|z| *z.apex_wire == *qname).cloned();
    let zone_name = zone.as_ref().map_or("", |z| &*z.name).to_owned();
    let kind = if q.qtype == TYPE_AXFR {
        TransferKind::Axfr
    } else {
        TransferKind::Ixfr
    };

    let signer = match authenticate(ctx, msg, &request) {
        RequestAuth::Failed(failure) => {
            tracing::info!(%peer, zone = %zone_name, kind = kind.as_str(), key = %failure.key_name, error = ?failure.error, "transfer refused: TSIG failed");
            ctx.secondaries.refused(&zone_name);
            failure.answer(msg, &mut out);
            return send(writer, &out).await;
        }
        RequestAuth::Signed { key, mac, id } => {
            let covered = key
                .scope
                .as_ref()
                .is_none_or(|scope| scope.zone == zone_name && scope.nodes == NodePattern::Any);
            let mut signer = ResponseSigner::new(key, mac, id);
            if !covered {
                // A key scoped to some nodes must not read the others, nor other zones.
                tracing::info!(%peer, zone = %zone_name, kind = kind.as_str(), "transfer refused: outside the key's scope");
                ctx.secondaries.refused(&zone_name);
                error_answer(msg, rcode::REFUSED, &mut out);
                if let Err(e) = signer.sign(&mut out) {
                    tracing::debug!(
                        error = &e as &dyn std::error::Error,
                        "cannot sign a refusal"
                    );
                }
                return send(writer, &out).await;
            }
            Some(signer)
        }
        RequestAuth::Unsigned => {
            let access = ctx.access.load();
            let zone_allow = access.zone_allow.get(&zone_name).into_iter().flatten();
            if !access
                .allow
                .iter()
                .chain(zone_allow)
                .any(|net| net.contains(&peer))
            {
                tracing::info!(%peer, zone = %zone_name, kind = kind.as_str(), "transfer refused: address not allowed and no TSIG");
                ctx.secondaries.refused(&zone_name);
                error_answer(msg, rcode::REFUSED, &mut out);
                return send(writer, &out).await;
            }
            None
        }
    };
    let mut stream = Stream {
        writer,
        id: q.id,
        question: q.question.to_vec(),
        signer,
        msg: Vec::with_capacity(MESSAGE_TARGET + 4096),
        count: 0,
        messages: 0,
    };
    let Some(zone) = zone.filter(|_| q.qclass == 1) else {
        // RFC 5936 §2.2.1: not authoritative for that zone.
        stream.start();
        stream.msg[3] = (stream.msg[3] & 0xF0) | rcode::NOTAUTH as u8;
        return stream.flush().await;
    };

    let current = zone.serial;
    let (what, served) = if q.qtype == TYPE_IXFR {
        match client_serial(&request) {
            Some(have) if !serial_gt(current, have) => {
                // RFC 1995 §2: the peer is current; one SOA says so.
                stream.start();
                stream.soa(&zone);
                stream.flush().await?;
                (TransferKind::Current, stream.messages)
            }
            Some(have) => match journal::path_from(&zone.journal, have, current) {
                Some(path) => {
                    stream.ixfr(&zone, &path).await?;
                    (TransferKind::Ixfr, stream.messages)
                }
                None => {
                    stream.axfr(&zone).await?;
                    (TransferKind::IxfrAxfr, stream.messages)
                }
            },
            None => {
                stream.axfr(&zone).await?;
                (TransferKind::IxfrAxfr, stream.messages)
            }
        }
    } else {
        stream.axfr(&zone).await?;
        (TransferKind::Axfr, stream.messages)
    };
    tracing::info!(%peer, zone = %zone.name, serial = current, kind = what.as_str(), messages = served, "transfer served");
    ctx.secondaries
        .transferred(&zone.name, peer, current, what, unix_now());
    Ok(())
}

/// The serial of the SOA an IXFR request carries in its authority section.
fn client_serial(request: &Message) -> Option<u32> {
    request.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if r.record_type() == RecordType::SOA => Some(soa.serial),
        _ => None,
    })
}

/// The answer messages of one transfer, built and sent one at a time.
struct Stream<'w, W> {
    writer: &'w mut W,
    id: u16,
    /// The question as asked; echoed in every message so that `APEX_PTR` points at the apex.
    question: Vec<u8>,
    signer: Option<ResponseSigner>,
    msg: Vec<u8>,
    count: u16,
    messages: usize,
}

impl<W: AsyncWrite + Unpin> Stream<'_, W> {
    /// Starts a message: header (QR, AA; RFC 5936 §2.2.1) and the question.
    fn start(&mut self) {
        self.msg.clear();
        self.msg.extend_from_slice(&self.id.to_be_bytes());
        self.msg
            .extend_from_slice(&[0x84, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        self.msg.extend_from_slice(&self.question);
        self.count = 0;
    }

    /// Signs and sends the message being built.
    async fn flush(&mut self) -> std::io::Result<()> {
        self.msg[6..8].copy_from_slice(&self.count.to_be_bytes());
        if let Some(signer) = &mut self.signer {
            signer.sign(&mut self.msg).map_err(std::io::Error::other)?;
        }
        self.messages += 1;
        send(self.writer, &self.msg).await
    }

    /// Sends the message if it is full and starts the next.
    async fn rotate(&mut self) -> std::io::Result<()> {
        if self.msg.len() >= MESSAGE_TARGET {
            self.flush().await?;
            self.start();
        }
        Ok(())
    }

    /// Appends the zone's SOA record (without its RRSIG).
    fn soa(&mut self, zone: &ZoneSnapshot) {
        if let Some(soa) = zone.lookup(&[]).and_then(|e| e.rrset(RecordType::SOA)) {
            let apex = apex_of(zone);
            self.count += soa.write(&mut self.msg, Owner::Relative(&[]), apex, false);
        }
    }

    /// Appends an uncompressed RR from the journal.
    fn raw(&mut self, rr: &[u8]) {
        self.msg.extend_from_slice(rr);
        self.count += 1;
    }

    /// The whole zone: SOA, every RRset and RRSIG, the NSEC3 records, SOA (RFC 5936 §2.2).
    async fn axfr(&mut self, zone: &ZoneSnapshot) -> std::io::Result<()> {
        self.start();
        self.soa(zone);
        let apex = apex_of(zone);
        for entry in zone.names_iter() {
            for set in entry.rrsets() {
                let owner = Owner::Relative(entry.key());
                if set.rtype() == RecordType::SOA {
                    self.count += write_records(set.sigs(), &mut self.msg, owner, apex);
                } else {
                    self.count += set.write(&mut self.msg, owner, apex, true);
                }
            }
            self.rotate().await?;
        }
        if let Chain::Nsec3(links) = &zone.chain {
            for (_, link) in links.iter() {
                let owner = Owner::Relative(&link.label);
                self.count += link.rrset.write(&mut self.msg, owner, apex);
                if let Some(sigs) = &link.sigs {
                    self.count += sigs.write(&mut self.msg, owner, apex);
                }
                self.rotate().await?;
            }
        }
        self.soa(zone);
        self.flush().await
    }

    /// The current SOA, each journal entry's difference sequence, the current SOA
    /// (RFC 1995 §4).
    async fn ixfr(
        &mut self,
        zone: &ZoneSnapshot,
        path: &[Arc<JournalEntry>],
    ) -> std::io::Result<()> {
        self.start();
        self.soa(zone);
        for entry in path {
            for rr in journal::split(&entry.diff) {
                self.raw(rr);
                self.rotate().await?;
            }
        }
        self.soa(zone);
        self.flush().await
    }
}

/// How long one message of a transfer (at most about 16 KB) may take to be taken by the peer.
/// A connection that serves a transfer is never evicted from the TCP table, so a peer that
/// stops reading must lose it this way (RFC 7766 §6.2.3).
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends one message with its TCP length prefix (RFC 1035 §4.2.2), within [`SEND_TIMEOUT`].
async fn send<W: AsyncWrite + Unpin>(writer: &mut W, msg: &[u8]) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    framed.extend_from_slice(msg);
    tokio::time::timeout(SEND_TIMEOUT, writer.write_all(&framed))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

#[cfg(test)]
mod tests;
