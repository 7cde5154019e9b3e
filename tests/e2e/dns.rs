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
