//! The UDP loop: receive, answer from the current snapshot, send.
//!
//! One OS thread per socket runs a blocking loop with buffers allocated once, so answering a
//! query allocates nothing and takes no lock (the snapshot is read through `arc_swap`). The read
//! timeout only serves shutdown: it lets the loop notice the stop flag when no queries arrive.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::answer::{Reply, Transport, handle};
use super::transfer::{Transfers, signed_query};
use crate::zone::SharedZones;

/// How often an idle loop checks for shutdown.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Serves `socket` until `stop` is set.
pub fn serve(
    socket: UdpSocket,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    stop: Arc<AtomicBool>,
) {
    if let Err(e) = socket.set_read_timeout(Some(STOP_POLL)) {
        tracing::error!(error = %e, "cannot set the UDP read timeout; shutdown may wait for a query");
    }
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let msg = &buf[..len];
        let zones = zones.load();
        let answer = match handle(&zones, msg, Transport::Udp, &mut out) {
            Reply::Send => true,
            Reply::Drop => false,
            // TSIG-signed: checked and signed on the cold path.
            Reply::Defer => signed_query(&transfers, &zones, msg, Transport::Udp, &mut out),
        };
        if answer && let Err(e) = socket.send_to(&out, peer) {
            tracing::debug!(error = %e, %peer, "udp send failed");
        }
    }
}
