//! DNS over TCP (RFC 7766): two-byte length framing, queries answered in order on one
//! connection, and a table of connections that one client cannot fill ([`table`]: a share per
//! address and per prefix, the idlest evicted when full, transfers and UPDATEs in progress
//! kept, an idle timeout that shrinks as the table fills and bounds the reading of each
//! message and the writing of each answer; a transfer's messages have their own timeout).
//!
//! The framing is written here rather than taken from hickory-server's `Server`: its
//! `ResponseHandler` only sends `MessageResponse`s built from `Record`s, so serving prepared
//! bytes through it would mean decoding and re-encoding every answer. Reading two bytes and a
//! message is less code than that adapter, and UDP and TCP then share one answer function.
//! Zone transfers and TSIG-signed queries go to [`super::transfer`].

mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use table::{Conn, Table};
pub use table::{MAX_CONNECTIONS, PER_PREFIX};

use super::answer::{Deferred, Reply, Transport, handle_counted};
use super::shield::{Client, Shield};
use super::transfer::{Transfers, signed_query, transfer};
use super::update::not_implemented;
use crate::metrics::QueryCounters;
use crate::zone::SharedZones;

/// Accepts connections on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    counters: Arc<QueryCounters>,
    shield: Arc<Shield>,
    shutdown: CancellationToken,
) {
    let table = Arc::new(Table::default());
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // A secondary's address (one `--allow-transfer` admits) is outside the shares.
        let ip = peer.ip().to_canonical();
        let access = transfers.access.load();
        let trusted = access.allow.iter().any(|net| net.contains(&ip))
            || access
                .zone_allow
                .values()
                .flatten()
                .any(|net| net.contains(&ip));
        let Some(slot) = table.admit(peer.ip(), trusted) else {
            tracing::debug!(%peer, "tcp connections from this prefix at their cap; closing");
            continue;
        };
        let zones = zones.clone();
        let transfers = transfers.clone();
        let counters = counters.clone();
        let shield = shield.clone();
        let shutdown = shutdown.clone();
        let table = table.clone();
        tokio::spawn(async move {
            let conn = slot.conn.clone();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = conn.evicted.cancelled() => {
                    tracing::debug!(%peer, "tcp connection evicted: the idlest of a full table");
                }
                result = connection(stream, peer, zones, transfers, counters, &shield, &conn, &table) => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "tcp connection ended");
                    }
                }
            }
            drop(slot);
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    counters: Arc<QueryCounters>,
    shield: &Shield,
    conn: &Conn,
    table: &Table,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, writer) = stream.into_split();
    exchange(
        reader, writer, peer, zones, transfers, counters, shield, conn, table,
    )
    .await
}

/// One connection's byte streams, outside any table: what the fuzzer drives with bytes in
/// memory (`fuzz/`), through the same loop as a socket.
pub async fn serve_stream<R, W>(
    reader: R,
    writer: W,
    peer: SocketAddr,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    counters: Arc<QueryCounters>,
    shield: &Shield,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let table = Arc::new(Table::default());
    let slot = table
        .admit(peer.ip(), false)
        .expect("an empty table admits");
    let result = exchange(
        reader, writer, peer, zones, transfers, counters, shield, &slot.conn, &table,
    );
    result.await
}

/// Reads framed messages and writes framed answers until the peer closes, a timeout, or a
/// message after which nothing sensible follows.
#[allow(clippy::too_many_arguments)]
async fn exchange<R, W>(
    reader: R,
    mut writer: W,
    peer: SocketAddr,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    counters: Arc<QueryCounters>,
    shield: &Shield,
    conn: &Conn,
    table: &Table,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(reader);
    let mut msg = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
    let client = Client {
        shield,
        ip: peer.ip().to_canonical(),
    };
    loop {
        // Idle, and each message's reading, bounded by a timeout that shrinks as the table
        // fills (RFC 7766 §6.2.3): a length prefix that lies holds a slot only that long.
        let len = match tokio::time::timeout(table.idle_timeout(), reader.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            // Timeout or the peer closed: done.
            Ok(Err(_)) | Err(_) => return Ok(()),
        };
        tokio::time::timeout(table.idle_timeout(), reader.read_exact(&mut msg[..len]))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        conn.touch(table);
        let msg = &msg[..len];
        match handle_counted(
            &zones.load(),
            msg,
            Transport::Tcp,
            &mut out,
            Some(&counters),
            Some(client),
        ) {
            Reply::Send => {}
            // A response or garbage on a query connection: nothing sensible follows.
            Reply::Drop => return Ok(()),
            Reply::Defer(Deferred::Transfer) => {
                // The snapshot is held for the whole transfer: one consistent serial.
                let set = zones.load_full();
                // An IPv4 peer on an IPv6 socket is matched as IPv4 against --allow-transfer.
                // A transfer keeps its slot however full the table gets.
                conn.transferring(true);
                let sent =
                    transfer(&transfers, &set, msg, peer.ip().to_canonical(), &mut writer).await;
                conn.transferring(false);
                conn.touch(table);
                sent?;
                continue;
            }
            Reply::Defer(Deferred::Signed) => {
                if !signed_query(&transfers, &zones.load(), msg, Transport::Tcp, &mut out) {
                    return Ok(());
                }
            }
            Reply::Defer(Deferred::Update) => {
                // Not evicted while the writer applies it: the client gets its answer.
                conn.transferring(true);
                let answer = match &transfers.updates {
                    Some(updates) => updates.answer(msg, peer).await,
                    None => not_implemented(msg),
                };
                conn.transferring(false);
                conn.touch(table);
                let Some(answer) = answer else {
                    return Ok(());
                };
                out = answer;
            }
        }
        framed.clear();
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        // A client that reads slowly holds its slot no longer than an idle one would.
        tokio::time::timeout(table.idle_timeout(), writer.write_all(&framed))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    }
}
