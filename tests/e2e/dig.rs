//! The same answers as seen by `dig` (bind9-dnsutils), a client no one here wrote.

use crate::harness::*;

fn field<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{out}"))
}

#[test]
#[ignore = "needs dig"]
fn dig_reads_a_published_commit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let ts = server.put("example.test", "n1", SHA1).json["ts"]
        .as_u64()
        .unwrap();
    let want = format!("\"v=herald1 commit={SHA1} seq=1 ts={ts}\"");

    let out = dig(server.dns, &["n1.example.test", "TXT"]);
    assert!(
        field(&out, ";; ->>HEADER<<-").contains("status: NOERROR"),
        "{out}"
    );
    assert!(field(&out, ";; flags:").contains(" aa"), "{out}");
    let answer = field(&out, "n1.example.test.");
    assert!(
        answer.contains("60\tIN\tTXT") && answer.ends_with(&want),
        "{answer}"
    );
    assert!(field(&out, "; EDNS:").contains("udp: 1232"), "{out}");

    let short = dig(server.dns, &["+short", "+tcp", "N1.EXAMPLE.TEST", "TXT"]);
    assert_eq!(short.trim(), want);
    let short = dig(server.dns, &["+short", "+noedns", "n1.example.test", "TXT"]);
    assert_eq!(short.trim(), want);
}

#[test]
#[ignore = "needs dig"]
fn dig_sees_negative_answers_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    server.put("example.test", "n1", SHA1);

    let out = dig(server.dns, &["nope.example.test", "TXT"]);
    assert!(
        field(&out, ";; ->>HEADER<<-").contains("status: NXDOMAIN"),
        "{out}"
    );
    assert!(
        field(&out, "example.test.")
            .contains("60\tIN\tSOA\tns1.example.test. hostmaster.example.test."),
        "{out}"
    );

    let out = dig(server.dns, &["n1.example.test", "A"]);
    assert!(
        field(&out, ";; ->>HEADER<<-").contains("status: NOERROR"),
        "{out}"
    );
    assert!(
        field(&out, ";; flags:").contains("ANSWER: 0, AUTHORITY: 1"),
        "{out}"
    );

    let out = dig(server.dns, &["example.com", "A"]);
    assert!(
        field(&out, ";; ->>HEADER<<-").contains("status: REFUSED"),
        "{out}"
    );

    let out = dig(
        server.dns,
        &["+edns=1", "+noednsnegotiation", "n1.example.test", "TXT"],
    );
    assert!(
        field(&out, ";; ->>HEADER<<-").contains("status: BADVERS"),
        "{out}"
    );
    assert!(field(&out, "; EDNS:").contains("version: 0"), "{out}");

    let out = dig(server.dns, &["+opcode=status", "n1.example.test", "TXT"]);
    assert!(
        field(&out, ";; ->>HEADER<<-").contains("status: NOTIMP"),
        "{out}"
    );

    let out = dig(
        server.dns,
        &["+dnssec", "+bufsize=4096", "example.test", "SOA"],
    );
    let edns = field(&out, "; EDNS:");
    assert!(
        edns.contains("flags: do") && edns.contains("udp: 1232"),
        "{edns}"
    );
}
