//! The status page in a real browser: headless Chromium from Debian, driven by Selenium
//! (tests/e2e/ui_check.py), against a server with a rollout in progress. What the page shows
//! is compared with the API, its Pause button pauses the rollout, and its screenshot is kept
//! in `target/status-page.png` (CI keeps it as an artifact).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn api(server: &Server, path: &str) -> Value {
    let r = server.call("GET", path, None);
    assert_eq!(r.status, 200, "{path}: {:?}", r.json);
    r.json
}

#[test]
fn the_status_page_is_served_with_a_strict_policy_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &repo_zones());
    for (path, kind) in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let res = ureq::get(format!("{}{path}", server.api)).call().unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    // Offline: the page loads nothing from anywhere else.
    let page = ureq::get(format!("{}/ui/", server.api))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    // `/ui` leads to the page; the data stays behind the token.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let res = agent.get(format!("{}/ui", server.api)).call().unwrap();
    assert_eq!(res.status().as_u16(), 308);
    assert_eq!(res.headers()["location"], "/ui/");
    let r = server.call_as("GET", "/v1/zones", None, None, &[]);
    assert_eq!(r.status, 401);
}

#[test]
#[ignore = "needs chromium, chromium-driver and selenium"]
fn the_status_page_shows_what_the_api_says_and_pauses_a_rollout() {
    let python = std::env::var("SELENIUM_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let notify = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(&data, &repo_zones(), Some(TOKEN), &["--notify", &notify]);
    let names: Vec<String> = (0..24).map(|i| format!("n{i:02}")).collect();
    let set: Vec<Value> = names
        .iter()
        .map(|n| json!({"node": n, "commit": SHA1}))
        .collect();
    let r = server.call(
        "POST",
        "/v1/zones/example.test/batch",
        Some(&json!({ "set": set })),
    );
    assert_eq!(r.status, 200);
    let anchor = dir.path().join("anchor.key");
    write_anchor(&data, &anchor);
    let watch = |node: &str, exec: &str| {
        let key = report_key_file(&data, dir.path(), node);
        watch_once(dir.path(), server.dns, &anchor, node, &key, exec)
    };
    for n in ["n20", "n21", "n22"] {
        assert!(watch(n, "true").status.success());
    }
    // A rollout held in its first wave: an hour's interval, and every node must report.
    let r = server.call(
        "POST",
        "/v1/zones/example.test/rollouts",
        Some(
            &json!({"commit": SHA256, "nodes": "*", "waves": [50, 100], "interval": 3600,
            "max_failed": 5}),
        ),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let id = r.json["id"].as_u64().unwrap();
    let path = format!("/v1/zones/example.test/rollouts/{id}");
    wait_for(Duration::from_secs(20), "the first wave", || {
        api(&server, &path)["progress"][0]["published"].as_u64() > Some(2)
    });
    // Two of its nodes apply it, one fails.
    let first: Vec<String> = names
        .iter()
        .filter(|n| herald::store::place(id, n, &[50, 100]) == 0)
        .cloned()
        .collect();
    assert!(watch(&first[0], "true").status.success());
    assert!(watch(&first[1], "true").status.success());
    assert_eq!(watch(&first[2], "exit 3").status.code(), Some(1));
    wait_for(Duration::from_secs(10), "the reports counted", || {
        let w = &api(&server, &path)["progress"][0];
        (w["applied"].as_u64(), w["failed"].as_u64()) == (Some(2), Some(1))
    });

    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/ui_check.py");
    let out = Command::new(&python)
        .arg(script)
        .args([&server.api, TOKEN, &id.to_string()])
        .arg(&screenshot)
        .output()
        .unwrap_or_else(|e| panic!("{python} runs (pip install selenium): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let [before, after, searched] = &lines[..] else {
        panic!("three lines: {stdout}");
    };

    // The zone as the API has it.
    let zone = api(&server, "/v1/zones/example.test");
    let shown = &before["zones"]["example.test"];
    assert_eq!(shown["serial"], zone["serial"]);
    assert_eq!(shown["nodes"], zone["nodes"]);
    for state in ["current", "behind", "failed", "silent"] {
        assert_eq!(shown[state], zone["node_states"][state], "{state}");
    }
    assert_eq!(before["secondaries"], json!([notify]));
    // The rollout, wave by wave.
    let rollout = api(&server, &path);
    let card = &before["rollouts"][id.to_string()];
    assert_eq!(card["state"], "running");
    assert_eq!(
        card["buttons"],
        json!(["Pause", "Abort", "Abort and revert"])
    );
    for (w, api_wave) in rollout["progress"].as_array().unwrap().iter().enumerate() {
        let shown = &card["waves"][w];
        for k in ["label", "nodes", "published", "applied", "failed"] {
            assert_eq!(shown[k], api_wave[k], "wave {w} {k}");
        }
    }
    assert_eq!(card["waves"][0]["applied"], 2);
    // The node table: the first page, each node as the API shows it.
    let page = api(&server, "/v1/zones/example.test/nodes?limit=50");
    let table = before["nodes"].as_object().unwrap();
    assert_eq!(table.len(), names.len());
    for n in page["nodes"].as_array().unwrap() {
        let row = &table[n["node"].as_str().unwrap()];
        assert_eq!(row["commit"], n["commit"]);
        assert_eq!(row["seq"], n["seq"]);
        let status = n["applied"]["status"].as_str().unwrap_or("no report");
        assert_eq!(row["status"], status, "{n}");
    }
    // Pause, pressed on the page.
    assert_eq!(rollout["state"], "paused");
    let card = &after["rollouts"][id.to_string()];
    assert_eq!(card["state"], "paused");
    assert_eq!(
        card["buttons"],
        json!(["Resume", "Abort", "Abort and revert"])
    );
    // The search.
    let found = api(&server, "/v1/zones/example.test/nodes?prefix=n0&limit=50");
    let names: Vec<&str> = found["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    let mut shown: Vec<&str> = searched
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    shown.sort();
    assert_eq!(shown, names);
    assert_eq!(names.len(), 10);
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
}
