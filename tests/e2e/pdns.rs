//! Scoped tokens (`/v1/tokens`, `herald token`) and the PowerDNS-compatible API
//! (`/api/v1/servers/localhost/…`), over real HTTP: with ureq, with curl sending the bodies of
//! PowerDNS's own documentation, and with `powerdns-cli`, a PowerDNS client no one here wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::{Value, json};

use crate::harness::*;

const ZONE_URL: &str = "/api/v1/servers/localhost/zones/example.test.";
/// A third commit, besides the harness's two.
const SHA3: &str = "0123456789abcdef0123456789abcdef01234567";
/// A token Herald never made.
const WRONG: &str = "wrong-e2e-token-0123456789abcdef";

/// The repository's zones plus fleet.test, for scopes that must not reach another zone.
fn two_zones(dir: &Path) -> PathBuf {
    let zones = copy_zones(dir);
    std::fs::write(
        zones.join("fleet.test.zone"),
        "$TTL 300\n@ IN SOA ns1.example.test. hostmaster.example.test. 7 3600 900 1209600 30\n  IN NS ns1.example.test.\n",
    )
    .unwrap();
    zones
}

/// `POST /v1/tokens` as the admin: (id, secret).
fn make_token(server: &Server, zone: &str, nodes: &str) -> (String, String) {
    let r = server.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"zone": zone, "nodes": nodes})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["token"].as_str().unwrap().to_owned(),
    )
}

/// A request with `token` as bearer.
fn as_token(server: &Server, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    server.call_as(method, path, body, Some(token), &[])
}

/// A request with `key` in `X-API-Key`, as PowerDNS clients send it.
fn with_key(server: &Server, key: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    server.call_as(method, path, body, None, &[("X-API-Key", key)])
}

/// An answer with its raw body and `WWW-Authenticate`, for what [`Reply`] does not keep.
#[derive(Debug)]
struct Raw {
    status: u16,
    www_authenticate: Option<String>,
    body: String,
}

fn raw(server: &Server, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Raw {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.api));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = agent
        .run(req.body(body.to_owned()).unwrap())
        .expect("api reachable");
    Raw {
        status: res.status().as_u16(),
        www_authenticate: res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: res.body_mut().read_to_string().unwrap(),
    }
}

/// What a refused request must leave as it was: example.test's nodes and serial.
fn state(server: &Server) -> (Value, Value) {
    let nodes = server.call("GET", "/v1/zones/example.test/nodes", None);
    assert_eq!(nodes.status, 200, "{:?}", nodes.json);
    let zone = server.call("GET", "/v1/zones/example.test", None);
    (nodes.json, zone.json["serial"].clone())
}

/// The names of the nodes example.test has, as the admin sees them.
fn node_names(server: &Server, zone: &str) -> Vec<String> {
    let r = server.call("GET", &format!("/v1/zones/{zone}/nodes"), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap().to_owned())
        .collect()
}

/// The node as the admin API shows it (Null with 404).
fn node(server: &Server, name: &str) -> Reply {
    server.call("GET", &format!("/v1/zones/example.test/nodes/{name}"), None)
}

/// The TXT strings DNS serves for `name`.example.test.
fn served(server: &Server, name: &str) -> Vec<String> {
    txt(&query(
        server.dns,
        &format!("{name}.example.test."),
        RecordType::TXT,
        false,
    ))
}

fn rcode(server: &Server, name: &str) -> ResponseCode {
    query(
        server.dns,
        &format!("{name}.example.test."),
        RecordType::TXT,
        false,
    )
    .metadata
    .response_code
}

/// The SOA serial DNS serves for example.test.
fn soa_serial(server: &Server) -> u64 {
    let m = query(server.dns, "example.test.", RecordType::SOA, false);
    let RData::SOA(soa) = &m.answers[0].data else {
        panic!("no SOA: {m:?}")
    };
    u64::from(soa.serial)
}

/// A REPLACE of one node's TXT RRset with one record, as PowerDNS clients send it.
fn replace(name: &str, content: &str) -> Value {
    json!({"name": name, "type": "TXT", "ttl": 300, "changetype": "REPLACE",
           "records": [{"content": content, "disabled": false}]})
}

fn patch(rrsets: Vec<Value>) -> Value {
    json!({ "rrsets": rrsets })
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

// ---------------------------------------------------------------------------------------------
// A. Scoped tokens.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_prefix_token_reaches_only_its_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &two_zones(dir.path()));
    assert_eq!(server.put("example.test", "db-1", SHA1).status, 201);
    assert_eq!(server.put("fleet.test", "web-1", SHA1).status, 201);

    let r = server.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"zone": "example.test", "nodes": "web-*", "description": "web fleet"})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(keys(&r.json), ["expires", "id", "nodes", "token", "zone"]);
    assert_eq!(
        (&r.json["zone"], &r.json["nodes"], &r.json["expires"]),
        (&json!("example.test"), &json!("web-*"), &Value::Null)
    );
    let (id, secret) = (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["token"].as_str().unwrap().to_owned(),
    );
    assert!(!id.is_empty() && secret.len() >= 16, "{:?}", r.json);

    // Its own nodes: publish, read, history, delete, with a bearer token or X-API-Key.
    let web1 = "/v1/zones/example.test/nodes/web-1";
    let put = as_token(
        &server,
        &secret,
        "PUT",
        web1,
        Some(&json!({"commit": SHA1})),
    );
    assert_eq!(
        (put.status, &put.json["seq"]),
        (201, &json!(1)),
        "{:?}",
        put.json
    );
    let put = with_key(
        &server,
        &secret,
        "PUT",
        web1,
        Some(&json!({"commit": SHA256})),
    );
    assert_eq!(
        (put.status, &put.json["seq"]),
        (200, &json!(2)),
        "{:?}",
        put.json
    );
    assert!(served(&server, "web-1")[0].contains(&format!("commit={SHA256} seq=2 ")));
    let get = as_token(&server, &secret, "GET", web1, None);
    assert_eq!((get.status, &get.json["commit"]), (200, &json!(SHA256)));
    let get = with_key(&server, &secret, "GET", web1, None);
    assert_eq!(get.status, 200, "{:?}", get.json);
    let history = as_token(&server, &secret, "GET", &format!("{web1}/history"), None);
    assert_eq!(history.status, 200, "{:?}", history.json);
    assert_eq!(history.json["history"].as_array().unwrap().len(), 2);
    let zone = as_token(&server, &secret, "GET", "/v1/zones/example.test", None);
    assert_eq!(
        (zone.status, &zone.json["zone"]),
        (200, &json!("example.test"))
    );

    // Its node list holds only its nodes.
    let list = as_token(
        &server,
        &secret,
        "GET",
        "/v1/zones/example.test/nodes",
        None,
    );
    assert_eq!(list.status, 200, "{:?}", list.json);
    let names: Vec<&str> = list.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1"]);

    // Everything else: 403, and nothing changes.
    let before = state(&server);
    let fleet_before = node_names(&server, "fleet.test");
    let db1 = "/v1/zones/example.test/nodes/db-1";
    let refused: Vec<(&str, String, Option<Value>)> = vec![
        ("PUT", db1.to_owned(), Some(json!({"commit": SHA3}))),
        (
            "PUT",
            "/v1/zones/example.test/nodes/web".to_owned(),
            Some(json!({"commit": SHA3})),
        ),
        ("GET", db1.to_owned(), None),
        ("GET", format!("{db1}/history"), None),
        ("DELETE", db1.to_owned(), None),
        (
            "PUT",
            "/v1/zones/fleet.test/nodes/web-1".to_owned(),
            Some(json!({"commit": SHA3})),
        ),
        ("GET", "/v1/zones/fleet.test/nodes/web-1".to_owned(), None),
        (
            "DELETE",
            "/v1/zones/fleet.test/nodes/web-1".to_owned(),
            None,
        ),
        ("GET", "/v1/zones/fleet.test".to_owned(), None),
        ("GET", "/v1/zones/fleet.test/nodes".to_owned(), None),
        (
            "POST",
            "/v1/zones/example.test/batch".to_owned(),
            Some(
                json!({"set": [{"node": "web-2", "commit": SHA3}, {"node": "db-2", "commit": SHA3}]}),
            ),
        ),
        (
            "POST",
            "/v1/zones/example.test/batch".to_owned(),
            Some(json!({"set": [{"node": "web-2", "commit": SHA3}], "delete": ["db-1"]})),
        ),
        (
            "POST",
            "/v1/zones/fleet.test/batch".to_owned(),
            Some(json!({"set": [{"node": "web-2", "commit": SHA3}]})),
        ),
        (
            "POST",
            "/v1/tokens".to_owned(),
            Some(json!({"zone": "example.test", "nodes": "*"})),
        ),
        ("GET", "/v1/tokens".to_owned(), None),
        ("DELETE", format!("/v1/tokens/{id}"), None),
    ];
    for (method, path, body) in &refused {
        for r in [
            as_token(&server, &secret, method, path, body.as_ref()),
            with_key(&server, &secret, method, path, body.as_ref()),
        ] {
            assert_eq!(r.status, 403, "{method} {path}: {:?}", r.json);
            assert!(r.json["error"].is_string(), "{method} {path}: {:?}", r.json);
            assert!(!r.json.to_string().contains(&secret), "{:?}", r.json);
        }
    }
    assert_eq!(state(&server), before);
    assert_eq!(node_names(&server, "fleet.test"), fleet_before);
    assert_eq!(node(&server, "db-1").json["commit"], SHA1);
    assert_eq!(node(&server, "web-2").status, 404);

    // A batch of its own nodes only goes through; the token was not revoked by the 403s.
    let batch = as_token(
        &server,
        &secret,
        "POST",
        "/v1/zones/example.test/batch",
        Some(
            &json!({"set": [{"node": "web-2", "commit": SHA3}, {"node": "web-3", "commit": SHA3}],
                     "delete": ["web-1"]}),
        ),
    );
    assert_eq!(batch.status, 200, "{:?}", batch.json);
    assert_eq!(
        node_names(&server, "example.test"),
        ["db-1", "web-2", "web-3"]
    );
    let del = with_key(
        &server,
        &secret,
        "DELETE",
        "/v1/zones/example.test/nodes/web-2",
        None,
    );
    assert_eq!(del.status, 204, "{:?}", del.json);
    assert_eq!(rcode(&server, "web-2"), ResponseCode::NXDomain);

    // The admin token still does everything.
    assert_eq!(server.put("example.test", "web-9", SHA1).status, 201);
    assert_eq!(server.put("fleet.test", "db-9", SHA1).status, 201);
    let r = with_key(&server, TOKEN, "GET", "/v1/tokens", None);
    assert_eq!(r.status, 200, "{:?}", r.json);

    let log = server.log();
    assert!(
        !log.contains(&secret),
        "the log holds a token secret:\n{log}"
    );
    assert!(
        !log.contains(TOKEN),
        "the log holds the admin token:\n{log}"
    );
}

#[test]
fn a_exact_and_any_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &two_zones(dir.path()));
    let (_, exact) = make_token(&server, "example.test", "n1");
    let (_, any) = make_token(&server, "example.test.", "*");

    let put = |token: &str, zone: &str, node: &str| {
        as_token(
            &server,
            token,
            "PUT",
            &format!("/v1/zones/{zone}/nodes/{node}"),
            Some(&json!({"commit": SHA1})),
        )
        .status
    };
    assert_eq!(put(&exact, "example.test", "n1"), 201);
    assert_eq!(put(&exact, "example.test", "N1"), 200);
    assert_eq!(put(&exact, "example.test", "n10"), 403);
    assert_eq!(put(&exact, "example.test", "n"), 403);
    assert_eq!(put(&exact, "fleet.test", "n1"), 403);
    assert_eq!(put(&any, "example.test", "n10"), 201);
    assert_eq!(put(&any, "example.test", "db-1"), 201);
    assert_eq!(put(&any, "fleet.test", "n1"), 403);
    assert_eq!(node_names(&server, "example.test"), ["db-1", "n1", "n10"]);
    assert!(node_names(&server, "fleet.test").is_empty());

    let list = as_token(&server, &exact, "GET", "/v1/zones/example.test/nodes", None);
    assert_eq!(
        list.json["nodes"].as_array().unwrap().len(),
        1,
        "{:?}",
        list.json
    );
    // Paging hands out no name outside the scope: n10 and n100 start with n1, but are not n1
    // (a read by prefix would have given `next: "n10"` after n1).
    assert_eq!(put(&any, "example.test", "n100"), 201);
    for query in ["?limit=1", "?after=n1&limit=1", "?after=a&limit=1"] {
        let list = as_token(
            &server,
            &exact,
            "GET",
            &format!("/v1/zones/example.test/nodes{query}"),
            None,
        );
        assert_eq!(list.status, 200, "{query}: {:?}", list.json);
        assert!(list.json["next"].is_null(), "{query}: {:?}", list.json);
        assert!(
            !list.json.to_string().contains("n10"),
            "{query}: {:?}",
            list.json
        );
    }
    let dump = as_token(
        &server,
        &exact,
        "GET",
        "/api/v1/servers/localhost/zones/example.test.",
        None,
    );
    assert!(
        dump.json.to_string().contains("n1.example.test."),
        "{:?}",
        dump.json
    );
    assert!(!dump.json.to_string().contains("n10."), "{:?}", dump.json);
    let list = as_token(&server, &any, "GET", "/v1/zones/example.test/nodes", None);
    assert_eq!(
        list.json["nodes"].as_array().unwrap().len(),
        4,
        "{:?}",
        list.json
    );
}

#[test]
fn a_revoked_and_expired_tokens_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let (id, secret) = make_token(&server, "example.test", "n1");
    let n1 = "/v1/zones/example.test/nodes/n1";
    let body = json!({"commit": SHA1});
    assert_eq!(
        as_token(&server, &secret, "PUT", n1, Some(&body)).status,
        201
    );

    let r = server.call("DELETE", &format!("/v1/tokens/{id}"), None);
    assert_eq!((r.status, r.json), (204, Value::Null));
    let before = state(&server);
    for r in [
        as_token(
            &server,
            &secret,
            "PUT",
            n1,
            Some(&json!({"commit": SHA256})),
        ),
        with_key(
            &server,
            &secret,
            "PUT",
            n1,
            Some(&json!({"commit": SHA256})),
        ),
        as_token(&server, &secret, "GET", n1, None),
        with_key(&server, &secret, "DELETE", n1, None),
    ] {
        assert_eq!(r.status, 401, "{:?}", r.json);
        assert!(r.json["error"].is_string());
    }
    assert_eq!(state(&server), before);
    let r = server.call("DELETE", &format!("/v1/tokens/{id}"), None);
    assert_eq!(r.status, 404, "{:?}", r.json);
    assert!(r.json["error"].is_string());
    let r = server.call("DELETE", "/v1/tokens/0000000000000000", None);
    assert_eq!(r.status, 404, "{:?}", r.json);
    let list = server.call("GET", "/v1/tokens", None);
    assert_eq!(list.json, json!({"tokens": []}));

    // Expiry.
    let t0 = now();
    let r = server.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"zone": "example.test", "nodes": "n1", "expires_in": 1})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let expires = r.json["expires"].as_u64().expect("expires is set");
    assert!((t0 + 1..=now() + 1).contains(&expires), "{expires} vs {t0}");
    let short = r.json["token"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(2));
    for r in [
        as_token(&server, &short, "PUT", n1, Some(&json!({"commit": SHA256}))),
        with_key(&server, &short, "GET", n1, None),
    ] {
        assert_eq!(r.status, 401, "{:?}", r.json);
    }
    assert_eq!(state(&server), before);
    let list = server.call("GET", "/v1/tokens", None);
    assert_eq!(list.json["tokens"][0]["expired"], true, "{:?}", list.json);
    assert_eq!(list.json["tokens"][0]["expires"], expires);

    // A token that expires later works now.
    let r = server.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"zone": "example.test", "nodes": "n1", "expires_in": 3600})),
    );
    let expires = r.json["expires"].as_u64().unwrap();
    assert!((t0 + 3600..=now() + 3600).contains(&expires));
    let later = r.json["token"].as_str().unwrap().to_owned();
    let put = as_token(&server, &later, "PUT", n1, Some(&json!({"commit": SHA256})));
    assert_eq!(put.status, 200, "{:?}", put.json);

    let log = server.log();
    for s in [&secret, &short, &later] {
        assert!(
            !log.contains(s.as_str()),
            "the log holds a token secret:\n{log}"
        );
    }
}

#[test]
fn a_token_list_shows_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let t0 = now();
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for (nodes, description) in [("web-*", "deploy bot"), ("n1", "")] {
        let r = server.call(
            "POST",
            "/v1/tokens",
            Some(
                &json!({"zone": "example.test", "nodes": nodes, "description": description,
                         "expires_in": 86400}),
            ),
        );
        assert_eq!(r.status, 201, "{:?}", r.json);
        ids.push(r.json["id"].as_str().unwrap().to_owned());
        secrets.push(r.json["token"].as_str().unwrap().to_owned());
    }
    let r = raw(
        &server,
        "GET",
        "/v1/tokens",
        "",
        &[("Authorization", format!("Bearer {TOKEN}").as_str())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for s in &secrets {
        assert!(!r.body.contains(s.as_str()), "{}", r.body);
    }
    assert!(!r.body.contains("hash"), "{}", r.body);
    let list: Value = serde_json::from_str(&r.body).unwrap();
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{list}");
    for t in tokens {
        assert_eq!(
            keys(t),
            [
                "created",
                "description",
                "expired",
                "expires",
                "id",
                "nodes",
                "zone"
            ],
            "{t}"
        );
        assert!(ids.contains(&t["id"].as_str().unwrap().to_owned()));
        assert_eq!(
            (&t["zone"], &t["expired"]),
            (&json!("example.test"), &json!(false))
        );
        let created = t["created"].as_u64().unwrap();
        assert!((t0..=now()).contains(&created), "{t}");
        assert_eq!(t["expires"].as_u64(), Some(created + 86400), "{t}");
    }
    let bot = tokens.iter().find(|t| t["nodes"] == "web-*").unwrap();
    assert_eq!(bot["description"], "deploy bot");
}

#[test]
fn a_invalid_token_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let cases = [
        (json!({"zone": "example.test", "nodes": "a*b"}), 422),
        (json!({"zone": "example.test", "nodes": "*a"}), 422),
        (json!({"zone": "example.test", "nodes": "bad_name"}), 422),
        (json!({"zone": "example.test", "nodes": ""}), 422),
        (json!({"zone": "nope.test", "nodes": "n1"}), 404),
        (
            json!({"zone": "example.test", "nodes": "n1", "expires_in": 0}),
            422,
        ),
        (
            json!({"zone": "example.test", "nodes": "n1", "admin": true}),
            400,
        ),
        (json!({"zone": "example.test"}), 400),
        (json!({"zone": "example.test", "nodes": 5}), 400),
    ];
    for (body, status) in cases {
        let r = server.call("POST", "/v1/tokens", Some(&body));
        assert_eq!(r.status, status, "{body}: {:?}", r.json);
        assert!(r.json["error"].is_string(), "{body}: {:?}", r.json);
    }
    // Only the admin makes tokens: without a token, or with a wrong one, 401.
    let body = json!({"zone": "example.test", "nodes": "*"});
    let r = server.call_as("POST", "/v1/tokens", Some(&body), None, &[]);
    assert_eq!(r.status, 401, "{:?}", r.json);
    let r = raw(
        &server,
        "POST",
        "/v1/tokens",
        &body.to_string(),
        &[("Authorization", format!("Bearer {WRONG}").as_str())],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.www_authenticate.is_some());
    assert!(!r.body.contains(WRONG), "{}", r.body);
    assert_eq!(
        server.call("GET", "/v1/tokens", None).json,
        json!({"tokens": []})
    );
}

fn herald_token(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_remove("HERALD_TOKEN")
        .env_remove("HERALD_API")
        .args(["token"])
        .args(&args[..1])
        .args(["--api", &server.api, "--token", TOKEN])
        .args(&args[1..])
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn a_herald_token_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let t0 = now();
    let out = herald_token(
        &server,
        &[
            "create",
            "--zone",
            "example.test",
            "--nodes",
            "web-*",
            "--expires-in",
            "1h",
            "--description",
            "d",
        ],
    );
    let stdout = ok(&out);
    // The secret alone, so that `$(herald token create …)` captures it.
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let secret = stdout.trim_end_matches('\n').to_owned();
    assert!(
        !secret.is_empty() && !secret.contains(char::is_whitespace),
        "{stdout:?}"
    );
    let put = as_token(
        &server,
        &secret,
        "PUT",
        "/v1/zones/example.test/nodes/web-1",
        Some(&json!({"commit": SHA1})),
    );
    assert_eq!(put.status, 201, "{:?}", put.json);
    let put = as_token(
        &server,
        &secret,
        "PUT",
        "/v1/zones/example.test/nodes/n1",
        Some(&json!({"commit": SHA1})),
    );
    assert_eq!(put.status, 403, "{:?}", put.json);

    let out = herald_token(
        &server,
        &[
            "create",
            "--zone",
            "example.test",
            "--nodes",
            "n1",
            "--json",
        ],
    );
    let created: Value = serde_json::from_str(&ok(&out)).expect("create --json prints JSON");
    assert_eq!(
        (&created["zone"], &created["nodes"], &created["expires"]),
        (&json!("example.test"), &json!("n1"), &Value::Null)
    );
    let second = created["token"].as_str().unwrap().to_owned();
    let second_id = created["id"].as_str().unwrap().to_owned();
    let put = with_key(
        &server,
        &second,
        "PUT",
        "/v1/zones/example.test/nodes/n1",
        Some(&json!({"commit": SHA1})),
    );
    assert_eq!(put.status, 201, "{:?}", put.json);

    let list: Value = serde_json::from_str(&ok(&herald_token(&server, &["list", "--json"])))
        .expect("list --json prints JSON");
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{list}");
    let first = tokens.iter().find(|t| t["nodes"] == "web-*").unwrap();
    let first_id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["description"], "d");
    let expires = first["expires"].as_u64().unwrap();
    assert!((t0 + 3600..=now() + 3600).contains(&expires), "{first}");

    let text = ok(&herald_token(&server, &["list"]));
    assert_eq!(text.lines().count(), 2, "{text}");
    let line = text.lines().find(|l| l.contains(&first_id)).unwrap();
    assert!(
        line.contains("web-*") && line.contains("example.test"),
        "{line}"
    );
    assert!(text.contains(&second_id), "{text}");
    for s in [&secret, &second] {
        assert!(!text.contains(s.as_str()) && !list.to_string().contains(s.as_str()));
    }

    ok(&herald_token(&server, &["revoke", &first_id]));
    let r = as_token(
        &server,
        &secret,
        "GET",
        "/v1/zones/example.test/nodes/web-1",
        None,
    );
    assert_eq!(r.status, 401, "{:?}", r.json);
    let out = herald_token(&server, &["revoke", &first_id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404"), "{err}");
    let text = ok(&herald_token(&server, &["list"]));
    assert!(
        !text.contains(&first_id) && text.contains(&second_id),
        "{text}"
    );

    // A scoped token cannot use the token commands.
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_remove("HERALD_TOKEN")
        .env_remove("HERALD_API")
        .args(["token", "list", "--api", &server.api, "--token", &second])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));

    let log = server.log();
    for s in [&secret, &second] {
        assert!(
            !log.contains(s.as_str()),
            "the log holds a token secret:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// B. The PowerDNS-compatible API.
// ---------------------------------------------------------------------------------------------

#[test]
fn b_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let r = with_key(&server, TOKEN, "GET", "/api", None);
    assert_eq!(
        (r.status, r.json),
        (200, json!([{"url": "/api/v1", "version": 1}]))
    );

    let r = with_key(&server, TOKEN, "GET", "/api/v1/servers/localhost", None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    let s = &r.json;
    assert_eq!(
        (&s["type"], &s["id"], &s["daemon_type"]),
        (
            &json!("Server"),
            &json!("localhost"),
            &json!("authoritative")
        )
    );
    let version = s["version"].as_str().unwrap();
    assert!(version.starts_with("4.9.0 (herald "), "{version}");
    assert!(
        s["zones_url"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/servers/localhost/zones")
    );

    let r = server.call("GET", "/api/v1/servers", None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json, json!([s]));
}

#[test]
fn b_zone_list_and_zone_object() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let ts = server.put("example.test", "n1", SHA1).json["ts"]
        .as_u64()
        .unwrap();
    let ts2 = server.put("example.test", "web-1", SHA256).json["ts"]
        .as_u64()
        .unwrap();
    let serial = server.call("GET", "/v1/zones/example.test", None).json["serial"]
        .as_u64()
        .unwrap();
    assert_eq!(soa_serial(&server), serial);

    let r = with_key(
        &server,
        TOKEN,
        "GET",
        "/api/v1/servers/localhost/zones",
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let zones = r.json.as_array().unwrap();
    assert_eq!(zones.len(), 1, "{:?}", r.json);
    let z = &zones[0];
    assert_eq!(
        (
            &z["id"],
            &z["name"],
            &z["url"],
            &z["kind"],
            &z["serial"],
            &z["dnssec"]
        ),
        (
            &json!("example.test."),
            &json!("example.test."),
            &json!(ZONE_URL),
            &json!("Native"),
            &json!(serial),
            &json!(true)
        ),
        "{z}"
    );
    assert!(z.get("rrsets").is_none(), "{z}");

    let with_dot = with_key(&server, TOKEN, "GET", ZONE_URL, None);
    assert_eq!(with_dot.status, 200, "{:?}", with_dot.json);
    let without = server.call("GET", "/api/v1/servers/localhost/zones/example.test", None);
    assert_eq!(without.status, 200, "{:?}", without.json);
    assert_eq!(with_dot.json, without.json);
    let zone = with_dot.json;
    for field in ["id", "name", "url", "kind", "serial", "dnssec"] {
        assert_eq!(zone[field], z[field], "{field}");
    }
    let rrsets = zone["rrsets"].as_array().expect("rrsets");
    let find = |name: &str, rtype: &str| -> Value {
        let found: Vec<&Value> = rrsets
            .iter()
            .filter(|r| r["name"] == name && r["type"] == rtype)
            .collect();
        assert_eq!(found.len(), 1, "{name} {rtype} in {rrsets:?}");
        found[0].clone()
    };
    for r in rrsets {
        assert_eq!(
            keys(r),
            ["comments", "name", "records", "ttl", "type"],
            "{r}"
        );
        assert_eq!(r["comments"], json!([]), "{r}");
        for rec in r["records"].as_array().unwrap() {
            assert_eq!(rec["disabled"], false, "{r}");
        }
    }
    assert_eq!(rrsets.len(), 6, "{rrsets:?}");

    let soa = find("example.test.", "SOA");
    let content = soa["records"][0]["content"].as_str().unwrap();
    let fields: Vec<&str> = content.split_whitespace().collect();
    assert_eq!(fields.len(), 7, "{content}");
    assert_eq!(fields[2], serial.to_string(), "{content}");
    assert_eq!(fields[3..], ["3600", "900", "1209600", "60"], "{content}");
    assert!(fields[0].starts_with("ns1.example.test"), "{content}");
    let ns = find("example.test.", "NS");
    assert_eq!(ns["records"][0]["content"], "ns1.example.test.");
    assert_eq!(ns["ttl"], 3600);
    let a = find("ns1.example.test.", "A");
    assert_eq!(
        a["records"],
        json!([{"content": "127.0.0.1", "disabled": false}])
    );
    let info = find("info.example.test.", "TXT");
    assert_eq!(
        info["records"][0]["content"],
        "\"Herald example zone: nodes are published through the admin API\""
    );
    let n1 = find("n1.example.test.", "TXT");
    assert_eq!(
        n1,
        json!({"name": "n1.example.test.", "type": "TXT", "ttl": 60, "comments": [],
               "records": [{"content": format!("\"v=herald1 commit={SHA1} seq=1 ts={ts}\""),
                            "disabled": false}]})
    );
    let web1 = find("web-1.example.test.", "TXT");
    assert_eq!(
        web1["records"][0]["content"],
        format!("\"v=herald1 commit={SHA256} seq=1 ts={ts2}\"")
    );

    let r = with_key(
        &server,
        TOKEN,
        "GET",
        &format!("{ZONE_URL}?rrsets=false"),
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(r.json.get("rrsets").is_none(), "{:?}", r.json);
    assert_eq!(r.json["serial"], serial);

    let r = with_key(
        &server,
        TOKEN,
        "GET",
        &format!("{ZONE_URL}?rrset_name=n1.example.test.&rrset_type=TXT"),
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["rrsets"], json!([n1]));

    let r = with_key(
        &server,
        TOKEN,
        "GET",
        &format!("{ZONE_URL}?rrset_type=TXT"),
        None,
    );
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert!(r.json["error"].is_string());
}

#[test]
fn b_patch_publishes_and_deletes_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let serial0 = soa_serial(&server);

    // The bare commit, then the two other content forms; Herald assigns seq and ts.
    let r = with_key(
        &server,
        TOKEN,
        "PATCH",
        ZONE_URL,
        Some(&patch(vec![replace(
            "n1.example.test.",
            &format!("\"{SHA1}\""),
        )])),
    );
    assert_eq!((r.status, &r.json), (204, &Value::Null));
    let n = node(&server, "n1").json;
    assert_eq!((&n["commit"], &n["seq"]), (&json!(SHA1), &json!(1)), "{n}");
    let m = query(server.dns, "n1.example.test.", RecordType::TXT, false);
    assert_eq!(
        txt(&m),
        [format!("v=herald1 commit={SHA1} seq=1 ts={}", n["ts"])]
    );
    assert_eq!(
        m.answers[0].ttl, 60,
        "the node TTL is served, not the PATCH's"
    );
    assert!(soa_serial(&server) > serial0);
    let zone = with_key(
        &server,
        TOKEN,
        "GET",
        &format!("{ZONE_URL}?rrsets=false"),
        None,
    );
    assert_eq!(zone.json["serial"], soa_serial(&server));

    let r = server.call(
        "PATCH",
        ZONE_URL,
        Some(&patch(vec![replace(
            "n1.example.test.",
            &format!("\"commit={SHA256}\""),
        )])),
    );
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert!(served(&server, "n1")[0].contains(&format!("commit={SHA256} seq=2 ")));

    let r = with_key(
        &server,
        TOKEN,
        "PATCH",
        "/api/v1/servers/localhost/zones/example.test",
        Some(&patch(vec![replace(
            "N1.Example.Test.",
            &format!("\"v=herald1 commit={SHA3} seq=99 ts=5\""),
        )])),
    );
    assert_eq!(r.status, 204, "{:?}", r.json);
    let n = node(&server, "n1").json;
    assert_eq!((&n["commit"], &n["seq"]), (&json!(SHA3), &json!(3)), "{n}");
    assert_ne!(n["ts"], 5);
    assert!(served(&server, "n1")[0].contains(&format!("commit={SHA3} seq=3 ")));

    // Fields Herald does not use are ignored.
    let body = json!({
        "kind": "Native",
        "serial": 1,
        "rrsets": [{
            "name": "n2.example.test.", "type": "TXT", "ttl": 3600, "changetype": "REPLACE",
            "modified_at": 1700000000,
            "records": [{"content": format!("\"{SHA1}\""), "disabled": false,
                         "name": "n2.example.test.", "type": "TXT", "priority": 0}],
            "comments": [{"content": "set by ci", "account": "ci", "modified_at": 1700000000}]
        }]
    });
    let r = with_key(&server, TOKEN, "PATCH", ZONE_URL, Some(&body));
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert_eq!(node(&server, "n2").json["commit"], SHA1);

    // Several RRsets: one change, one serial.
    let r = with_key(
        &server,
        TOKEN,
        "PATCH",
        ZONE_URL,
        Some(&patch(vec![
            replace("n3.example.test.", &format!("\"{SHA1}\"")),
            replace("n4.example.test.", &format!("\"{SHA256}\"")),
            json!({"name": "n2.example.test.", "type": "TXT", "changetype": "DELETE"}),
        ])),
    );
    assert_eq!(r.status, 204, "{:?}", r.json);
    let (n3, n4) = (node(&server, "n3").json, node(&server, "n4").json);
    assert_eq!(n3["serial"], n4["serial"]);
    assert_eq!(n3["serial"].as_u64().unwrap(), soa_serial(&server));
    assert_eq!(node(&server, "n2").status, 404);
    assert_eq!(rcode(&server, "n2"), ResponseCode::NXDomain);
    assert!(served(&server, "n4")[0].contains(SHA256));

    // DELETE, and REPLACE with no records, remove a node; removing a missing node is no error.
    let r = with_key(
        &server,
        TOKEN,
        "PATCH",
        ZONE_URL,
        Some(&patch(vec![
            json!({"name": "n1.example.test.", "type": "TXT", "changetype": "DELETE"}),
        ])),
    );
    assert_eq!((r.status, &r.json), (204, &Value::Null));
    assert_eq!(node(&server, "n1").status, 404);
    assert_eq!(rcode(&server, "n1"), ResponseCode::NXDomain);
    let r = with_key(
        &server,
        TOKEN,
        "PATCH",
        ZONE_URL,
        Some(&patch(vec![
            json!({"name": "n3.example.test.", "type": "TXT", "ttl": 60,
                                 "changetype": "REPLACE", "records": []}),
        ])),
    );
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert_eq!(node(&server, "n3").status, 404);
    assert_eq!(rcode(&server, "n3"), ResponseCode::NXDomain);
    let before = state(&server);
    let r = with_key(
        &server,
        TOKEN,
        "PATCH",
        ZONE_URL,
        Some(&patch(vec![
            json!({"name": "gone.example.test.", "type": "TXT", "changetype": "DELETE"}),
        ])),
    );
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert_eq!(state(&server).0, before.0);
    assert_eq!(node_names(&server, "example.test"), ["n4"]);
}

#[test]
fn b_refused_patches_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let (_, scoped) = make_token(&server, "example.test", "web-*");
    let before = state(&server);
    let serial = soa_serial(&server);

    let good = replace("n2.example.test.", &format!("\"{SHA256}\""));
    let q = |s: &str| format!("\"{s}\"");
    let cases: Vec<(&str, Value, u16)> = vec![
        (
            "type A",
            patch(vec![
                json!({"name": "n2.example.test.", "type": "A", "ttl": 300,
                              "changetype": "REPLACE",
                              "records": [{"content": "192.0.2.5", "disabled": false}]}),
            ]),
            422,
        ),
        (
            "DELETE of an A RRset",
            patch(vec![
                json!({"name": "ns1.example.test.", "type": "A", "changetype": "DELETE"}),
            ]),
            422,
        ),
        (
            "two labels",
            patch(vec![replace("a.b.example.test.", &q(SHA256))]),
            422,
        ),
        (
            "zone-file name",
            patch(vec![replace("ns1.example.test.", &q(SHA256))]),
            422,
        ),
        (
            "the apex",
            patch(vec![replace("example.test.", &q(SHA256))]),
            422,
        ),
        (
            "bad label",
            patch(vec![replace("bad_name.example.test.", &q(SHA256))]),
            422,
        ),
        (
            "another zone's name",
            patch(vec![replace("n2.other.test.", &q(SHA256))]),
            422,
        ),
        (
            "two records",
            patch(vec![
                json!({"name": "n2.example.test.", "type": "TXT", "ttl": 60,
                              "changetype": "REPLACE",
                              "records": [{"content": q(SHA1), "disabled": false},
                                          {"content": q(SHA256), "disabled": false}]}),
            ]),
            422,
        ),
        (
            "unquoted",
            patch(vec![replace("n2.example.test.", SHA256)]),
            422,
        ),
        (
            "bad commit",
            patch(vec![replace("n2.example.test.", "\"zz\"")]),
            422,
        ),
        (
            "short commit",
            patch(vec![replace("n2.example.test.", "\"commit=abc\"")]),
            422,
        ),
        (
            "two strings",
            patch(vec![replace(
                "n2.example.test.",
                &format!("{} \"x\"", q(SHA256)),
            )]),
            422,
        ),
        (
            "disabled",
            patch(vec![
                json!({"name": "n2.example.test.", "type": "TXT", "ttl": 60,
                              "changetype": "REPLACE",
                              "records": [{"content": q(SHA256), "disabled": true}]}),
            ]),
            422,
        ),
        (
            "duplicate",
            patch(vec![good.clone(), replace("n2.example.test.", &q(SHA3))]),
            422,
        ),
        (
            "duplicate with DELETE",
            patch(vec![
                good.clone(),
                json!({"name": "N2.example.test.", "type": "TXT", "changetype": "DELETE"}),
            ]),
            422,
        ),
        (
            "bad changetype",
            patch(vec![
                json!({"name": "n2.example.test.", "type": "TXT", "changetype": "ADD",
                              "records": [{"content": q(SHA256), "disabled": false}]}),
            ]),
            422,
        ),
        (
            "valid then invalid",
            patch(vec![
                good.clone(),
                json!({"name": "n1.example.test.", "type": "TXT", "changetype": "DELETE"}),
                replace("n3.example.test.", "\"not-a-commit\""),
            ]),
            422,
        ),
        (
            "valid then zone-file name",
            patch(vec![good.clone(), replace("ns1.example.test.", &q(SHA3))]),
            422,
        ),
        ("not JSON", json!("rrsets"), 400),
    ];
    for (what, body, status) in &cases {
        let r = with_key(&server, TOKEN, "PATCH", ZONE_URL, Some(body));
        assert_eq!(r.status, *status, "{what}: {body} -> {:?}", r.json);
        assert!(r.json["error"].is_string(), "{what}: {:?}", r.json);
        assert_eq!(state(&server), before, "{what} changed the zone");
    }

    // A DELETE of a zone-file RRset is refused: it is not a node, and a 204 would tell the
    // client it was deleted. The record stays served.
    let body = patch(vec![
        json!({"name": "info.example.test.", "type": "TXT", "changetype": "DELETE"}),
    ]);
    let r = with_key(&server, TOKEN, "PATCH", ZONE_URL, Some(&body));
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert!(
        r.json["error"].as_str().unwrap().contains("zone file"),
        "{:?}",
        r.json
    );
    assert_eq!(state(&server).0, before.0);
    assert_eq!(
        served(&server, "info"),
        ["Herald example zone: nodes are published through the admin API"]
    );

    // 404 for a zone Herald does not serve; 401 without a valid key; 403 outside the scope.
    let body = patch(vec![replace("n2.other.test.", &q(SHA256))]);
    let r = with_key(
        &server,
        TOKEN,
        "PATCH",
        "/api/v1/servers/localhost/zones/other.test.",
        Some(&body),
    );
    assert_eq!(r.status, 404, "{:?}", r.json);
    assert!(r.json["error"].is_string());
    let r = with_key(
        &server,
        TOKEN,
        "GET",
        "/api/v1/servers/localhost/zones/other.test.",
        None,
    );
    assert_eq!(r.status, 404, "{:?}", r.json);

    let body = patch(vec![good.clone()]).to_string();
    for headers in [
        vec![("X-API-Key", WRONG)],
        vec![("Authorization", "Bearer wrong-e2e-token-0123456789abcdef")],
        vec![],
    ] {
        let r = raw(&server, "PATCH", ZONE_URL, &body, &headers);
        assert_eq!(r.status, 401, "{headers:?}: {}", r.body);
        assert!(
            r.www_authenticate.is_some(),
            "{headers:?}: no WWW-Authenticate"
        );
        let json: Value = serde_json::from_str(&r.body).unwrap();
        assert!(json["error"].is_string(), "{}", r.body);
        assert!(
            !r.body.contains(WRONG),
            "the error echoes the key: {}",
            r.body
        );
    }
    for path in [
        "/api",
        "/api/v1/servers",
        "/api/v1/servers/localhost/zones",
        ZONE_URL,
    ] {
        let r = raw(&server, "GET", path, "", &[("X-API-Key", WRONG)]);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(r.www_authenticate.is_some(), "{path}: no WWW-Authenticate");
    }

    for rrsets in [
        vec![replace("n1.example.test.", &q(SHA256))],
        vec![json!({"name": "n1.example.test.", "type": "TXT", "changetype": "DELETE"})],
        vec![
            replace("web-1.example.test.", &q(SHA256)),
            replace("n2.example.test.", &q(SHA256)),
        ],
    ] {
        let body = patch(rrsets);
        for r in [
            with_key(&server, &scoped, "PATCH", ZONE_URL, Some(&body)),
            as_token(&server, &scoped, "PATCH", ZONE_URL, Some(&body)),
        ] {
            assert_eq!(r.status, 403, "{body}: {:?}", r.json);
            assert!(r.json["error"].is_string());
            assert!(!r.json.to_string().contains(&scoped));
        }
    }
    assert_eq!(state(&server), before);
    assert_eq!(soa_serial(&server), serial);
    let m = query(server.dns, "n1.example.test.", RecordType::TXT, false);
    assert!(txt(&m)[0].contains(&format!("commit={SHA1} seq=1 ")));
    for name in ["n2", "n3", "web-1"] {
        assert_eq!(rcode(&server, name), ResponseCode::NXDomain, "{name}");
    }

    // The scoped token may change its own nodes through the PowerDNS API.
    let r = with_key(
        &server,
        &scoped,
        "PATCH",
        ZONE_URL,
        Some(&patch(vec![replace("web-1.example.test.", &q(SHA256))])),
    );
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert!(served(&server, "web-1")[0].contains(SHA256));
    let log = server.log();
    assert!(!log.contains(&scoped) && !log.contains(TOKEN), "{log}");
}

#[test]
fn b_scoped_token_sees_only_its_zone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &two_zones(dir.path()));
    let (_, scoped) = make_token(&server, "example.test", "web-*");
    let r = with_key(
        &server,
        &scoped,
        "GET",
        "/api/v1/servers/localhost/zones",
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let names: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.test."]);
    let r = with_key(
        &server,
        TOKEN,
        "GET",
        "/api/v1/servers/localhost/zones",
        None,
    );
    let names: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.test.", "fleet.test."]);

    let r = with_key(&server, &scoped, "GET", ZONE_URL, None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    let fleet = "/api/v1/servers/localhost/zones/fleet.test.";
    let r = with_key(&server, &scoped, "GET", fleet, None);
    assert_eq!(r.status, 403, "{:?}", r.json);
    let r = with_key(
        &server,
        &scoped,
        "PATCH",
        fleet,
        Some(&patch(vec![replace(
            "web-1.fleet.test.",
            &format!("\"{SHA1}\""),
        )])),
    );
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert!(r.json["error"].is_string());
    assert!(node_names(&server, "fleet.test").is_empty());
}

#[test]
fn b_notify() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let before = state(&server);
    for path in [
        format!("{ZONE_URL}/notify"),
        "/api/v1/servers/localhost/zones/example.test/notify".into(),
    ] {
        let r = with_key(&server, TOKEN, "PUT", &path, None);
        assert_eq!(r.status, 200, "{path}: {:?}", r.json);
        assert!(r.json["result"].is_string(), "{:?}", r.json);
    }
    let r = with_key(
        &server,
        TOKEN,
        "PUT",
        "/api/v1/servers/localhost/zones/other.test./notify",
        None,
    );
    assert_eq!(r.status, 404, "{:?}", r.json);
    assert_eq!(state(&server), before);
}

#[test]
fn b_other_powerdns_routes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let before = state(&server);
    let new_zone = json!({"name": "new.test.", "kind": "Native", "nameservers": ["ns1.new.test."]});
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/api/v1/servers/localhost/zones".into(),
            Some(new_zone),
        ),
        ("DELETE", ZONE_URL.into(), None),
        ("PUT", ZONE_URL.into(), Some(json!({"kind": "Master"}))),
        ("GET", format!("{ZONE_URL}/cryptokeys"), None),
        (
            "POST",
            format!("{ZONE_URL}/cryptokeys"),
            Some(json!({"keytype": "ksk", "active": true})),
        ),
        ("GET", format!("{ZONE_URL}/metadata"), None),
        ("GET", format!("{ZONE_URL}/export"), None),
        ("PUT", format!("{ZONE_URL}/rectify"), None),
        (
            "GET",
            "/api/v1/servers/localhost/search-data?q=x".into(),
            None,
        ),
        ("GET", "/api/v1/servers/localhost/statistics".into(), None),
        ("GET", "/api/v1/servers/localhost/config".into(), None),
        ("GET", "/api/v1/servers/localhost/tsigkeys".into(), None),
        (
            "PUT",
            "/api/v1/servers/localhost/cache/flush?domain=example.test.".into(),
            None,
        ),
    ];
    for (method, path, body) in &cases {
        let r = with_key(&server, TOKEN, method, path, body.as_ref());
        assert!(
            [404, 405].contains(&r.status),
            "{method} {path}: {} {:?}",
            r.status,
            r.json
        );
        assert!(r.json["error"].is_string(), "{method} {path}: {:?}", r.json);
    }
    assert_eq!(state(&server), before);
    let r = with_key(&server, TOKEN, "GET", ZONE_URL, None);
    assert_eq!(r.status, 200, "the zone survived DELETE: {:?}", r.json);
    assert!(served(&server, "n1")[0].contains(SHA1));
}

// ---------------------------------------------------------------------------------------------
// B with curl, sending the bodies of PowerDNS's documentation ("Creating new RRset",
// "Deleting a RRset"), adapted to a node of example.test.
// ---------------------------------------------------------------------------------------------

/// `curl -s -X PATCH -H 'X-API-Key: …' --data '…' URL -w '%{http_code}'`: (body, status).
fn curl_patch(server: &Server, key: &str, data: &str) -> (String, u16) {
    let out = Command::new("curl")
        .args(["-s", "-X", "PATCH", "-H"])
        .arg(format!("X-API-Key: {key}"))
        .arg("--data")
        .arg(data)
        .arg(format!("{}{ZONE_URL}", server.api))
        .args(["-w", "\n%{http_code}"])
        .output()
        .expect("curl runs (apt-get install curl)");
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), code.parse().unwrap())
}

#[test]
#[ignore = "needs curl"]
fn curl_documentation_examples() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());

    // "Creating new RRset", for a node's TXT record.
    let create = format!(
        r#"{{"rrsets": [ {{"name": "n1.example.test.", "type": "TXT", "ttl": 86400, "changetype": "REPLACE", "records": [ {{"content": "\"{SHA1}\"", "disabled": false }} ] }} ] }}"#
    );
    let (body, code) = curl_patch(&server, TOKEN, &create);
    assert_eq!((code, body.as_str()), (204, ""));
    let m = query(server.dns, "n1.example.test.", RecordType::TXT, false);
    assert!(
        txt(&m)[0].contains(&format!("commit={SHA1} seq=1 ")),
        "{:?}",
        txt(&m)
    );
    assert_eq!(m.answers[0].ttl, 60);

    // The same, as the documentation has it: an A record, which Herald does not serve.
    let before = state(&server);
    let a = r#"{"rrsets": [ {"name": "test.example.test.", "type": "A", "ttl": 86400, "changetype": "REPLACE", "records": [ {"content": "192.0.2.5", "disabled": false } ] } ] }"#;
    let (body, code) = curl_patch(&server, TOKEN, a);
    assert_eq!(code, 422, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(json["error"].is_string(), "{body}");
    assert_eq!(state(&server), before);
    assert_eq!(rcode(&server, "test"), ResponseCode::NXDomain);

    // A wrong key.
    let (body, code) = curl_patch(&server, WRONG, &create.replace(SHA1, SHA256));
    assert_eq!(code, 401, "{body}");
    assert!(!body.contains(WRONG), "{body}");
    assert_eq!(state(&server), before);

    // "Deleting a RRset".
    let delete =
        r#"{"rrsets": [ {"name": "n1.example.test.", "type": "TXT", "changetype": "DELETE" } ] }"#;
    let (body, code) = curl_patch(&server, TOKEN, delete);
    assert_eq!((code, body.as_str()), (204, ""));
    assert_eq!(rcode(&server, "n1"), ResponseCode::NXDomain);
    assert_eq!(node(&server, "n1").status, 404);
    // Again: the RRset is gone, which is no error.
    let (body, code) = curl_patch(&server, TOKEN, delete);
    assert_eq!((code, body.as_str()), (204, ""));
}

// ---------------------------------------------------------------------------------------------
// C. powerdns-cli, a PowerDNS API client from PyPI.
// ---------------------------------------------------------------------------------------------

fn powerdns_cli(server: &Server, key: &str, args: &[&str]) -> Output {
    let bin = std::env::var("POWERDNS_CLI").unwrap_or_else(|_| "powerdns-cli".into());
    let (command, rest) = args.split_at(2);
    Command::new(&bin)
        .args(command)
        .args(["-a", key, "-u", &server.api])
        .args(rest)
        .output()
        .unwrap_or_else(|e| panic!("{bin} runs (pip install powerdns-cli==1.2.3): {e}"))
}

fn show(out: &Output) -> String {
    format!(
        "{:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
#[ignore = "needs powerdns-cli"]
fn powerdns_cli_replaces_and_deletes_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let commit = format!("\"commit={SHA1}\"");
    let out = powerdns_cli(
        &server,
        TOKEN,
        &["record", "replace", "n1", "example.test.", "txt", &commit],
    );
    assert!(out.status.success(), "{}", show(&out));
    let n = node(&server, "n1").json;
    assert_eq!((&n["commit"], &n["seq"]), (&json!(SHA1), &json!(1)), "{n}");
    assert!(served(&server, "n1")[0].contains(&format!("commit={SHA1} seq=1 ")));

    let commit = format!("\"commit={SHA256}\"");
    let out = powerdns_cli(
        &server,
        TOKEN,
        &["record", "replace", "n1", "example.test.", "txt", &commit],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(served(&server, "n1")[0].contains(&format!("commit={SHA256} seq=2 ")));
    assert_eq!(node(&server, "n1").json["seq"], 2);

    let out = powerdns_cli(
        &server,
        TOKEN,
        &[
            "record",
            "delete",
            "--all",
            "n1",
            "example.test.",
            "txt",
            "x",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(node(&server, "n1").status, 404);
    assert_eq!(rcode(&server, "n1"), ResponseCode::NXDomain);
}

#[test]
#[ignore = "needs powerdns-cli"]
fn powerdns_cli_with_a_scoped_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let (_, scoped) = make_token(&server, "example.test", "web-*");
    let before = state(&server);

    let commit = format!("\"commit={SHA256}\"");
    let out = powerdns_cli(
        &server,
        &scoped,
        &["record", "replace", "n1", "example.test.", "txt", &commit],
    );
    assert!(!out.status.success(), "out of scope, yet: {}", show(&out));
    assert_eq!(state(&server), before);
    assert!(served(&server, "n1")[0].contains(&format!("commit={SHA1} seq=1 ")));

    let out = powerdns_cli(
        &server,
        &scoped,
        &[
            "record",
            "delete",
            "--all",
            "n1",
            "example.test.",
            "txt",
            "x",
        ],
    );
    // powerdns-cli reads the zone first; the scoped token's view has no n1, so the client
    // reports "already absent" and sends nothing. Either way n1 must stay.
    assert_eq!(state(&server), before, "{}", show(&out));
    assert!(served(&server, "n1")[0].contains(&format!("commit={SHA1} seq=1 ")));

    let out = powerdns_cli(
        &server,
        &scoped,
        &[
            "record",
            "replace",
            "web-1",
            "example.test.",
            "txt",
            &commit,
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(served(&server, "web-1")[0].contains(&format!("commit={SHA256} seq=1 ")));
    assert!(!server.log().contains(&scoped));
}
