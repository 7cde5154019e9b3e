//! `GET /metrics`, scraped: the counters move by exactly what was sent (queries by
//! transport, type, RCODE and DO; publishes by path), the zone gauges say what is served, the
//! Grafana dashboard asks only for metrics that are served, and the endpoint needs a token off
//! loopback.

use std::collections::BTreeSet;
use std::path::Path;

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::harness::*;

/// The samples of a scrape: `name{labels} value` lines, comments left out.
fn scrape(server: &Server) -> String {
    let url = format!("{}/metrics", server.api);
    let mut r = ureq::get(&url).call().expect("metrics answer");
    r.body_mut().read_to_string().unwrap()
}

/// The value of the sample that starts with `series` (name and labels as printed).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .unwrap_or(0.0)
}

#[test]
fn counters_move_by_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let before = scrape(&server);
    let txt_udp =
        r#"herald_dns_queries_total{transport="udp",type="TXT",rcode="NOERROR",dnssec_ok="false"}"#;
    let nx_udp =
        r#"herald_dns_queries_total{transport="udp",type="A",rcode="NXDOMAIN",dnssec_ok="false"}"#;
    let txt_tcp =
        r#"herald_dns_queries_total{transport="tcp",type="TXT",rcode="NOERROR",dnssec_ok="false"}"#;
    for _ in 0..7 {
        query(server.dns, "n1.example.test.", RecordType::TXT, false);
    }
    for _ in 0..3 {
        query(server.dns, "nope.example.test.", RecordType::A, false);
    }
    query(server.dns, "n1.example.test.", RecordType::TXT, true);
    let after = scrape(&server);
    assert_eq!(
        value(&after, txt_udp) - value(&before, txt_udp),
        7.0,
        "{after}"
    );
    assert_eq!(
        value(&after, nx_udp) - value(&before, nx_udp),
        3.0,
        "{after}"
    );
    assert_eq!(
        value(&after, txt_tcp) - value(&before, txt_tcp),
        1.0,
        "{after}"
    );
    let count = r#"herald_dns_response_size_bytes_count{transport="udp"}"#;
    assert_eq!(value(&after, count) - value(&before, count), 10.0);

    // Publishes by path: two PUTs, one batch, one PATCH; one refused.
    server.put("example.test", "n2", SHA256);
    server.call(
        "POST",
        "/v1/zones/example.test/batch",
        Some(&json!({"set": [{"node": "n3", "commit": SHA1}]})),
    );
    server.call_as(
        "PATCH",
        "/api/v1/servers/localhost/zones/example.test.",
        Some(
            &json!({"rrsets": [{"name": "n4.example.test.", "type": "TXT",
            "changetype": "REPLACE", "records": [{"content": format!("\"{SHA1}\"")}]}]}),
        ),
        None,
        &[("X-API-Key", TOKEN)],
    );
    server.call_as(
        "PUT",
        "/v1/zones/example.test/nodes/n2",
        Some(&json!({"commit": SHA1})),
        Some(TOKEN),
        &[("If-Match", "\"99\"")],
    );
    let m = scrape(&server);
    for (series, want) in [
        (
            r#"herald_publishes_total{path="api",result="applied"}"#,
            2.0,
        ),
        (
            r#"herald_publishes_total{path="api",result="refused"}"#,
            1.0,
        ),
        (
            r#"herald_publishes_total{path="batch",result="applied"}"#,
            1.0,
        ),
        (
            r#"herald_publishes_total{path="pdns",result="applied"}"#,
            1.0,
        ),
        ("herald_publish_visible_seconds_count", 4.0),
        (r#"herald_zone_nodes{zone="example.test"}"#, 4.0),
    ] {
        assert_eq!(value(&m, series), want, "{series}\n{m}");
    }
    let serial = value(&m, r#"herald_zone_serial{zone="example.test"}"#);
    let soa = soa_serial(server.dns).unwrap();
    assert_eq!(serial, f64::from(soa));
    assert!(value(&m, "herald_signatures_total") > 0.0);
    // Signed just now with the default validity of 14 days (less jitter).
    let left = value(&m, r#"herald_rrsig_expiry_seconds{zone="example.test"}"#);
    assert!(left > 7.0 * 86400.0 && left <= 14.0 * 86400.0, "{left}");
    assert!(m.contains("herald_build_info{version=\""), "{m}");
    assert!(
        m.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
}

#[test]
fn the_dashboard_asks_for_served_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    server.put("example.test", "n1", SHA1);
    let served: BTreeSet<String> = scrape(&server)
        .lines()
        .filter(|l| l.starts_with("# TYPE "))
        .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/herald.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() >= 10);
    for expr in &exprs {
        let names: Vec<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("herald_"))
            .collect();
        assert!(!names.is_empty(), "{expr}");
        for name in names {
            // A counter `x` is served as x_total, a histogram as x_bucket, _sum and _count,
            // an info as x_info; `# TYPE` names the family.
            let family = ["_total", "_bucket", "_sum", "_count", "_info"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                served.contains(family),
                "{name} (in {expr}) is not served: {served:?}"
            );
        }
    }
}

#[test]
fn off_loopback_the_metrics_need_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, api) = (free_port(), free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--allow-plain-http", "--dns"])
        .arg(format!("127.0.0.1:{dns}"))
        .arg("--api")
        .arg(format!("0.0.0.0:{api}"))
        .arg("--zones")
        .arg(repo_zones())
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{api}/metrics");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    wait_for(std::time::Duration::from_secs(10), "the api", || {
        agent.get(&url).call().is_ok()
    });
    let open = agent.get(&url).call().unwrap().status().as_u16();
    let with = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap()
        .status()
        .as_u16();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((open, with), (401, 200));
}
