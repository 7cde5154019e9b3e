//! The floor: the cheapest DNS server that Herald's socket layer can make.
//!
//! It serves UDP through Herald's own loop (`herald::dns::udp::serve_with`: the same sockets,
//! `recvmmsg`/`sendmmsg` batches and buffers) and answers every query with one fixed answer of
//! [`ANSWER_LEN`] bytes, prepared at start, copying only the query's ID into it. No lookup, no
//! parsing beyond the ID. What it costs per query is what the kernel's UDP path and the loop
//! cost, so Herald's CPU per query divided by the floor's is what Herald's own code adds
//! (`deploy/bench/compare`, `FIXED=1`). Run through `deploy/bench/floor`.
//!
//! Usage: `floor ADDR` (for example `127.0.0.1:15353`); stops on SIGTERM or SIGINT.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use herald::dns::udp::{Responder, serve_with};

/// The answer's size: about what Herald sends for a signed node record (TXT + RRSIG, DO=1).
const ANSWER_LEN: usize = 250;

/// A NOERROR answer to `n1.nodes.xnode.test. TXT` with one TXT record, padded to [`ANSWER_LEN`]
/// bytes. Its ID is overwritten per query; dnsperf matches answers by ID only.
fn prepared_answer() -> Vec<u8> {
    let mut a = Vec::with_capacity(ANSWER_LEN);
    // Header: ID 0, QR AA, NOERROR; one question, one answer.
    a.extend_from_slice(&[0, 0, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0]);
    for label in ["n1", "nodes", "xnode", "test"] {
        a.push(label.len() as u8);
        a.extend_from_slice(label.as_bytes());
    }
    a.push(0);
    a.extend_from_slice(&[0, 16, 0, 1]); // TXT IN
    // The answer: the question's name (pointer to offset 12), TXT IN, TTL 60.
    a.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
    let rdlen = ANSWER_LEN - a.len() - 2;
    a.extend_from_slice(&(rdlen as u16).to_be_bytes());
    // One character-string filling the RDATA.
    a.push((rdlen - 1) as u8);
    a.resize(ANSWER_LEN, b'x');
    a
}

struct Fixed(Vec<u8>);

impl Responder for Fixed {
    type Batch<'a> = ();
    const NEEDS_PEER: bool = false;

    fn batch(&self) {}

    #[inline]
    fn respond(&self, _: &(), msg: &[u8], _: Option<SocketAddr>, out: &mut Vec<u8>) -> bool {
        if msg.len() < 12 {
            return false;
        }
        out.clear();
        out.extend_from_slice(&self.0);
        out[..2].copy_from_slice(&msg[..2]);
        true
    }
}

fn main() {
    let addr: SocketAddr = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(a)) => a,
        _ => {
            eprintln!("usage: floor ADDR   (for example 127.0.0.1:15353)");
            std::process::exit(2);
        }
    };
    let answer = prepared_answer();
    assert_eq!(answer.len(), ANSWER_LEN);
    // One socket per core that may run the process, as Herald binds them.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sockets: Vec<UdpSocket> = (0..cores)
        .map(|_| herald::dns::udp_socket(addr))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            eprintln!("floor: cannot bind {addr}: {e}");
            std::process::exit(1);
        });
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to a static atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
    let responder = Arc::new(Fixed(answer));
    let threads: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            let (responder, stop) = (responder.clone(), stop.clone());
            std::thread::spawn(move || serve_with(&socket, &*responder, &stop))
        })
        .collect();
    println!("floor: answering on {addr} with {ANSWER_LEN} bytes, {cores} socket(s)");
    while !STOPPED.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
}

static STOPPED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOPPED.store(true, Ordering::Relaxed);
}
