//! The DNS server: sockets and the lean query path over prepared answers.
//!
//! - [`message`] reads queries by hand (header, question, OPT) without allocating;
//! - [`answer`] builds responses by copying prepared RRsets out of the snapshot, and [`denial`]
//!   picks the NSEC/NSEC3 proofs of negative answers;
//! - [`udp`] runs one blocking loop per UDP socket on its own thread, one socket per core
//!   (SO_REUSEPORT) and batched system calls;
//! - [`tcp`] serves RFC 7766 TCP on tokio;
//! - [`cookie`] answers and checks DNS cookies (RFC 7873, RFC 9018), [`rrl`] limits UDP
//!   answers per client prefix, and [`shield`] applies both to each answer;
//! - [`transfer`] is the cold path: AXFR and IXFR out, TSIG-signed queries ([`tsig`]);
//! - [`update`] takes RFC 2136 UPDATEs of node records off the query path and hands them to
//!   the single writer;
//! - [`notify`] sends NOTIFYs to secondaries, and [`secondaries`] keeps their health.
//!
//! Every DNS address is a UDP socket and a TCP listener on the same port. Sockets are bound
//! before anything is served ([`bind`]) so callers can bind port 0 and read the real port back.
//! Nothing here touches SQLite or signs: it reads the [`SharedZones`] snapshot, and UPDATE
//! hands its changes to the publisher.

pub mod answer;
pub mod cookie;
pub mod denial;
pub mod message;
pub mod notify;
pub mod report;
pub mod rrl;
pub mod secondaries;
pub mod shield;
pub mod tcp;
pub mod transfer;
pub mod tsig;
pub mod udp;
pub mod update;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::metrics::QueryStats;
use crate::zone::SharedZones;
use shield::Shield;
use transfer::Transfers;

/// Errors of the DNS layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DnsError {
    #[error("cannot bind dns {proto} on {addr}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot start a dns thread")]
    Thread(#[source] std::io::Error),
}

/// Bound but not yet serving sockets.
pub struct DnsSockets {
    /// Every UDP socket: one per core for each address.
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    /// One per requested address, with the real port.
    addrs: Vec<SocketAddr>,
}

impl DnsSockets {
    /// The bound addresses, one per requested address, with real ports.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }
}

/// The receive buffer each UDP socket asks for. The kernel's default (`net.core.rmem_default`,
/// 208 KiB on Debian) holds about 40 ms of queries at 50k QPS per socket; a UDP thread that
/// waits longer for its core (a publisher signing a batch beside it) has the kernel drop the
/// rest. 4 MiB, charged only while queries wait, rides out stalls twenty times as long; NSD
/// asks for 1 MiB by default (`so-rcvbuf`).
const UDP_RECV_BUFFER: usize = 4 << 20;

/// A UDP socket with SO_REUSEPORT, bound to `addr`: the kernel spreads datagrams over the
/// sockets of one port by a hash of the sender, so each core's thread reads its own queue.
pub fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    grow_recv_buffer(&socket, UDP_RECV_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Asks for a receive buffer of `bytes`. SO_RCVBUF is capped at `net.core.rmem_max`; with
/// CAP_NET_ADMIN, SO_RCVBUFFORCE is not. Failing both leaves the default, which works, only
/// with less room for bursts, so it is logged and not an error.
fn grow_recv_buffer(socket: &socket2::Socket, bytes: usize) {
    // The kernel doubles what it is asked for (its bookkeeping) and reports the doubled size.
    let enough = |s: &socket2::Socket| s.recv_buffer_size().is_ok_and(|n| n >= bytes);
    if socket.set_recv_buffer_size(bytes).is_ok() && enough(socket) {
        return;
    }
    let forced = {
        use std::os::fd::AsRawFd;
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: a valid socket descriptor, and a pointer to a c_int with its true length.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    };
    if !forced {
        tracing::debug!(
            wanted = bytes,
            got = socket.recv_buffer_size().unwrap_or(0),
            "UDP receive buffer capped by net.core.rmem_max"
        );
    }
}

/// Connections the kernel queues for the accept loop. std's 128 overflows under a burst of
/// connects (a flood, or many clients retrying at once), and an overflowed SYN waits a second
/// for its retransmit; the kernel caps this at `net.core.somaxconn`.
const TCP_BACKLOG: i32 = 1024;

/// A TCP listener bound to `addr`, with [`TCP_BACKLOG`] and SO_REUSEADDR (as std sets it).
fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

/// Binds UDP and TCP on every address: `udp_per_address` UDP sockets sharing the port (one per
/// core that may run Herald) and one TCP listener. With port 0, UDP picks the port and TCP
/// takes the same one, retrying with a new port if TCP finds it taken.
pub fn bind(addrs: &[SocketAddr]) -> Result<DnsSockets, DnsError> {
    let per_address = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut sockets = DnsSockets {
        udp: Vec::new(),
        tcp: Vec::new(),
        addrs: Vec::new(),
    };
    for &addr in addrs {
        let mut attempts = 0;
        let bind_err = |proto, cause| DnsError::Bind { proto, addr, cause };
        let (udp, tcp, bound) = loop {
            let udp = udp_socket(addr).map_err(|e| bind_err("udp", e))?;
            let bound = udp.local_addr().map_err(|e| bind_err("udp", e))?;
            match tcp_listener(bound) {
                Ok(tcp) => break (udp, tcp, bound),
                Err(e) if addr.port() == 0 && attempts < 20 => {
                    attempts += 1;
                    tracing::debug!(error = %e, port = bound.port(), "tcp port taken; picking another");
                }
                Err(e) => return Err(bind_err("tcp", e)),
            }
        };
        sockets.udp.push(udp);
        for _ in 1..per_address {
            sockets
                .udp
                .push(udp_socket(bound).map_err(|e| bind_err("udp", e))?);
        }
        sockets.tcp.push(tcp);
        sockets.addrs.push(bound);
    }
    Ok(sockets)
}

/// Running DNS service: UDP threads and TCP tasks.
pub struct DnsServer {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tcp: Vec<tokio::task::JoinHandle<()>>,
    health: Arc<DnsHealth>,
}

/// Whether every UDP loop is running, for `/healthz`.
#[derive(Debug, Default)]
pub struct DnsHealth {
    expected: AtomicUsize,
    running: AtomicUsize,
}

impl DnsHealth {
    pub fn is_up(&self) -> bool {
        let expected = self.expected.load(Ordering::Relaxed);
        expected > 0 && self.running.load(Ordering::Relaxed) == expected
    }
}

impl DnsServer {
    /// Starts serving. Must be called inside a tokio runtime (for TCP).
    pub fn start(
        sockets: DnsSockets,
        zones: SharedZones,
        transfers: Arc<Transfers>,
        stats: Arc<QueryStats>,
        shield: Arc<Shield>,
        shutdown: CancellationToken,
    ) -> Result<Self, DnsError> {
        let stop = Arc::new(AtomicBool::new(false));
        let health = Arc::new(DnsHealth::default());
        health.expected.store(sockets.udp.len(), Ordering::Relaxed);
        let mut threads = Vec::new();
        for socket in sockets.udp {
            let (zones, stop, health) = (zones.clone(), stop.clone(), health.clone());
            let transfers = transfers.clone();
            let shield = shield.clone();
            // Its own block of counters: only this thread writes it.
            let counters = stats.block();
            let name = format!(
                "herald-udp-{}",
                socket.local_addr().map(|a| a.port()).unwrap_or(0)
            );
            health.running.fetch_add(1, Ordering::Relaxed);
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    udp::serve(socket, zones, transfers, counters, shield, stop);
                    health.running.fetch_sub(1, Ordering::Relaxed);
                })
                .map_err(DnsError::Thread)?;
            threads.push(thread);
        }
        let mut tcp = Vec::new();
        for listener in sockets.tcp {
            listener.set_nonblocking(true).map_err(DnsError::Thread)?;
            let listener = tokio::net::TcpListener::from_std(listener).map_err(DnsError::Thread)?;
            tcp.push(tokio::spawn(tcp::serve(
                listener,
                zones.clone(),
                transfers.clone(),
                stats.block(),
                shield.clone(),
                shutdown.clone(),
            )));
        }
        Ok(Self {
            stop,
            threads,
            tcp,
            health,
        })
    }

    pub fn health(&self) -> Arc<DnsHealth> {
        self.health.clone()
    }

    /// Stops the UDP loops and waits for them and the TCP accept loops to finish. TCP tasks stop
    /// on the shutdown token given to [`DnsServer::start`].
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tcp {
            let _ = t.await;
        }
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UDP sockets ask for [`UDP_RECV_BUFFER`]: they get it when `net.core.rmem_max`
    /// allows it or the process may force it (root), and the cap otherwise, never less.
    #[test]
    fn udp_sockets_get_a_larger_receive_buffer() {
        let socket = socket2::Socket::from(udp_socket("127.0.0.1:0".parse().unwrap()).unwrap());
        let got = socket.recv_buffer_size().unwrap();
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok());
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match cap {
            Some(cap) if !root && cap < UDP_RECV_BUFFER => assert!(got >= cap, "{got} < {cap}"),
            // The kernel reports twice what was asked for (its bookkeeping).
            _ => assert!(got >= 2 * UDP_RECV_BUFFER, "{got}"),
        }
    }
}
