//! Herald: an authoritative DNS server that tells a fleet which configuration commit each node
//! should run, through one DNSSEC-signed TXT record per node.
//!
//! An operator publishes "node `n1` runs commit `3f2a…`" through the admin API; Herald stores it
//! durably in SQLite, signs it, and serves `n1.<zone> TXT` as
//! `v=herald1 commit=<hex> seq=<n> ts=<unix>`. `../shared/DESIGN.md` of the project is the
//! contract: record format, DNS behaviour, API, CLI.
//!
//! # Layout
//!
//! Data flows one way: API, UPDATE or rollout → publish → store (durable) + dnssec (signed) → zone snapshot
//! (prepared answers) → DNS answers. A write goes down the first list, a query reads only the
//! last part of it.
//!
//! - [`api`]: the axum admin API, its auth and scopes, errors, JSON types, the PowerDNS
//!   subset, rollouts and the deny-list, the status page, its OpenAPI document, and the admin
//!   client; its writes go to [`publish`] (tokens, the deny-list and rollout states, which are
//!   not zone data, to a connection of their own), its reads to a read-only [`store`]
//!   connection;
//! - [`publish`]: the single writer. Every change enters here; its group commit runs store
//!   transaction → sign → persist signatures and journal → commit → swap → answer. The only
//!   part that joins [`store`] and [`dnssec`]. Its rollout driver publishes rollout waves
//!   through the same writer;
//! - [`store`]: SQLite: schema and migrations, nodes, history, stored signatures, the IXFR
//!   journal, tokens, node reports, rollouts and the deny-list; every write one fsynced
//!   transaction;
//! - [`dnssec`]: keys, signing policy, the signer, NSEC/NSEC3 records, and the signed working
//!   zone with its refresh; plain values in, plain values out, no SQLite;
//! - [`zone`]: zone files, the immutable snapshot the DNS path reads (prepared wire-format
//!   entries, name index, denial chain), the in-memory journal;
//! - [`dns`]: sockets and the lean query path over prepared answers; TCP; DNS cookies and
//!   response rate limiting; transfers, NOTIFY, TSIG, and RFC 2136 UPDATE intake, which hands changes to [`publish`]. It reads the
//!   snapshot only: no SQLite, no signing, no keys;
//! - [`record`]: the TXT payload, node labels and commits, scopes, the clock and serial
//!   arithmetic; shared by everyone, the node side included;
//! - [`config`]: values of settings (durations, sizes, prefixes) and secret files;
//! - [`client`]: the node side: query, validate against the trust anchor, state, watch loop.
//!   It shares only [`record`] with the server;
//! - [`serve`]: wiring for `herald serve`: start-up order, sockets, shutdown;
//! - [`metrics`]: the counters the query and write paths keep for `/metrics`, per thread
//!   on the query path;
//! - [`backup`]: `herald backup` and `herald restore`, consistent copies of the data directory
//!   and the epoch step that keeps a restore from reusing a seq.
//!
//! `src/main.rs` only parses the command line, installs the signal handler and calls into
//! these. The layering above is checked by a test of this file.

pub mod api;
pub mod backup;
pub mod client;
pub mod config;
pub mod dns;
pub mod dnssec;
pub mod metrics;
pub mod publish;
pub mod record;
pub mod serve;
pub mod store;
pub mod zone;

#[cfg(test)]
mod layering {
    //! The layout of the crate docs above, held against the code: each part may use only the
    //! parts listed for it. Test code is exempt (it may build a signed zone to test the DNS
    //! path, say).

    use std::path::Path;

    /// Per part (a top-level file or folder of `src/`), the `crate::` paths it may use. An
    /// entry allows the path and everything below it.
    const ALLOWED: &[(&str, &[&str])] = &[
        ("record", &[]),
        // Counters only: everyone may count into them.
        ("metrics", &[]),
        ("config", &["config"]),
        ("store", &["store", "record"]),
        ("zone", &["zone", "record"]),
        // Never the store: signatures go back to publish as plain values.
        ("dnssec", &["dnssec", "zone", "record", "config"]),
        // The only part that uses both the store and the signing code; the zones' report
        // secrets are private files like the keys.
        (
            "publish",
            &[
                "publish",
                "store",
                "dnssec",
                "zone",
                "record",
                "metrics",
                "config::secret",
            ],
        ),
        // The DNS path reads snapshots: no store, no keys, no signer. UPDATE intake hands its
        // changes to the single writer.
        ("dns", &["dns", "zone", "record", "publish", "metrics"]),
        (
            "api",
            &[
                "api",
                "publish",
                "store",
                "zone",
                "record",
                "config",
                "dns::secondaries",
                "metrics",
            ],
        ),
        // The node side shares only the record format (and the clock) with the server.
        ("client", &["client", "record"]),
        // Copies of the data directory: the store through SQLite, the rest as files.
        ("backup", &["backup", "store"]),
        (
            "serve",
            &[
                "serve",
                "api",
                "publish",
                "store",
                "zone",
                "dns",
                "dnssec::policy",
                "record",
                "config",
                "metrics",
            ],
        ),
    ];

    /// The lowercase leading segments of a path (`a::b` of `a::b::C` or `a::b::{…}`).
    fn segments(path: &str) -> &str {
        let end = path
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':'))
            .unwrap_or(path.len());
        path[..end].trim_end_matches(':')
    }

    /// The items of a `{a, b::c, d::{e, f}}` group at its top level.
    fn group(text: &str) -> Vec<&str> {
        let (mut depth, mut start, mut items) = (0, 1, Vec::new());
        for (i, c) in text.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    items.push(text[start..i].trim());
                    start = i + 1;
                    if c == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        items
    }

    /// Every crate path that `code`, the code of module `module` (`["dns", "answer"]`), uses:
    /// `crate::a::b`, the items of `crate::{…}`, and `super::` paths that climb out to the
    /// crate root; each as its lowercase segments (`a::b`). Comments are skipped.
    fn crate_paths(code: &str, module: &[&str]) -> Vec<String> {
        let mut paths = Vec::new();
        let mut push = |rest: &str| {
            if rest.starts_with('{') {
                paths.extend(group(rest).into_iter().map(|i| segments(i).to_owned()));
            } else {
                paths.push(segments(rest).to_owned());
            }
        };
        for line in code.lines().map(str::trim_start) {
            if line.starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                push(&line[at + "crate::".len()..]);
            }
            let mut rest = line;
            while let Some(at) = rest.find("super::") {
                let mut tail = &rest[at..];
                let mut up = 0;
                while let Some(t) = tail.strip_prefix("super::") {
                    tail = t;
                    up += 1;
                }
                if up >= module.len() {
                    push(tail);
                }
                rest = tail;
            }
        }
        paths.retain(|p| !p.is_empty());
        paths
    }

    /// Whether `allowed` (`a` or `a::b`) covers `path`.
    fn covers(allowed: &str, path: &str) -> bool {
        path == allowed || path.starts_with(&format!("{allowed}::"))
    }

    /// The non-test code of every `.rs` file below `dir`, with its path.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                sources(&path, out);
            } else if name.ends_with(".rs") && name != "tests.rs" && name != "testing.rs" {
                let text = std::fs::read_to_string(&path).unwrap();
                // An inline test module comes last in its file.
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
                out.push((path.display().to_string(), code.to_owned()));
            }
        }
    }

    #[test]
    fn each_part_uses_only_the_parts_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut checked = 0;
        let mut violations = Vec::new();
        for (path, code) in &files {
            let rel = path.strip_prefix(&format!("{}/", src.display())).unwrap();
            let part = rel.split('/').next().unwrap().trim_end_matches(".rs");
            if part == "lib" || part == "main" {
                continue;
            }
            let allowed = ALLOWED
                .iter()
                .find(|(p, _)| *p == part)
                .unwrap_or_else(|| panic!("{rel}: part {part} is not in the layout"))
                .1;
            let module: Vec<&str> = rel
                .trim_end_matches(".rs")
                .trim_end_matches("/mod")
                .split('/')
                .collect();
            for used in crate_paths(code, &module) {
                checked += 1;
                if !allowed.iter().any(|a| covers(a, &used)) {
                    violations.push(format!("{rel} uses crate::{used}"));
                }
            }
        }
        assert!(checked > 50, "only {checked} crate paths found");
        assert!(violations.is_empty(), "{}", violations.join("\n"));
    }

    #[test]
    fn the_checker_sees_what_it_must_refuse() {
        let code = "use crate::store::{self, Store};\n// crate::dnssec in a comment\n\
                    let k = crate::dnssec::keys::ZoneKey::load(x);\n\
                    use crate::{api, dnssec::{sign, keys}};\n\
                    use super::super::zone::Zone;\nuse super::tcp;\n";
        assert_eq!(
            crate_paths(code, &["dns", "answer"]),
            ["store", "dnssec::keys", "api", "dnssec", "zone"],
            "super::super climbs from dns::answer to the crate root; super:: stays in dns"
        );
        assert_eq!(crate_paths("use super::store;", &["dns"]), ["store"]);
        assert!(crate_paths("use super::*;", &["dnssec", "signed", "build"]).is_empty());
        assert!(covers("dnssec", "dnssec::keys"));
        assert!(!covers("dnssec::policy", "dnssec::keys"));
        assert!(!covers("dns", "dnssec"));
    }
}
