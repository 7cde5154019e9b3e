//! The TOML configuration file of `herald serve --config FILE` (DESIGN.md, "Command line").
//!
//! Read with serde and the `toml` crate. Every key of the file is a flag of `herald serve`
//! (kebab-case, as on the command line); zones carry their own signing settings, NOTIFY
//! targets and transfer ACL; secrets come from files (`admin-token-file`, a TSIG key's
//! `secret-file`), never from the file itself. Unknown keys, a missing or unknown `version`,
//! and values of the wrong form are errors naming the file, the line and the key: the values
//! are checked while the file is read ([`value`](super::value)), so `toml` points at them.
//! What only the server can check (a key's secret file, a zone's signing settings) keeps the
//! line of its table ([`Spanned`]) for its error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use thiserror::Error;
use toml::Spanned;

use super::value;

/// The one version of the file this Herald reads.
pub const VERSION: u32 = 1;

/// Why a configuration file cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    /// The message of `toml` names the line, the column and the key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: version {found} is not supported; this Herald reads version = {VERSION}")]
    Version { path: PathBuf, found: u32 },
}

/// The file as written. Each field is `None` (or empty) when the file does not set it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub version: u32,
    /// The data directory (store, keys, token).
    pub data: Option<PathBuf>,
    /// The directory of zone files.
    pub zones_dir: Option<PathBuf>,
    /// DNS addresses (UDP and TCP).
    pub dns: Option<Vec<SocketAddr>>,
    /// The admin API's address.
    pub api: Option<SocketAddr>,
    /// A file holding the admin token.
    pub admin_token_file: Option<PathBuf>,
    /// PEM files of the API's TLS certificate chain and private key.
    pub api_tls_cert: Option<PathBuf>,
    pub api_tls_key: Option<PathBuf>,
    /// Serve the API in plain HTTP on an address other than loopback.
    pub allow_plain_http: Option<bool>,
    /// Serve `/metrics` without a token on an API address other than loopback.
    pub metrics_public: Option<bool>,
    /// Prefixes allowed to transfer every zone without TSIG.
    #[serde(default, deserialize_with = "prefixes")]
    pub allow_transfer: Option<Vec<IpNet>>,
    #[serde(default)]
    pub tsig_key: Vec<Spanned<TsigKeyEntry>>,
    /// NOTIFY targets for every zone.
    #[serde(default)]
    pub notify: Vec<Spanned<NotifyEntry>>,
    pub journal_max_entries: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    pub journal_max_age: Option<u32>,
    #[serde(default, deserialize_with = "size")]
    pub journal_max_bytes: Option<u64>,
    /// A node whose latest report is older than this is `silent`.
    #[serde(default, deserialize_with = "duration")]
    pub report_silent_after: Option<u32>,
    /// A file holding the DNS cookie secret (32 hex digits); and one holding the staging
    /// secret, accepted beside it during a rollover.
    pub cookie_secret_file: Option<PathBuf>,
    pub cookie_staging_secret_file: Option<PathBuf>,
    /// Response rate limiting on (off by default; any `rrl-*` key switches it on too).
    pub rrl: Option<bool>,
    /// Answers per second to one /24 or /56.
    pub rrl_rate: Option<u32>,
    /// NXDOMAIN answers per second to one /24 or /56.
    pub rrl_nxdomain_rate: Option<u32>,
    /// Every Nth answer held back is sent truncated (0: none).
    pub rrl_slip: Option<u32>,
    /// Per zone (by name): its own settings.
    #[serde(default)]
    pub zone: BTreeMap<String, Spanned<ZoneEntry>>,
}

/// `[[tsig-key]]`: a TSIG key, its secret in a file, and its scope.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TsigKeyEntry {
    pub name: String,
    pub algorithm: String,
    /// A file holding the base64 secret (as `tsig-keygen` or `keymgr` print it).
    pub secret_file: PathBuf,
    /// The scope: the zone whose nodes the key may update.
    pub zone: Option<String>,
    /// The nodes of `zone` it may update: a name, `prefix*` or `*` (the default).
    pub nodes: Option<String>,
}

/// `[[notify]]`, or an entry of a zone's `notify`: a secondary to tell of new serials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifyEntry {
    /// IP, IP:PORT or [IPv6]:PORT; port 53 by default.
    pub address: String,
    /// The name of a `[[tsig-key]]` that signs the NOTIFY.
    pub key: Option<String>,
}

/// `[zone."name"]`: what one zone has of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ZoneEntry {
    /// `13` (ECDSA P-256) or `15` (Ed25519), or their names.
    #[serde(default, deserialize_with = "text_or_number")]
    pub algorithm: Option<String>,
    /// `nsec` or `nsec3`.
    pub denial: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub validity: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub refresh: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub inception_offset: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    pub node_ttl: Option<String>,
    /// The nodes' RFC 5011 hold-down, which a key rollover waits for.
    #[serde(default, deserialize_with = "duration_text")]
    pub holddown: Option<String>,
    /// How long a change takes to reach every secondary.
    #[serde(default, deserialize_with = "duration_text")]
    pub propagation: Option<String>,
    /// NOTIFY targets of this zone only.
    #[serde(default)]
    pub notify: Vec<NotifyEntry>,
    /// Prefixes allowed to transfer this zone only.
    #[serde(default, deserialize_with = "prefixes")]
    pub allow_transfer: Option<Vec<IpNet>>,
}

impl ZoneEntry {
    /// The signing settings given, as `key=value` in the form of `--dnssec`.
    pub fn signing_settings(&self) -> Vec<(&'static str, &str)> {
        [
            ("algorithm", &self.algorithm),
            ("denial", &self.denial),
            ("validity", &self.validity),
            ("refresh", &self.refresh),
            ("inception-offset", &self.inception_offset),
            ("node-ttl", &self.node_ttl),
            ("holddown", &self.holddown),
            ("propagation", &self.propagation),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<(FileConfig, String), FileError> {
    let text = std::fs::read_to_string(path).map_err(|cause| FileError::Read {
        path: path.to_owned(),
        cause,
    })?;
    let config = parse(path, &text)?;
    Ok((config, text))
}

/// Checks `text`, the content of `path`.
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, FileError> {
    // The version first, so that a file of another version gets that error rather than one
    // about a key this version does not know.
    #[derive(Deserialize)]
    struct Version {
        version: Option<toml::Value>,
    }
    // The message and the line, never the offending line itself: toml's own text quotes the
    // source, and a value written where it should not be may be a secret.
    let parse_err = |e: toml::de::Error| FileError::Parse {
        path: path.to_owned(),
        message: match e.span() {
            Some(span) => {
                let line = line_of(text, span.start);
                match key_on(text, line) {
                    Some(key) => format!("line {line}, {key}: {}", e.message().trim_end()),
                    None => format!("line {line}: {}", e.message().trim_end()),
                }
            }
            None => e.message().trim_end().to_owned(),
        },
    };
    let version: Version = toml::from_str(text).map_err(parse_err)?;
    match version.version {
        Some(toml::Value::Integer(n)) if n == i64::from(VERSION) => {}
        Some(toml::Value::Integer(n)) => {
            return Err(FileError::Version {
                path: path.to_owned(),
                found: u32::try_from(n).unwrap_or(u32::MAX),
            });
        }
        _ => {
            return Err(FileError::Parse {
                path: path.to_owned(),
                message: format!("`version = {VERSION}` is missing or not a number"),
            });
        }
    }
    toml::from_str(text).map_err(parse_err)
}

/// The key written on line `line` of `text` (what stands before its `=`), or the table it
/// opens: named in errors, where the value itself is not repeated.
fn key_on(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim();
    if l.starts_with('[') {
        return Some(l.to_owned());
    }
    let (key, _) = l.split_once('=')?;
    Some(format!("key `{}`", key.trim()))
}

/// The line (from 1) of byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<IpNet>>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| value::prefix(t).map_err(serde::de::Error::custom))
        .collect::<Result<_, _>>()
        .map(Some)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let text = TextOrNumber::deserialize(d)?.into_text();
    value::duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = TextOrNumber::deserialize(d)?.into_text();
    value::size(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// A duration, checked here (so the error has its line) and kept as written.
fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = TextOrNumber::deserialize(d)?.into_text();
    value::duration(&text).map_err(serde::de::Error::custom)?;
    Ok(Some(text))
}

fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(TextOrNumber::deserialize(d)?.into_text()))
}

/// A value written either way: `ttl = 60` or `ttl = "60s"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrNumber {
    Text(String),
    Number(u64),
}

impl TextOrNumber {
    fn into_text(self) -> String {
        match self {
            Self::Text(t) => t,
            Self::Number(n) => n.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<FileConfig, FileError> {
        parse(Path::new("herald.toml"), text)
    }

    #[test]
    fn reads_every_key() {
        let c = parse_str(
            r#"
version = 1
data = "/var/lib/herald"
zones-dir = "/etc/herald/zones"
dns = ["0.0.0.0:53", "[::]:53"]
api = "127.0.0.1:8053"
admin-token-file = "/run/credentials/herald.service/admin-token"
allow-transfer = ["192.0.2.0/24", "2001:db8::1"]
journal-max-entries = 500
journal-max-age = "7d"
journal-max-bytes = "8M"

[[tsig-key]]
name = "xfr.example."
algorithm = "hmac-sha256"
secret-file = "/run/credentials/herald.service/xfr.key"

[[notify]]
address = "192.0.2.11"
key = "xfr.example."

[zone."example.test"]
algorithm = 15
denial = "nsec3"
node-ttl = 300
allow-transfer = ["198.51.100.7"]
notify = [{ address = "198.51.100.7:5300" }]
"#,
        )
        .unwrap();
        assert_eq!(c.dns.unwrap().len(), 2);
        assert_eq!(c.allow_transfer.unwrap()[1].to_string(), "2001:db8::1/128");
        assert_eq!(
            (c.journal_max_age, c.journal_max_bytes),
            (Some(7 * 86_400), Some(8 << 20))
        );
        assert_eq!(c.tsig_key[0].get_ref().name, "xfr.example.");
        let zone = c.zone["example.test"].get_ref();
        assert_eq!(
            zone.signing_settings(),
            [
                ("algorithm", "15"),
                ("denial", "nsec3"),
                ("node-ttl", "300")
            ]
        );
        assert_eq!(zone.notify[0].address, "198.51.100.7:5300");
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        for (text, needles) in [
            (
                "version = 1\ncolour = \"blue\"\n",
                &["line 2", "colour"][..],
            ),
            (
                "version = 1\n\n[zone.\"x.test\"]\nvalidity = \"forever\"\n",
                &["line 4", "forever", "not a duration"],
            ),
            (
                "version = 1\nallow-transfer = [\"10.0.0.0/33\"]\n",
                &["line 2", "not an address prefix"],
            ),
            ("version = 1\ndns = [\"nowhere\"]\n", &["line 2", "dns"]),
            (
                "version = 1\n[[tsig-key]]\nname = \"k\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0\"\n",
                &["line 5", "secret", "secret-file"],
            ),
            (
                "version = 1\nadmin-token = \"hunter2-hunter2-hunter2\"\n",
                &["line 2", "admin-token"],
            ),
            ("data = \"/x\"\n", &["version = 1", "missing"]),
            ("version = 2\n", &["version 2", "version = 1"]),
            ("version = 1\ndata = \n", &["line 2"]),
        ] {
            let err = parse_str(text).unwrap_err().to_string();
            assert!(err.starts_with("herald.toml"), "{err}");
            // The source line is never quoted: it may hold a secret.
            assert!(
                !err.contains("c2VjcmV0") && !err.contains("hunter2"),
                "{err}"
            );
            for needle in needles {
                assert!(err.contains(needle), "{text:?}: {needle:?} not in {err}");
            }
        }
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
