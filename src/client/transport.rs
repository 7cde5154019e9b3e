//! One DNS exchange with one server: a UDP query, and TCP only when the answer comes back
//! truncated (RFC 7766 §5).
//!
//! The UDP socket is connected to the server, so the kernel drops datagrams from anyone else;
//! an answer must also carry the query's ID and question, or it is ignored (RFC 5452 §9.1).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
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

/// Sends `query` to `server` and waits at most `timeout` for each transport.
pub fn exchange(
    server: SocketAddr,
    query: &Message,
    timeout: Duration,
) -> Result<Exchange, TransportError> {
    let wire = query.to_vec().map_err(TransportError::Encode)?;
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
    socket.send(&wire).map_err(net)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    let response = loop {
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
            break (m, n);
        }
    };
    let (message, received) = response;
    if !message.metadata.truncation {
        return Ok(Exchange {
            response: message,
            bytes_sent: wire.len(),
            bytes_received: received,
            tcp: false,
        });
    }
    let (message, tcp_sent, tcp_received) = exchange_tcp(server, &wire, query, timeout)?;
    Ok(Exchange {
        response: message,
        bytes_sent: wire.len() + tcp_sent,
        bytes_received: received + tcp_received,
        tcp: true,
    })
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

/// Whether `m` is a response to `query`: same ID and same question.
fn answers(query: &Message, m: &Message) -> bool {
    m.metadata.message_type == hickory_proto::op::MessageType::Response
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
