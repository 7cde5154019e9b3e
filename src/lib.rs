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
//! Data flows one way: API → publish → store (durable) + dnssec (signed) → zone snapshot
//! (prepared answers) → DNS answers. A write goes down the first list, a query reads only the
//! last part of it.
//!
//! - [`api`]: the axum admin API, its auth and errors, JSON types, and the `herald publish`
//!   client; its writes go to [`publish`], its reads to a read-only [`store`] connection;
//! - [`publish`]: the single writer. Every change enters here; its group commit runs store
//!   transaction → sign → persist signatures and journal → commit → swap → answer. The only
//!   part that joins [`store`] and [`dnssec`];
//! - [`store`]: SQLite: schema and migrations, nodes, history, stored signatures, the IXFR
//!   journal; every write one fsynced transaction;
//! - [`dnssec`]: keys, signing policy, the signer, NSEC/NSEC3 records, and the signed working
//!   zone with its refresh; plain values in, plain values out, no SQLite;
//! - [`zone`]: zone files, the immutable snapshot the DNS path reads (prepared wire-format
//!   entries, name index, denial chain), the in-memory journal;
//! - [`dns`]: sockets and the lean query path over prepared answers; TCP; transfers, NOTIFY,
//!   TSIG. It reads the snapshot only: no SQLite, no signing, no keys;
//! - [`record`]: the TXT payload, node labels and commits, the clock and serial arithmetic;
//!   shared by everyone, the node side included;
//! - [`config`]: values of settings (durations, sizes, prefixes) and secret files;
//! - [`client`]: the node side: query, validate against the trust anchor, state, watch loop.
//!   It shares only [`record`] with the server;
//! - [`serve`]: wiring for `herald serve`: start-up order, sockets, shutdown.
//!
//! `src/main.rs` only parses the command line, installs the signal handler and calls into
//! these. The layering above is checked by a test of this file.

pub mod api;
pub mod client;
pub mod config;
pub mod dns;
pub mod dnssec;
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
        ("config", &["config"]),
        ("store", &["store", "record"]),
        ("zone", &["zone", "record"]),
        // Never the store: signatures go back to publish as plain values.
        ("dnssec", &["dnssec", "zone", "record", "config"]),
        // The only part that uses both the store and the signing code.
        ("publish", &["publish", "store", "dnssec", "zone", "record"]),
        // The DNS path reads snapshots: no store, no keys, no signer.
        ("dns", &["dns", "zone", "record"]),
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
            ],
        ),
        // The node side shares only the record format (and the clock) with the server.
        ("client", &["client", "record"]),
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
            ],
        ),
    ];

    /// Every `crate::a::b` path used in `code`, as its lowercase segments (`a::b`); comments
    /// are skipped.
    fn crate_paths(code: &str) -> Vec<String> {
        let mut paths = Vec::new();
        for line in code.lines().map(str::trim_start) {
            if line.starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                let path = rest[..end].trim_end_matches(':');
                if !path.is_empty() {
                    paths.push(path.to_owned());
                }
            }
        }
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
                // Inline test modules come last in a file.
                let code = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
                out.push((path.display().to_string(), code));
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
            for used in crate_paths(code) {
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
                    let k = crate::dnssec::keys::ZoneKey::load(x);\n";
        assert_eq!(crate_paths(code), ["store", "dnssec::keys"]);
        assert!(covers("dnssec", "dnssec::keys"));
        assert!(!covers("dnssec::policy", "dnssec::keys"));
        assert!(!covers("dns", "dnssec"));
    }
}
