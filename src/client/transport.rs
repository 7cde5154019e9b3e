//! One DNS exchange with one server: a UDP query, and TCP only when the answer comes back
//! truncated (RFC 7766 §5).
//!
//! The UDP socket is connected to the server, so the kernel drops datagrams from anyone else;
//! an answer must also carry the query's ID and question, or it is ignored (RFC 5452 §9.1).
//!
//! DNS cookies (RFC 7873): with a [`CookieJar`], a query with EDNS carries a COOKIE option —
//! a client cookie drawn at random for each server, and the server cookie that server last
//! gave. An answer whose COOKIE holds another client cookie is ignored like a forged one
//! (§5.3). BADCOOKIE, which a server under rate limiting may send instead of the answer, is
//! followed by one retry with the cookie it carried, then by TCP. A server that proves our
//! address by our cookie never rate-limits us (`crate::dns::rrl`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use thiserror::Error;

/// Why an exchange produced no answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot encode the query")]
    Encode(#[source] hickory_proto::ProtoError),
    #[error("{server}{}", if *tcp { " (tcp)" } else { "" })]
    Io {
        server: SocketAddr,
        tcp: bool,
        #[source]
        cause: std::io::Error,
    },
    #[error("{server} (tcp): malformed answer")]
    Malformed {
        server: SocketAddr,
        #[source]
        cause: hickory_proto::serialize::binary::DecodeError,
    },
    #[error("{server} (tcp): the answer does not match the query")]
    Mismatch { server: SocketAddr },
}

/// An answer and what it cost.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub response: Message,
    /// Bytes of DNS messages sent and received (UDP payloads, TCP messages with their length
    /// prefix).
    pub bytes_sent: usize,
    pub bytes_received: usize,
    /// Whether the answer came over TCP after a truncated UDP answer.
    pub tcp: bool,
}

/// The COOKIE option's code (RFC 7873 §4).
const COOKIE: u16 = 10;

/// The cookies of the servers asked: for each, our client cookie and its last server cookie.
/// Kept for as long as the client runs (`herald watch` keeps one for all its checks).
#[derive(Debug, Default)]
pub struct CookieJar {
    servers: Mutex<HashMap<SocketAddr, Held>>,
}

/// Our client cookie for one server, and the server cookie it gave last (empty: none yet).
type Held = ([u8; 8], Vec<u8>);

impl CookieJar {
    /// `query` with our cookie for `server` in its OPT record (a query without EDNS is left
    /// as it is).
    fn stamp(&self, server: SocketAddr, query: &Message) -> Message {
        let mut q = query.clone();
        if let Some(edns) = q.edns.as_mut() {
            let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
            let (client, server_cookie) = servers.entry(server).or_insert_with(|| {
                let mut client = [0u8; 8];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut client)
                    .expect("the system's random source works");
                (client, Vec::new())
            });
            let mut value = client.to_vec();
            value.extend_from_slice(server_cookie);
            let options = edns.options_mut();
            options.remove(EdnsCode::Cookie);
            options.insert(EdnsOption::Unknown(COOKIE, value));
        }
        q
    }

    /// Keeps the server cookie of `response` from `server`, if it answered our client cookie.
    fn learn(&self, server: SocketAddr, response: &Message) {
        let Some(value) = cookie_of(response) else {
            return;
        };
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((client, server_cookie)) = servers.get_mut(&server)
            && (16..=40).contains(&value.len())
            && value[..8] == client[..]
        {
            *server_cookie = value[8..].to_vec();
        }
    }

    /// The server cookie held for `server`, if any.
    pub fn server_cookie(&self, server: SocketAddr) -> Option<Vec<u8>> {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers
            .get(&server)
            .map(|(_, s)| s.clone())
            .filter(|s| !s.is_empty())
    }
}

fn cookie_of(m: &Message) -> Option<&[u8]> {
    match m.edns.as_ref()?.option(EdnsCode::Cookie)? {
        EdnsOption::Unknown(COOKIE, value) => Some(value),
        _ => None,
    }
}

/// Sends `query` to `server` and waits at most `timeout` for each transport.
pub fn exchange(
    server: SocketAddr,
    query: &Message,
    timeout: Duration,
) -> Result<Exchange, TransportError> {
    exchange_with(server, query, timeout, None)
}

/// [`exchange`], with the DNS cookies of `jar` when given.
pub fn exchange_with(
    server: SocketAddr,
    query: &Message,
    timeout: Duration,
    jar: Option<&CookieJar>,
) -> Result<Exchange, TransportError> {
    let stamp = |q: &Message| jar.map_or_else(|| q.clone(), |j| j.stamp(server, q));
    let (mut sent, mut received) = (0, 0);
    // At most two tries over UDP: the second after a BADCOOKIE, with its cookie.
    for attempt in 0..2 {
        let q = stamp(query);
        let wire = q.to_vec().map_err(TransportError::Encode)?;
        let (message, n) = exchange_udp(server, &wire, &q, timeout)?;
        sent += wire.len();
        received += n;
        if let Some(j) = jar {
            j.learn(server, &message);
        }
        let badcookie = message.metadata.response_code == ResponseCode::BADCOOKIE;
        if !badcookie && !message.metadata.truncation {
            return Ok(Exchange {
                response: message,
                bytes_sent: sent,
                bytes_received: received,
                tcp: false,
            });
        }
        if badcookie && attempt == 0 {
            continue;
        }
        break;
    }
    // Truncated, or BADCOOKIE twice: TCP, where no address can be forged (RFC 7873 §5.3).
    let q = stamp(query);
    let wire = q.to_vec().map_err(TransportError::Encode)?;
    let (message, tcp_sent, tcp_received) = exchange_tcp(server, &wire, &q, timeout)?;
    if let Some(j) = jar {
        j.learn(server, &message);
    }
    Ok(Exchange {
        response: message,
        bytes_sent: sent + tcp_sent,
        bytes_received: received + tcp_received,
        tcp: true,
    })
}

/// One query over TCP only, where no address can be forged (for answers that steer what the
/// server does, such as the parent's DS for `herald key roll --wait-ds`).
pub fn exchange_over_tcp(
    server: SocketAddr,
    query: &Message,
    timeout: Duration,
) -> Result<Message, TransportError> {
    let wire = query.to_vec().map_err(TransportError::Encode)?;
    exchange_tcp(server, &wire, query, timeout).map(|(message, _, _)| message)
}

/// One UDP query and the first datagram that answers it.
fn exchange_udp(
    server: SocketAddr,
    wire: &[u8],
    query: &Message,
    timeout: Duration,
) -> Result<(Message, usize), TransportError> {
    let net = |cause| TransportError::Io {
        server,
        tcp: false,
        cause,
    };
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(net)?;
    socket.connect(server).map_err(net)?;
    socket.send(wire).map_err(net)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TransportError::Timeout(timeout));
        }
        socket.set_read_timeout(Some(left)).map_err(net)?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(TransportError::Timeout(timeout));
            }
            Err(e) => return Err(net(e)),
        };
        if let Ok(m) = Message::from_vec(&buf[..n])
            && answers(query, &m)
        {
            return Ok((m, n));
        }
    }
}

fn exchange_tcp(
    server: SocketAddr,
    wire: &[u8],
    query: &Message,
    timeout: Duration,
) -> Result<(Message, usize, usize), TransportError> {
    let net = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            TransportError::Timeout(timeout)
        }
        _ => TransportError::Io {
            server,
            tcp: true,
            cause: e,
        },
    };
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(net)?;
    stream.set_read_timeout(Some(timeout)).map_err(net)?;
    stream.set_write_timeout(Some(timeout)).map_err(net)?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&(wire.len() as u16).to_be_bytes());
    framed.extend_from_slice(wire);
    stream.write_all(&framed).map_err(net)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).map_err(net)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).map_err(net)?;
    let message =
        Message::from_vec(&buf).map_err(|cause| TransportError::Malformed { server, cause })?;
    if !answers(query, &message) {
        return Err(TransportError::Mismatch { server });
    }
    Ok((message, framed.len(), buf.len() + 2))
}

/// Whether `m` is a response to `query`: same ID and same question, and, when both carry a
/// cookie, our client cookie (RFC 7873 §5.3).
fn answers(query: &Message, m: &Message) -> bool {
    let cookie_ok = match (cookie_of(query), cookie_of(m)) {
        (Some(ours), Some(theirs)) => {
            theirs.len() >= 8 && ours.len() >= 8 && theirs[..8] == ours[..8]
        }
        _ => true,
    };
    cookie_ok
        && m.metadata.message_type == hickory_proto::op::MessageType::Response
        && m.metadata.id == query.metadata.id
        && m.queries.len() == 1
        && query.queries.first().is_some_and(|q| {
            let a = &m.queries[0];
            a.name() == q.name()
                && a.query_type() == q.query_type()
                && a.query_class() == q.query_class()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::net::TcpListener;

    fn query() -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("n1.example.test.").unwrap(),
            RecordType::TXT,
        ));
        q
    }

    /// A server whose UDP answers are truncated and whose TCP answer is whole.
    fn truncating_server() -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, peer) = udp.recv_from(&mut buf).unwrap();
            let mut m = Message::from_vec(&buf[..n]).unwrap().into_response();
            // First a stray datagram with another ID, which must be ignored.
            let mut stray = m.clone();
            stray.metadata.id = stray.metadata.id.wrapping_add(1);
            udp.send_to(&stray.to_vec().unwrap(), peer).unwrap();
            m.metadata.truncation = true;
            udp.send_to(&m.to_vec().unwrap(), peer).unwrap();
            let (mut s, _) = tcp.accept().unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut q).unwrap();
            let mut full = Message::from_vec(&q).unwrap().into_response();
            full.add_answer(Record::from_rdata(
                Name::from_ascii("n1.example.test.").unwrap(),
                60,
                RData::TXT(TXT::new(vec!["x".repeat(200)])),
            ));
            let wire = full.to_vec().unwrap();
            s.write_all(&(wire.len() as u16).to_be_bytes()).unwrap();
            s.write_all(&wire).unwrap();
        });
        addr
    }

    #[test]
    fn falls_back_to_tcp_on_truncation() {
        let x = exchange(truncating_server(), &query(), Duration::from_secs(2)).unwrap();
        assert!(x.tcp);
        assert_eq!(x.response.answers.len(), 1);
        assert!(x.bytes_received > x.bytes_sent);
    }

    fn query_with_edns() -> Message {
        let mut q = query();
        q.set_edns(hickory_proto::op::Edns::new());
        q
    }

    /// The cookie a query carried, and a response to it carrying `cookie` and `rcode`.
    fn respond(wire: &[u8], cookie: Vec<u8>, rcode: ResponseCode) -> (Vec<u8>, Vec<u8>) {
        let q = Message::from_vec(wire).unwrap();
        let sent = cookie_of(&q).expect("the query carries a cookie").to_vec();
        let mut m = q.into_response();
        m.metadata.response_code = rcode;
        let mut edns = hickory_proto::op::Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Unknown(COOKIE, cookie));
        m.set_edns(edns);
        (sent, m.to_vec().unwrap())
    }

    /// A server that answers the first query with BADCOOKIE and a server cookie, and expects
    /// the second to carry it. Before each real answer it sends one with another client's
    /// cookie, which must be ignored.
    #[test]
    fn badcookie_is_retried_with_the_new_cookie_and_forged_cookies_are_ignored() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut seen = Vec::new();
            for rcode in [ResponseCode::BADCOOKIE, ResponseCode::NoError] {
                let (n, peer) = udp.recv_from(&mut buf).unwrap();
                let sent = cookie_of(&Message::from_vec(&buf[..n]).unwrap())
                    .unwrap()
                    .to_vec();
                let (_, forged) =
                    respond(&buf[..n], [&[0xEE; 8][..], &[0x55; 16][..]].concat(), rcode);
                udp.send_to(&forged, peer).unwrap();
                let (_, real) = respond(&buf[..n], [&sent[..8], &[0x5A; 16][..]].concat(), rcode);
                udp.send_to(&real, peer).unwrap();
                seen.push(sent);
            }
            seen
        });
        let jar = CookieJar::default();
        let x =
            exchange_with(addr, &query_with_edns(), Duration::from_secs(2), Some(&jar)).unwrap();
        assert_eq!(x.response.metadata.response_code, ResponseCode::NoError);
        assert!(!x.tcp);
        let seen = server.join().unwrap();
        assert_eq!(seen[0].len(), 8, "first a client cookie alone");
        assert_eq!(seen[1][..8], seen[0][..], "the same client cookie");
        assert_eq!(
            seen[1][8..],
            [0x5A; 16],
            "with the server cookie BADCOOKIE gave"
        );
        assert_eq!(jar.server_cookie(addr), Some(vec![0x5A; 16]));
        // Without a jar, no cookie is sent.
        let plain = query_with_edns();
        assert!(cookie_of(&plain).is_none());
    }

    #[test]
    fn silence_is_a_timeout() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = exchange(
            silent.local_addr().unwrap(),
            &query(),
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(
            matches!(err, TransportError::Timeout(d) if d == Duration::from_millis(200)),
            "{err}"
        );
    }
}
