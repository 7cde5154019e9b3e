//! Port 53 under abuse: clients that hold TCP connections open, send length prefixes that lie,
//! or never read their answers must not shut out the clients that ask properly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::harness::*;

/// A TCP connection to `server` from the loopback address `from`.
fn connect_from(from: [u8; 4], server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    // The port is chosen at connect, not bind: binding to port 0 first searches for a port
    // free for every destination, which grows slow with thousands in use.
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option value of the right size.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "IP_BIND_ADDRESS_NO_PORT");
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect_timeout(&server.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

fn txt_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Message::query();
    q.metadata.id = id;
    q.add_query(Query::query(
        Name::from_ascii(name).unwrap(),
        RecordType::TXT,
    ));
    let wire = q.to_vec().unwrap();
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&wire);
    framed
}

/// One query on a fresh connection from 127.0.0.1, its answer read within five seconds.
fn ask_tcp(server: SocketAddr, id: u16) -> Result<Message, String> {
    let mut conn = connect_from([127, 0, 0, 1], server).map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(&txt_query(id, "n1.example.test."))
        .map_err(|e| format!("send: {e}"))?;
    let mut len = [0u8; 2];
    conn.read_exact(&mut len)
        .map_err(|e| format!("length: {e}"))?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    conn.read_exact(&mut body)
        .map_err(|e| format!("body: {e}"))?;
    // Reset rather than close: thousands of TIME_WAITs would crowd the ports other tests bind.
    let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
    Message::from_vec(&body).map_err(|e| format!("parse: {e}"))
}

/// The attack: 10,000 connections that sit idle, lie about their length, pipeline
/// queries and never read, or pipeline and read one byte a second, from 127.0.0.2 and from 64
/// addresses in eight other /24s, which together overfill the table. Every valid query from 127.0.0.1 meanwhile gets its right
/// answer: its neighbour 127.0.0.2 cannot take more than its own share of their /24.
#[test]
fn idle_lying_and_unread_tcp_connections_do_not_shut_out_valid_queries() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let dns = server.dns;
    let limit = raise_nofile(12_000);
    let attackers = (limit.saturating_sub(1_000) as usize).min(10_000);
    assert!(
        attackers >= 2_000,
        "open-file limit {limit} too low for the test"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let all_open = Arc::new(AtomicBool::new(false));
    // The slow readers: every second, one byte from each.
    let slow: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
    let trickle = {
        let (stop, slow) = (stop.clone(), slow.clone());
        std::thread::spawn(move || {
            let (mut bytes, mut closed) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                let mut conns = slow.lock().unwrap();
                conns.retain_mut(|c| match c.read(&mut [0u8; 1]) {
                    Ok(1) => {
                        bytes += 1;
                        true
                    }
                    Ok(_) => {
                        closed += 1;
                        false
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                    Err(_) => {
                        closed += 1;
                        false
                    }
                });
                drop(conns);
                std::thread::sleep(Duration::from_secs(1));
            }
            (bytes, closed)
        })
    };
    let flood = {
        let (stop, opened, all_open) = (stop.clone(), opened.clone(), all_open.clone());
        let slow = slow.clone();
        std::thread::spawn(move || {
            let mut held = Vec::with_capacity(attackers);
            let pipelined = txt_query(7, "n1.example.test.").repeat(200);
            for i in 0..attackers {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // A ninth from 127.0.0.2, beside the valid client; the rest from 64 addresses
                // in eight other /24s, which together fill the table: address shares, prefix
                // shares and the full table all evict.
                let from = match i % 9 {
                    0 => [127, 0, 0, 2],
                    net => [127, 0, net as u8, 2 + (i / 9 % 8) as u8],
                };
                let Ok(mut conn) = connect_from(from, dns) else {
                    continue;
                };
                match i % 4 {
                    0 => {} // idle
                    1 => {
                        // Promises 65,535 bytes and sends one.
                        let _ = conn.write_all(&[0xFF, 0xFF, 0x00]);
                    }
                    2 => {
                        // Pipelines queries and never reads an answer.
                        conn.set_nonblocking(true).unwrap();
                        let _ = conn.write_all(&pipelined);
                    }
                    _ => {
                        // Pipelines queries and reads the answers one byte a second. The
                        // reader holds it (no second descriptor: the test's own file limit
                        // is what 10,000 connections are sized against).
                        conn.set_nonblocking(true).unwrap();
                        let _ = conn.write_all(&pipelined);
                        let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
                        slow.lock().unwrap().push(conn);
                        opened.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                held.push(conn);
                opened.fetch_add(1, Ordering::Relaxed);
            }
            all_open.store(true, Ordering::Relaxed);
            for conn in &held {
                let _ = socket2::SockRef::from(conn).set_linger(Some(Duration::ZERO));
            }
            // Hold them all until the valid client is done.
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            // Those still open: held here, and the slow readers the server has not closed.
            held.len() + slow.lock().unwrap().len()
        })
    };

    // Let the table fill first.
    wait_for(Duration::from_secs(30), "the flood to open 1,000", || {
        opened.load(Ordering::Relaxed) >= 1_000
    });
    // Ask all the while the flood is opening connections, and at least 200 times.
    let mut failures = Vec::new();
    let mut asked = 0u16;
    while asked < 200 || (!all_open.load(Ordering::Relaxed) && asked < 5_000) {
        std::thread::sleep(Duration::from_millis(5));
        let id = asked;
        asked += 1;
        match ask_tcp(dns, id) {
            Ok(m) => {
                assert_eq!(m.metadata.id, id);
                assert_eq!(m.metadata.response_code, ResponseCode::NoError);
                assert!(txt(&m)[0].contains(SHA1), "{:?}", txt(&m));
            }
            Err(e) => failures.push(format!("query {id}: {e}")),
        }
    }
    let during = opened.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let held = flood.join().unwrap();
    let (trickled, slow_closed) = trickle.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {asked} failed: {failures:?}",
        failures.len()
    );
    eprintln!(
        "{asked} valid queries while {held} connections flooded; the slow readers read \
         {trickled} bytes, and {slow_closed} of them were closed by the server"
    );
    assert!(trickled > 0, "the slow readers read");
    assert!(
        during >= 1_000 && held >= 1_000,
        "the flood ran ({during}, {held})"
    );
    // And the server is still whole afterwards, over UDP and TCP.
    let m = query(dns, "n1.example.test.", RecordType::TXT, false);
    assert!(txt(&m)[0].contains(SHA1));
    let m = query(dns, "n1.example.test.", RecordType::TXT, true);
    assert!(txt(&m)[0].contains(SHA1));
}
