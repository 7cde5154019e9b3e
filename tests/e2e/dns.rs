//! Answers checked with hickory's DNS client over real UDP and TCP sockets.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::harness::*;

#[test]
fn published_commits_are_served_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let r = server.put("example.test", "web-02", SHA256);
    assert_eq!(r.status, 201);
    let ts = r.json["ts"].as_u64().unwrap();

    for tcp in [false, true] {
        let m = query(server.dns, "n1.example.test.", RecordType::TXT, tcp);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers[0].ttl, 60);
        assert!(txt(&m)[0].starts_with(&format!("v=herald1 commit={SHA1} seq=1 ts=")));
        let m = query(server.dns, "WEB-02.example.test.", RecordType::TXT, tcp);
        assert_eq!(
            txt(&m),
            [format!("v=herald1 commit={SHA256} seq=1 ts={ts}")]
        );
    }
}

#[test]
fn every_publish_is_visible_when_the_api_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    for seq in 1..=40u64 {
        let commit = format!("{seq:040x}");
        let r = server.put("example.test", "n1", &commit);
        assert_eq!(r.json["seq"], seq);
        let m = query(server.dns, "n1.example.test.", RecordType::TXT, false);
        assert!(
            txt(&m)[0].contains(&format!("commit={commit} seq={seq} ")),
            "{:?}",
            txt(&m)
        );
        let serial = r.json["serial"].as_u64().unwrap();
        let soa = query(server.dns, "example.test.", RecordType::SOA, false);
        let RData::SOA(s) = &soa.answers[0].data else {
            panic!()
        };
        assert_eq!(u64::from(s.serial), serial);
    }
    assert_eq!(
        server
            .call("DELETE", "/v1/zones/example.test/nodes/n1", None)
            .status,
        204
    );
    let m = query(server.dns, "n1.example.test.", RecordType::TXT, false);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn negative_answers_static_records_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    server.put("example.test", "n1", SHA1);

    let m = query(server.dns, "nope.example.test.", RecordType::TXT, false);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(m.authorities[0].ttl, 60);

    let m = query(server.dns, "n1.example.test.", RecordType::AAAA, false);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);

    let m = query(server.dns, "example.test.", RecordType::NS, false);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        m.additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .count(),
        1
    );
    let m = query(server.dns, "info.example.test.", RecordType::TXT, true);
    assert!(txt(&m)[0].starts_with("Herald example zone"));

    let m = query(server.dns, "example.org.", RecordType::A, false);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert_eq!(
        m.queries[0].name(),
        &Name::from_ascii("example.org.").unwrap()
    );
}

#[test]
fn several_zones_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let zones = copy_zones(dir.path());
    std::fs::write(
        zones.join("fleet.test.zone"),
        "$TTL 300\n@ IN SOA ns1.example.test. hostmaster.example.test. 7 3600 900 1209600 30\n  IN NS ns1.example.test.\n",
    )
    .unwrap();
    let server = Server::start(dir.path(), &zones);
    assert_eq!(server.put("fleet.test", "n1", SHA256).status, 201);
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let m = query(server.dns, "n1.fleet.test.", RecordType::TXT, false);
    assert!(txt(&m)[0].contains(SHA256));
    let m = query(server.dns, "nope.fleet.test.", RecordType::TXT, false);
    assert_eq!(m.authorities[0].ttl, 30);
    let zones = server.call("GET", "/v1/zones", None).json;
    let names: Vec<&str> = zones["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.test", "fleet.test"]);
    assert_eq!(zones["zones"][1]["serial"], 8);
}

/// The UDP loop reads and answers datagrams in batches: a burst of queries sent without
/// waiting gets every answer, each with its own ID, and an oversized datagram in the middle
/// is dropped without disturbing its neighbours.
#[test]
fn bursts_of_datagrams_are_all_answered() {
    use std::collections::HashSet;
    use std::net::UdpSocket;
    use std::time::Duration;

    use hickory_proto::op::{Message, Query};

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    server.put("example.test", "n1", SHA1);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let name = Name::from_ascii("n1.example.test.").unwrap();
    let mut sent = HashSet::new();
    for id in 0..200u16 {
        if id == 100 {
            // Bigger than any query Herald reads (4096 bytes): dropped, unanswered.
            let mut big = Message::query();
            big.metadata.id = 60_000;
            big.add_query(Query::query(name.clone(), RecordType::TXT));
            let mut wire = big.to_vec().unwrap();
            wire.resize(5_000, 0);
            socket.send_to(&wire, server.dns).unwrap();
        }
        let mut q = Message::query();
        q.metadata.id = id;
        q.add_query(Query::query(name.clone(), RecordType::TXT));
        socket.send_to(&q.to_vec().unwrap(), server.dns).unwrap();
        sent.insert(id);
    }
    let mut buf = [0u8; 4096];
    let mut answered = HashSet::new();
    while answered.len() < sent.len() {
        let n = socket.recv(&mut buf).expect("every query is answered");
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(txt(&m)[0].contains(SHA1));
        assert!(answered.insert(m.metadata.id), "one answer per query");
    }
    assert_eq!(answered, sent);
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        socket.recv(&mut buf).is_err(),
        "nothing for the oversized datagram"
    );
}
