//! `herald import`: bulk publishing from CSV and JSON lines through the batch API, chunk by
//! chunk, against the real server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;

use crate::harness::*;

/// `herald import` against `server` with the admin token; `args` are the rest.
fn import(server: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["import", "--api", &server.api, "--token", TOKEN])
        .args(args)
        .output()
        .unwrap()
}

/// A SHA-1-like commit made from `i`.
fn commit(i: usize) -> String {
    format!("{i:08x}").repeat(5)
}

/// `n{i},<commit>` for `range`, one per line.
fn csv_lines(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("n{i},{}", commit(i))).collect()
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The summary `--json` prints.
fn summary(out: &Output) -> Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

/// How many nodes the zone holds.
fn zone_nodes(server: &Server) -> u64 {
    let reply = server.call("GET", "/v1/zones/example.test", None);
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    reply.json["nodes"].as_u64().unwrap()
}

/// A node's commit and seq.
fn node(server: &Server, node: &str) -> (String, u64) {
    let reply = server.call("GET", &format!("/v1/zones/example.test/nodes/{node}"), None);
    assert_eq!(reply.status, 200, "{node}: {:?}", reply.json);
    (
        reply.json["commit"].as_str().unwrap().to_owned(),
        reply.json["seq"].as_u64().unwrap(),
    )
}

/// The plain progress lines, one per published chunk.
fn progress_lines(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("imported "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn imports_100000_lines_in_10_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let mut lines = vec!["node,commit".to_owned()];
    lines.extend(csv_lines(0..100_000));
    let file = write(dir.path(), "nodes.csv", &lines);

    let started = Instant::now();
    let out = import(
        &server,
        &[
            "--zone",
            "example.test",
            "--chunk",
            "10000",
            "--json",
            file.to_str().unwrap(),
        ],
    );
    let took = started.elapsed();
    let s = summary(&out);
    eprintln!(
        "imported 100000 nodes in {took:.1?}: {}",
        text(&out.stdout).trim()
    );
    assert_eq!(
        (&s["published"], &s["skipped"], &s["chunks"], &s["nodes"]),
        (
            &Value::from(100_000),
            &Value::from(0),
            &Value::from(10),
            &Value::from(100_000)
        ),
        "{s}"
    );
    assert_eq!(s["format"], "csv");
    // Stderr is not a terminal: one line per chunk, with the lines it covered.
    let progress = progress_lines(&out);
    assert_eq!(progress.len(), 10, "{}", text(&out.stderr));
    assert!(
        progress[0].starts_with("imported 10000/100000 nodes (lines 2-10001), "),
        "{}",
        progress[0]
    );
    assert!(
        progress[9].starts_with("imported 100000/100000 nodes (lines 90002-100001), "),
        "{}",
        progress[9]
    );

    assert_eq!(zone_nodes(&server), 100_000);
    for i in [0, 1, 9_999, 10_000, 54_321, 99_999] {
        assert_eq!(node(&server, &format!("n{i}")), (commit(i), 1), "n{i}");
    }
}

#[test]
fn a_bad_line_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let mut lines = csv_lines(0..100_000);
    // Line 50,001: a commit one digit short.
    lines[50_000] = format!("n50000,{}", &commit(50_000)[1..]);
    let file = write(dir.path(), "nodes.csv", &lines);

    let out = import(
        &server,
        &[
            "--zone",
            "example.test",
            "--chunk",
            "10000",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: line 50001: commit must be 40 or 64 hex digits",
            file.display()
        )),
        "{err}"
    );
    assert!(progress_lines(&out).is_empty(), "{err}");
    assert_eq!(zone_nodes(&server), 0);
}

#[test]
fn a_refused_chunk_stops_the_import_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    // ns1 is a name of the zone file: the API refuses the whole 3rd chunk (lines 20001-30000).
    let mut lines = csv_lines(0..40_000);
    lines[25_000] = format!("ns1,{}", commit(25_000));
    let file = write(dir.path(), "nodes.csv", &lines);
    let path = file.to_str().unwrap();
    let resume = || {
        import(
            &server,
            &[
                "--zone",
                "example.test",
                "--chunk",
                "10000",
                "--skip-unchanged",
                "--json",
                path,
            ],
        )
    };

    let out = import(
        &server,
        &["--zone", "example.test", "--chunk", "10000", path],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "chunk 3 of 4 (lines 20001-30000) failed after 2 chunks with 20000 nodes, up to line \
             20000, were published; rerun with --skip-unchanged to resume: 409: node ns1 \
             collides with a name of the zone file"
        ),
        "{err}"
    );
    assert_eq!(progress_lines(&out).len(), 2, "{err}");
    assert_eq!(zone_nodes(&server), 20_000);
    assert_eq!(node(&server, "n19999"), (commit(19_999), 1));
    assert_eq!(
        server
            .call("GET", "/v1/zones/example.test/nodes/n20000", None)
            .status,
        404
    );

    // The operator fixes the line and resumes: only the last 20000 nodes are published.
    lines[25_000] = format!("n25000,{}", commit(25_000));
    write(dir.path(), "nodes.csv", &lines);
    let out = resume();
    let s = summary(&out);
    assert_eq!(
        (&s["published"], &s["skipped"], &s["chunks"]),
        (&Value::from(20_000), &Value::from(20_000), &Value::from(2)),
        "{s}"
    );
    let progress = progress_lines(&out);
    assert_eq!(progress.len(), 2, "{}", text(&out.stderr));
    assert!(
        progress[0].starts_with("imported 10000/20000 nodes (lines 20001-30000), "),
        "{}",
        progress[0]
    );
    assert_eq!(zone_nodes(&server), 40_000);
    // Nothing was published twice.
    for i in [0, 19_999, 20_000, 25_000, 39_999] {
        assert_eq!(node(&server, &format!("n{i}")), (commit(i), 1), "n{i}");
    }

    // A second resumed run has nothing left to do.
    let out = resume();
    let s = summary(&out);
    assert_eq!(
        (&s["published"], &s["skipped"], &s["chunks"]),
        (&Value::from(0), &Value::from(40_000), &Value::from(0)),
        "{s}"
    );
    assert_eq!(node(&server, "n0"), (commit(0), 1));
}

#[test]
fn json_lines_import_and_duplicates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let mut lines = vec!["# exported from the inventory".to_owned()];
    lines
        .extend((0..1000).map(|i| {
            serde_json::json!({"node": format!("n{i}"), "commit": commit(i)}).to_string()
        }));
    let file = write(dir.path(), "nodes.jsonl", &lines);
    let out = import(
        &server,
        &[
            "--zone",
            "example.test.",
            "--chunk",
            "300",
            "--json",
            file.to_str().unwrap(),
        ],
    );
    let s = summary(&out);
    assert_eq!(
        (&s["published"], &s["chunks"], &s["format"]),
        (
            &Value::from(1000),
            &Value::from(4),
            &Value::from("json-lines")
        ),
        "{s}"
    );
    assert_eq!(zone_nodes(&server), 1000);
    assert_eq!(node(&server, "n999"), (commit(999), 1));

    // A node twice (here in another case) is refused before anything is published.
    let mut lines: Vec<String> = (0..500)
        .map(|i| serde_json::json!({"node": format!("m{i}"), "commit": commit(i)}).to_string())
        .collect();
    lines.push(serde_json::json!({"node": "M7", "commit": commit(1)}).to_string());
    let file = write(dir.path(), "dup.jsonl", &lines);
    let out = import(
        &server,
        &[
            "--zone",
            "example.test",
            "--chunk",
            "100",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: line 501: node m7 is already on line 8",
            file.display()
        )),
        "{err}"
    );
    assert_eq!(zone_nodes(&server), 1000);
    assert_eq!(
        server
            .call("GET", "/v1/zones/example.test/nodes/m0", None)
            .status,
        404
    );
}
