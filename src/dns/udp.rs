//! The UDP loop: receive, answer from the current snapshot, send.
//!
//! One OS thread per socket runs a blocking loop with buffers allocated once, so answering a
//! query allocates nothing and takes no lock (the snapshot is read through `arc_swap`). The read
//! timeout only serves shutdown: it lets the loop notice the stop flag when no queries arrive.
//!
//! On Linux the loop moves datagrams in batches: `recvmmsg` with `MSG_WAITFORONE` returns as
//! soon as one datagram is there, with up to [`BATCH`] if more are queued, and `sendmmsg` sends
//! the answers back in one call. Written by hand on `libc` because no maintained crate offers
//! these calls without allocating per batch, and this is the hottest loop of the server, where
//! a system call per datagram is most of the cost (README, "Performance").
//!
//! The loop is generic over a [`Responder`]: Herald's is [`Herald`], which answers from the
//! snapshot; the benchmarks' floor server (`deploy/bench/floor`) plugs in one that copies a
//! fixed answer, so both measure the same socket code.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::answer::{Deferred, Reply, Transport, handle_counted};
use super::shield::{Client, Shield};
use super::transfer::{Transfers, signed_query};
use super::update::not_implemented;
use crate::metrics::QueryCounters;
use crate::zone::{SharedZones, ZoneSet};

/// How often an idle loop checks for shutdown.
const STOP_POLL: Duration = Duration::from_millis(200);
/// Datagrams per system call.
pub const BATCH: usize = 32;

/// What the loop calls for each datagram.
pub trait Responder {
    /// What one batch of datagrams shares (Herald: the snapshot they are answered from).
    type Batch<'a>
    where
        Self: 'a;
    /// Called once per batch received, before its datagrams are answered.
    fn batch(&self) -> Self::Batch<'_>;
    /// Answers `msg` from `peer` into `out` (cleared or overwritten by the responder); `false`
    /// when nothing is to be sent now.
    fn respond(
        &self,
        batch: &Self::Batch<'_>,
        msg: &[u8],
        peer: Option<SocketAddr>,
        out: &mut Vec<u8>,
    ) -> bool;
    /// Whether the responder reads the peer's address; if not, the loop does not decode it.
    const NEEDS_PEER: bool = true;
}

/// Herald's responder: the query path over the zone snapshot, with the shield, and the cold
/// paths (UPDATE, TSIG) handed off.
struct Herald {
    zones: SharedZones,
    transfers: Arc<Transfers>,
    counters: Arc<QueryCounters>,
    shield: Arc<Shield>,
    /// The socket, shared with the UPDATE tasks, which answer from it.
    socket: Arc<UdpSocket>,
}

impl Responder for Herald {
    type Batch<'a> = arc_swap::Guard<Arc<ZoneSet>>;

    #[inline]
    fn batch(&self) -> Self::Batch<'_> {
        self.zones.load()
    }

    #[inline]
    fn respond(
        &self,
        zones: &Self::Batch<'_>,
        msg: &[u8],
        peer: Option<SocketAddr>,
        out: &mut Vec<u8>,
    ) -> bool {
        answer(
            zones,
            &self.transfers,
            msg,
            out,
            &self.socket,
            &self.counters,
            &self.shield,
            peer,
        )
    }
}

/// Serves `socket` with Herald's query path until `stop` is set.
pub fn serve(
    socket: UdpSocket,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    counters: Arc<QueryCounters>,
    shield: Arc<Shield>,
    stop: Arc<AtomicBool>,
) {
    let socket = Arc::new(socket);
    let herald = Herald {
        zones,
        transfers,
        counters,
        shield,
        socket: socket.clone(),
    };
    serve_with(&socket, &herald, &stop);
}

/// Serves `socket` with `responder` until `stop` is set.
pub fn serve_with<R: Responder>(socket: &UdpSocket, responder: &R, stop: &AtomicBool) {
    if let Err(e) = socket.set_read_timeout(Some(STOP_POLL)) {
        tracing::error!(error = %e, "cannot set the UDP read timeout; shutdown may wait for a query");
    }
    #[cfg(target_os = "linux")]
    batched::serve(socket, responder, stop);
    #[cfg(not(target_os = "linux"))]
    one_by_one(socket, responder, stop);
}

/// Answers one datagram from `peer` into `out`; `false` when nothing is to be sent now. An
/// UPDATE is answered later, from `socket`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn answer(
    zones: &ZoneSet,
    transfers: &Transfers,
    msg: &[u8],
    out: &mut Vec<u8>,
    socket: &Arc<UdpSocket>,
    counters: &QueryCounters,
    shield: &Shield,
    peer: Option<SocketAddr>,
) -> bool {
    let client = peer.map(|p| Client { shield, ip: p.ip() });
    match handle_counted(zones, msg, Transport::Udp, out, Some(counters), client) {
        Reply::Send => true,
        Reply::Drop => false,
        Reply::Defer(Deferred::Update) => match &transfers.updates {
            Some(updates) => {
                if let Some(peer) = peer {
                    updates.submit_udp(msg, socket, peer);
                }
                false
            }
            None => match not_implemented(msg) {
                Some(answer) => {
                    *out = answer;
                    true
                }
                None => false,
            },
        },
        // TSIG-signed: checked and signed on the cold path. (Transfers are deferred over TCP
        // only; over UDP they get REFUSED on the query path.)
        Reply::Defer(_) => signed_query(transfers, zones, msg, Transport::Udp, out),
    }
}

/// The portable loop: one `recv_from` and one `send_to` per datagram.
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn one_by_one<R: Responder>(socket: &UdpSocket, responder: &R, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if is_idle(&e) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let batch = responder.batch();
        if responder.respond(&batch, &buf[..len], Some(peer), &mut out)
            && let Err(e) = socket.send_to(&out, peer)
        {
            tracing::debug!(error = %e, %peer, "udp send failed");
        }
    }
}

fn is_idle(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

#[cfg(target_os = "linux")]
mod batched {
    use std::mem::{size_of, zeroed};
    use std::os::fd::AsRawFd;

    use super::*;

    /// Bytes read of one datagram. Queries are a few hundred bytes; a longer datagram is
    /// truncated by the kernel (`MSG_TRUNC`) and dropped unanswered, as a malformed one.
    const SLOT: usize = 4096;

    /// Buffers and headers, allocated once per thread. The headers hold raw pointers into the
    /// buffers, so they are rebuilt before every call rather than kept across moves.
    struct Batch {
        inbuf: Vec<u8>,
        outs: Vec<Vec<u8>>,
        addrs: Vec<libc::sockaddr_storage>,
        iov_in: Vec<libc::iovec>,
        hdr_in: Vec<libc::mmsghdr>,
        iov_out: Vec<libc::iovec>,
        hdr_out: Vec<libc::mmsghdr>,
    }

    /// The address the kernel wrote into `addr` (`len` bytes of it), for the cold path.
    fn peer_addr(addr: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
        let len = len as usize;
        match i32::from(addr.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, and it is that long.
                let a = unsafe {
                    &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let a = unsafe {
                    &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(
                    SocketAddrV6::new(
                        ip,
                        u16::from_be(a.sin6_port),
                        a.sin6_flowinfo,
                        a.sin6_scope_id,
                    )
                    .into(),
                )
            }
            _ => None,
        }
    }

    pub(super) fn serve<R: Responder>(socket: &UdpSocket, responder: &R, stop: &AtomicBool) {
        let fd = socket.as_raw_fd();
        // SAFETY: all-zero bytes are valid values of these plain C structs.
        let zeroed_hdr = || unsafe { zeroed::<libc::mmsghdr>() };
        let zeroed_iov = || libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut b = Batch {
            inbuf: vec![0u8; BATCH * SLOT],
            outs: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            // SAFETY: as above.
            addrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            iov_in: (0..BATCH).map(|_| zeroed_iov()).collect(),
            hdr_in: (0..BATCH).map(|_| zeroed_hdr()).collect(),
            iov_out: (0..BATCH).map(|_| zeroed_iov()).collect(),
            hdr_out: (0..BATCH).map(|_| zeroed_hdr()).collect(),
        };
        while !stop.load(Ordering::Relaxed) {
            for i in 0..BATCH {
                b.iov_in[i] = libc::iovec {
                    iov_base: b.inbuf[i * SLOT..].as_mut_ptr().cast(),
                    iov_len: SLOT,
                };
                let h = &mut b.hdr_in[i];
                h.msg_hdr.msg_name = (&raw mut b.addrs[i]).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &raw mut b.iov_in[i];
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
                h.msg_hdr.msg_flags = 0;
                h.msg_len = 0;
            }
            // SAFETY: every header points at live buffers of the lengths given, owned by `b`
            // and not touched until the call returns; the kernel writes at most those lengths.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    b.hdr_in.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if !is_idle(&e) {
                    tracing::debug!(error = %e, "udp receive failed");
                }
                continue;
            }
            let batch = responder.batch();
            let mut k = 0;
            for i in 0..n as usize {
                let h = &b.hdr_in[i];
                if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    continue;
                }
                let msg = &b.inbuf[i * SLOT..i * SLOT + h.msg_len as usize];
                let peer = if R::NEEDS_PEER {
                    peer_addr(&b.addrs[i], h.msg_hdr.msg_namelen)
                } else {
                    None
                };
                if !responder.respond(&batch, msg, peer, &mut b.outs[k]) {
                    continue;
                }
                b.iov_out[k] = libc::iovec {
                    iov_base: b.outs[k].as_mut_ptr().cast(),
                    iov_len: b.outs[k].len(),
                };
                let o = &mut b.hdr_out[k];
                o.msg_hdr.msg_name = (&raw mut b.addrs[i]).cast();
                o.msg_hdr.msg_namelen = h.msg_hdr.msg_namelen;
                o.msg_hdr.msg_iov = &raw mut b.iov_out[k];
                o.msg_hdr.msg_iovlen = 1;
                o.msg_hdr.msg_control = std::ptr::null_mut();
                o.msg_hdr.msg_controllen = 0;
                o.msg_hdr.msg_flags = 0;
                k += 1;
            }
            let mut sent = 0;
            while sent < k {
                // SAFETY: headers `sent..k` point at the answers in `b.outs` and the peer
                // addresses in `b.addrs`, all alive and unchanged during the call.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        b.hdr_out[sent..].as_mut_ptr(),
                        (k - sent) as libc::c_uint,
                        0,
                    )
                };
                if r > 0 {
                    sent += r as usize;
                } else {
                    // The first pending datagram could not be sent (an unreachable peer, say):
                    // skip it, as the one-by-one loop would.
                    let e = std::io::Error::last_os_error();
                    if e.kind() != ErrorKind::Interrupted {
                        tracing::debug!(error = %e, "udp send failed");
                        sent += 1;
                    }
                }
            }
        }
    }
}
