//! Handler tests through `app().oneshot(…)`: every status of DESIGN.md, and after every refusal
//! a check that nothing changed.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hickory_proto::op::{Message, Query as HQuery};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::dns::answer::{Transport, respond};
use crate::zone::file::load_dir;

const TOKEN: &str = "test-admin-token-0123456789";
const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

struct Harness {
    _dir: tempfile::TempDir,
    app: Router,
    zones: SharedZones,
    dns_up: Arc<AtomicBool>,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let zones_dir = dir.path().join("zones");
    std::fs::create_dir(&zones_dir).unwrap();
    std::fs::write(
        zones_dir.join("example.test.zone"),
        "$TTL 3600\n@ IN SOA ns1 hostmaster 100 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n",
    )
    .unwrap();
    let db = Store::path_in(dir.path());
    let store = Store::open(&db).unwrap();
    let reader = Store::open_reader(&db).unwrap();
    let control_store = Store::open(&db).unwrap();
    let files = load_dir(&zones_dir).unwrap();
    let zone_config = files
        .iter()
        .map(|f| {
            let config = ZoneConfig {
                file: f.clone(),
                node_ttl: 60,
            };
            (f.name.clone(), config)
        })
        .collect();
    let (publisher, zones, _thread) = crate::publish::start(
        store,
        crate::publish::Setup {
            zones: &files,
            policies: &Default::default(),
            data_dir: dir.path(),
            clock: Arc::new(crate::record::SystemClock),
            journal: Default::default(),
        },
    )
    .unwrap();
    let dns_up = Arc::new(AtomicBool::new(true));
    let up = dns_up.clone();
    let state = AppState {
        publisher,
        reader: Arc::new(Mutex::new(reader)),
        zones: zones.clone(),
        auth: Arc::new(Auth::new(TOKEN)),
        dns_up: Arc::new(move || up.load(Ordering::Relaxed)),
        secondaries: Default::default(),
        control_store: Arc::new(Mutex::new(control_store)),
        zone_config: Arc::new(arc_swap::ArcSwap::from_pointee(zone_config)),
        notify_now: Arc::new(|_: &str| {}),
        query_stats: Default::default(),
        metrics_public: true,
        expiry_cache: Default::default(),
        report_silent_after: 3 * 3600,
        states_cache: Default::default(),
        wake_rollouts: Arc::new(|| {}),
    };
    Harness {
        _dir: dir,
        app: app(state),
        zones,
        dns_up,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Harness {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.call_raw(
            method,
            uri,
            body.map(|b| b.to_string()),
            Some(TOKEN),
            headers,
        )
        .await
    }

    async fn call_raw(
        &self,
        method: Method,
        uri: &str,
        body: Option<String>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"))
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn put(&self, node: &str, commit: &str) -> Reply {
        let uri = format!("/v1/zones/example.test/nodes/{node}");
        self.call(Method::PUT, &uri, Some(json!({"commit": commit})), &[])
            .await
    }

    /// Everything observable about the zone: its JSON and every node.
    async fn state(&self) -> (Value, Value) {
        let zone = self
            .call(Method::GET, "/v1/zones/example.test", None, &[])
            .await
            .json;
        let nodes = self
            .call(
                Method::GET,
                "/v1/zones/example.test/nodes?limit=1000",
                None,
                &[],
            )
            .await
            .json;
        (zone, nodes)
    }

    /// The TXT string DNS serves for `name` right now, if any.
    fn dns_txt(&self, name: &str) -> Option<String> {
        let mut q = Message::query();
        q.add_query(HQuery::query(
            Name::from_ascii(name).unwrap(),
            RecordType::TXT,
        ));
        let mut out = Vec::new();
        assert!(respond(
            &self.zones.load(),
            &q.to_vec().unwrap(),
            Transport::Udp,
            &mut out
        ));
        let m = Message::from_vec(&out).unwrap();
        m.answers.first().map(|r| match &r.data {
            RData::TXT(t) => String::from_utf8(t.txt_data[0].to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
    }
}

fn assert_error(reply: &Reply, status: StatusCode, needle: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.json);
    let msg = reply.json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error body: {:?}", reply.json));
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

#[tokio::test]
async fn publish_read_and_see_it_in_dns() {
    let h = harness();
    let r = h.put("N1", A).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json["zone"], "example.test");
    assert_eq!(r.json["node"], "n1");
    assert_eq!(r.json["name"], "n1.example.test.");
    assert_eq!(r.json["commit"], A);
    assert_eq!(r.json["seq"], 1);
    assert_eq!(r.json["serial"], 101);
    assert!(r.json["ts"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(r.headers["etag"], "\"1\"");
    // Visible in DNS by the time the API answered.
    let txt = h.dns_txt("n1.example.test.").unwrap();
    assert!(
        txt.starts_with(&format!("v=herald1 commit={A} seq=1 ts=")),
        "{txt}"
    );

    let r = h.put("n1", B).await;
    assert_eq!(
        (r.status, r.json["seq"].clone(), r.json["serial"].clone()),
        (StatusCode::OK, json!(2), json!(102))
    );
    assert!(
        h.dns_txt("n1.example.test.")
            .unwrap()
            .contains(&format!("commit={B} seq=2"))
    );

    let r = h
        .call(Method::GET, "/v1/zones/example.test./nodes/n1", None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.json["commit"].as_str(), r.json["seq"].as_u64()),
        (Some(B), Some(2))
    );
    assert_eq!(r.headers["etag"], "\"2\"");

    let z = h
        .call(Method::GET, "/v1/zones/example.test", None, &[])
        .await;
    assert_eq!(
        (
            z.json["zone"].as_str(),
            z.json["serial"].as_u64(),
            z.json["nodes"].as_u64()
        ),
        (Some("example.test"), Some(102), Some(1))
    );
    let dnskey = z.json["dnskey"][0].as_str().unwrap();
    assert!(
        dnskey.starts_with("example.test. 3600 IN DNSKEY 257 3 13 "),
        "{dnskey}"
    );
    let ds = z.json["ds"][0].as_str().unwrap();
    assert!(
        ds.starts_with("example.test. 3600 IN DS ") && ds.contains(" 13 2 "),
        "{ds}"
    );
    // The private key never appears in an answer.
    let key_file = std::fs::read_to_string(h._dir.path().join("keys/example.test.key")).unwrap();
    let secret = key_file
        .lines()
        .find_map(|l| l.strip_prefix("private-key: "))
        .unwrap();
    assert!(!z.json.to_string().contains(secret));
    let all = h.call(Method::GET, "/v1/zones", None, &[]).await;
    assert_eq!(all.json["zones"][0], z.json);
}

#[tokio::test]
async fn delete_and_history() {
    let h = harness();
    h.put("n1", A).await;
    h.put("n1", B).await;
    let r = h
        .call(Method::DELETE, "/v1/zones/example.test/nodes/n1", None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.json, Value::Null);
    assert_eq!(h.dns_txt("n1.example.test."), None);
    assert_error(
        &h.call(Method::GET, "/v1/zones/example.test/nodes/n1", None, &[])
            .await,
        StatusCode::NOT_FOUND,
        "does not exist",
    );
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes/n1/history",
            None,
            &[],
        )
        .await;
    let seqs: Vec<u64> = r.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 1]);
    assert_eq!(r.json["history"][0]["commit"], B);
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes/n1/history?limit=1",
            None,
            &[],
        )
        .await;
    assert_eq!(r.json["history"].as_array().unwrap().len(), 1);
    // Re-publishing continues the seq.
    let r = h.put("n1", A).await;
    assert_eq!(
        (r.status, r.json["seq"].as_u64()),
        (StatusCode::CREATED, Some(3))
    );
}

#[tokio::test]
async fn listing_pages() {
    let h = harness();
    for n in ["d", "a", "c", "b", "e"] {
        h.put(n, A).await;
    }
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes?limit=2",
            None,
            &[],
        )
        .await;
    let names = |v: &Value| -> Vec<String> {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        (names(&r.json), r.json["next"].clone()),
        (vec!["a".into(), "b".into()], json!("b"))
    );
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes?after=b&limit=2",
            None,
            &[],
        )
        .await;
    assert_eq!(
        (names(&r.json), r.json["next"].clone()),
        (vec!["c".into(), "d".into()], json!("d"))
    );
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes?after=d&limit=2",
            None,
            &[],
        )
        .await;
    assert_eq!(
        (names(&r.json), r.json["next"].clone()),
        (vec!["e".into()], Value::Null)
    );
    let r = h
        .call(Method::GET, "/v1/zones/example.test/nodes", None, &[])
        .await;
    assert_eq!(names(&r.json).len(), 5);
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let h = harness();
    h.put("old", A).await;
    let body = json!({"set": [{"node": "x1", "commit": A}, {"node": "X2", "commit": B}], "delete": ["old"]});
    let r = h
        .call(
            Method::POST,
            "/v1/zones/example.test/batch",
            Some(body),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["serial"], 102);
    assert_eq!(r.json["deleted"], json!(["old"]));
    assert_eq!(r.json["nodes"][1]["node"], "x2");
    assert!(h.dns_txt("x2.example.test.").is_some());
    assert_eq!(h.dns_txt("old.example.test."), None);

    let before = h.state().await;
    let cases = [
        (
            json!({"set": [{"node": "y", "commit": A}], "delete": ["missing"]}),
            StatusCode::NOT_FOUND,
            "missing does not exist",
        ),
        (
            json!({"set": [{"node": "y", "commit": A}, {"node": "Y", "commit": B}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "more than once",
        ),
        (
            json!({"set": [{"node": "y", "commit": A}], "delete": ["y"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "more than once",
        ),
        (
            json!({"set": [{"node": "y", "commit": A}, {"node": "z", "commit": "nothex"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "set[1]",
        ),
        (
            json!({"set": [{"node": "-bad", "commit": A}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "set[0]",
        ),
        (
            json!({"delete": ["a.b"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "delete[0]",
        ),
        (
            json!({"set": [{"node": "ns1", "commit": A}]}),
            StatusCode::CONFLICT,
            "zone file",
        ),
        (
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing to set",
        ),
        (
            json!({"set": [{"node": "y"}]}),
            StatusCode::BAD_REQUEST,
            "commit",
        ),
        (json!({"set": "y"}), StatusCode::BAD_REQUEST, "invalid JSON"),
    ];
    for (body, status, needle) in cases {
        let r = h
            .call(
                Method::POST,
                "/v1/zones/example.test/batch",
                Some(body.clone()),
                &[],
            )
            .await;
        assert_error(&r, status, needle);
        assert_eq!(h.state().await, before, "{body} changed something");
    }
    assert_eq!(h.dns_txt("y.example.test."), None);
}

#[tokio::test]
async fn every_error_status_changes_nothing() {
    let h = harness();
    h.put("n1", A).await;
    let before = h.state().await;
    let put = |node: &str| format!("/v1/zones/example.test/nodes/{node}");
    let commit = Some(json!({"commit": B}).to_string());

    // 400: malformed JSON, a missing field, a bad If-Match, a bad query string.
    for (body, needle) in [
        ("{", "invalid JSON"),
        ("{\"comit\": \"x\"}", "commit"),
        ("[]", "invalid JSON"),
        ("", "invalid JSON"),
    ] {
        let r = h
            .call_raw(Method::PUT, &put("n1"), Some(body.into()), Some(TOKEN), &[])
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, needle);
    }
    let r = h
        .call_raw(
            Method::PUT,
            &put("n1"),
            commit.clone(),
            Some(TOKEN),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "If-Match");
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes?limit=abc",
            None,
            &[],
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "limit");

    // 401: no token, a wrong one, another scheme.
    for token in [None, Some("wrong-token-0123456789")] {
        let r = h
            .call_raw(Method::PUT, &put("n1"), commit.clone(), token, &[])
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "token");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    let r = h
        .call_raw(
            Method::GET,
            "/v1/zones",
            None,
            None,
            &[("authorization", &format!("Basic {TOKEN}"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // 404: unknown zone, node, route.
    let r = h
        .call(
            Method::PUT,
            "/v1/zones/other.test/nodes/n1",
            Some(json!({"commit": B})),
            &[],
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "other.test is not served");
    let r = h.call(Method::DELETE, &put("ghost"), None, &[]).await;
    assert_error(&r, StatusCode::NOT_FOUND, "ghost does not exist");
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes/ghost/history",
            None,
            &[],
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "no history");
    assert_error(
        &h.call(Method::GET, "/v2/nothing", None, &[]).await,
        StatusCode::NOT_FOUND,
        "no such route",
    );

    // 405.
    let r = h.call(Method::POST, &put("n1"), None, &[]).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method");

    // 409: a name of the zone file.
    assert_error(&h.put("ns1", A).await, StatusCode::CONFLICT, "zone file");

    // 412: If-Match on a different seq, or on a node that does not exist.
    let r = h
        .call(
            Method::PUT,
            &put("n1"),
            Some(json!({"commit": B})),
            &[("if-match", "\"7\"")],
        )
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "current seq: 1");
    let r = h
        .call(
            Method::PUT,
            &put("new"),
            Some(json!({"commit": B})),
            &[("if-match", "*")],
        )
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "none");
    let r = h
        .call(Method::DELETE, &put("n1"), None, &[("if-match", "\"2\"")])
        .await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, "If-Match");

    // 413: a body over the limit.
    let huge = format!("{{\"commit\": \"{}\"}}", "a".repeat(MAX_BODY));
    let r = h
        .call_raw(Method::PUT, &put("n1"), Some(huge), Some(TOKEN), &[])
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "larger than");

    // 422: bad node names (a dot, Unicode, a space, as the path carries them) and commits.
    // Uppercase is not among them: names are case-insensitive and stored lowercase.
    for node in [
        "-n",
        "n_1",
        &"a".repeat(64),
        "n1.sub",
        "n%C3%B6",
        "%F0%9F%92%A5",
        "n%201",
        "%00",
    ] {
        assert_error(
            &h.put(node, A).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "node name",
        );
    }
    for c in ["abc", &"ab".repeat(20).to_uppercase(), &format!("{A}0"), ""] {
        assert_error(
            &h.put("n1", c).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "commit",
        );
    }
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes?limit=0",
            None,
            &[],
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "limit");
    let r = h
        .call(
            Method::GET,
            "/v1/zones/example.test/nodes?limit=1001",
            None,
            &[],
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "limit");

    assert_eq!(h.state().await, before);
    assert!(
        h.dns_txt("n1.example.test.")
            .unwrap()
            .contains(&format!("commit={A} seq=1"))
    );
    assert_eq!(h.dns_txt("new.example.test."), None);
}

#[tokio::test]
async fn if_match_allows_the_current_seq() {
    let h = harness();
    h.put("n1", A).await;
    let uri = "/v1/zones/example.test/nodes/n1";
    let r = h
        .call(
            Method::PUT,
            uri,
            Some(json!({"commit": B})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(
        (r.status, r.json["seq"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    let r = h
        .call(Method::DELETE, uri, None, &[("if-match", "2")])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn healthz_needs_no_token_and_reports_dns() {
    let h = harness();
    let r = h.call_raw(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    h.dns_up.store(false, Ordering::Relaxed);
    let r = h.call_raw(Method::GET, "/healthz", None, None, &[]).await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "dns");
}

/// Each route reads only what it needs: a single node or a token takes 16 KiB, a batch up to
/// 16 MiB. Over the limit is 413, announced or not, and writes nothing.
#[tokio::test]
async fn each_route_has_a_body_limit_that_fits_it() {
    let h = harness();
    let put = |node: &str| format!("/v1/zones/example.test/nodes/{node}");
    // 20 KiB of whitespace around a valid body: valid JSON, but more than a node needs.
    let padded = |body: Value| format!("{}{body}", " ".repeat(20 * 1024));
    let body = padded(json!({ "commit": A }));
    let len = body.len().to_string();
    for headers in [vec![], vec![("content-length", len.as_str())]] {
        let r = h
            .call_raw(
                Method::PUT,
                &put("n1"),
                Some(body.clone()),
                Some(TOKEN),
                &headers,
            )
            .await;
        assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "limit of 16384 bytes");
    }
    assert_eq!(
        h.call(Method::GET, &put("n1"), None, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let token = padded(json!({ "zone": "example.test", "nodes": "n*" }));
    let r = h
        .call_raw(Method::POST, "/v1/tokens", Some(token), Some(TOKEN), &[])
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "limit of 16384 bytes");
    // Just under the limit is fine.
    let fits = format!("{}{}", " ".repeat(16 * 1024 - 100), json!({ "commit": A }));
    let r = h
        .call_raw(Method::PUT, &put("n1"), Some(fits), Some(TOKEN), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // A batch of about 1 MiB is well within its own limit.
    let set: Vec<Value> = (0..12_000)
        .map(|i| json!({ "node": format!("node-{i:05}"), "commit": A }))
        .collect();
    let batch = json!({ "set": set }).to_string();
    assert!(batch.len() > 700 * 1024, "{}", batch.len());
    let r = h
        .call_raw(
            Method::POST,
            "/v1/zones/example.test/batch",
            Some(batch),
            Some(TOKEN),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
}
