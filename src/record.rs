//! The node record: node labels, commit ids, zone names and the TXT payload; and the time
//! they count in, with serial number arithmetic.
//!
//! A node `n1` of zone `example.test` is served as one TXT record at `n1.example.test.` holding one
//! character-string, `v=herald1 commit=<hex> seq=<n> ts=<unix-seconds>` (DESIGN.md, "The record").
//! Everything here is pure but the one clock: it validates and renders, and the API, the store,
//! the signer and the client share it so that they agree on what a valid node or commit is,
//! what time it is, and which of two serials is newer.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

pub mod report;
pub mod scope;

pub use scope::{NodePattern, Scope, ScopeError};

/// The version tag every payload starts with. Clients refuse payloads without it.
pub const PAYLOAD_VERSION: &str = "herald1";

/// Default TTL of node TXT records (DESIGN.md, "The record"); configurable per zone.
pub const DEFAULT_NODE_TTL: u32 = 60;

/// Why a node label, commit, zone name or payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("node name is empty")]
    EmptyLabel,
    #[error("node name is {0} characters long; at most 63 are allowed")]
    LabelTooLong(usize),
    #[error("node name contains {0:?}; only a-z, 0-9 and '-' are allowed")]
    LabelChar(char),
    #[error("node name must not start or end with '-'")]
    LabelHyphen,
    #[error("commit must be 40 or 64 hex digits (a git SHA-1 or SHA-256), got {0} characters")]
    CommitLength(usize),
    #[error("commit contains {0:?}; only lowercase hex digits 0-9 and a-f are allowed")]
    CommitChar(char),
    #[error("zone name {0:?} is not a valid domain name")]
    ZoneName(String),
    #[error("TXT payload is not a herald record: {0}")]
    Payload(&'static str),
}

/// A validated node label: 1–63 characters of `a-z 0-9 -`, not starting or ending with `-`.
///
/// Input is case-insensitive; the label is kept lowercase, which is also its DNS canonical form
/// (RFC 4034 §6.2), so the stored label, the served owner name and the NSEC order all agree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeLabel(String);

impl NodeLabel {
    /// Validates `input` and returns it lowercased.
    pub fn parse(input: &str) -> Result<Self, RecordError> {
        Self::check(input)?;
        Ok(Self(input.to_ascii_lowercase()))
    }

    fn check(input: &str) -> Result<(), RecordError> {
        if input.is_empty() {
            return Err(RecordError::EmptyLabel);
        }
        // Count characters, not bytes, so a non-ASCII input gets the character error below.
        let chars = input.chars().count();
        if chars > 63 {
            return Err(RecordError::LabelTooLong(chars));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(RecordError::LabelChar(c));
        }
        if input.starts_with('-') || input.ends_with('-') {
            return Err(RecordError::LabelHyphen);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for NodeLabel {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NodeLabel {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for NodeLabel {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// [`NodeLabel::parse`] that keeps the string it is given: the store hands over a million
/// labels at start, and a copy of each would be wasted.
impl TryFrom<String> for NodeLabel {
    type Error = RecordError;

    fn try_from(mut input: String) -> Result<Self, RecordError> {
        Self::check(&input)?;
        input.make_ascii_lowercase();
        Ok(Self(input))
    }
}

/// A validated commit id: exactly 40 or 64 lowercase hex digits.
///
/// Uppercase is refused rather than folded: git prints object names in lowercase, so an uppercase
/// id most likely did not come from git.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Commit(String);

impl Commit {
    pub fn parse(input: &str) -> Result<Self, RecordError> {
        Self::check(input)?;
        Ok(Self(input.to_owned()))
    }

    /// What [`Commit::parse`] checks, without the copy.
    pub fn check(input: &str) -> Result<(), RecordError> {
        // Bytes first: this runs for every node at start; chars are decoded only to name the bad
        // one.
        if !input
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let c = input.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f'));
            return Err(RecordError::CommitChar(c.unwrap_or('?')));
        }
        match input.len() {
            40 | 64 => Ok(()),
            n => Err(RecordError::CommitLength(n)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The commit named by the content of a TXT record that a client writes (PowerDNS PATCH,
    /// RFC 2136 UPDATE): a whole payload `v=herald1 commit=<hex> …`, `commit=<hex>`, or the bare
    /// `<hex>`. `seq` and `ts` in the content are ignored: Herald assigns them.
    pub fn from_content(text: &str) -> Result<Self, RecordError> {
        let text = text.trim();
        if !text.contains('=') {
            return Self::parse(text);
        }
        let [version, commit] = fields(text, ["v", "commit"])?;
        if version.is_some_and(|v| v != PAYLOAD_VERSION) {
            return Err(RecordError::Payload("unknown v="));
        }
        Self::parse(commit.ok_or(RecordError::Payload("missing commit="))?)
    }
}

impl fmt::Display for Commit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// [`Commit::parse`] without the copy, as for [`NodeLabel`].
impl TryFrom<String> for Commit {
    type Error = RecordError;

    fn try_from(input: String) -> Result<Self, RecordError> {
        Self::check(&input)?;
        Ok(Self(input))
    }
}

/// A zone name in Herald's API form: lowercase, without the trailing dot (`example.test`).
///
/// The API accepts either form (`example.test` or `example.test.`); both map to this one.
pub fn normalize_zone(input: &str) -> Result<String, RecordError> {
    let bad = || RecordError::ZoneName(input.to_owned());
    let name = input.strip_suffix('.').unwrap_or(input);
    if name.is_empty() || name.len() > 253 {
        return Err(bad());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(bad());
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// A node and the content of its TXT record: what the signer signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node: NodeLabel,
    pub payload: Payload,
}

/// The content of a node's TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub commit: Commit,
    /// Per node, from 1, rising by one with every publish.
    pub seq: u64,
    /// Unix seconds of the publish.
    pub ts: u64,
}

impl Payload {
    /// The one character-string of the TXT record.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(128);
        render_into(self.commit.as_str(), self.seq, self.ts, &mut out);
        String::from_utf8(out).expect("the payload is ASCII")
    }
}

/// Appends the payload of `commit` (a valid [`Commit`]), `seq` and `ts` to `out`: the one
/// definition of the format, for [`Payload::render`] and for the start-up path, which builds a
/// million of them and must not go through `format!`.
pub fn render_into(commit: &str, seq: u64, ts: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"v=");
    out.extend_from_slice(PAYLOAD_VERSION.as_bytes());
    out.extend_from_slice(b" commit=");
    out.extend_from_slice(commit.as_bytes());
    out.extend_from_slice(b" seq=");
    decimal(seq, out);
    out.extend_from_slice(b" ts=");
    decimal(ts, out);
}

fn decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl Payload {
    /// Parses a character-string. Unknown keys are ignored so fields can be added later; the
    /// version, commit, seq and ts must be present exactly once.
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let [version, commit, seq, ts] = fields(text, ["v", "commit", "seq", "ts"])?;
        if version != Some(PAYLOAD_VERSION) {
            return Err(RecordError::Payload("missing or unknown v="));
        }
        let commit = Commit::parse(commit.ok_or(RecordError::Payload("missing commit="))?)?;
        let number = |v: Option<&str>, what| {
            v.and_then(|v| v.parse::<u64>().ok())
                .ok_or(RecordError::Payload(what))
        };
        Ok(Self {
            commit,
            seq: number(seq, "missing or bad seq=")?,
            ts: number(ts, "missing or bad ts=")?,
        })
    }
}

/// The values of `keys` among the space-separated `key=value` fields of a payload. Unknown
/// keys are skipped, so fields can be added later; a key given twice is refused.
fn fields<'t, const N: usize>(
    text: &'t str,
    keys: [&str; N],
) -> Result<[Option<&'t str>; N], RecordError> {
    let mut found = [None; N];
    for field in text.split(' ').filter(|f| !f.is_empty()) {
        let (key, value) = field
            .split_once('=')
            .ok_or(RecordError::Payload("a field is not key=value"))?;
        if let Some(i) = keys.iter().position(|k| *k == key)
            && found[i].replace(value).is_some()
        {
            return Err(RecordError::Payload("a field appears twice"));
        }
    }
    Ok(found)
}

/// Seconds since the Unix epoch: the one reading of the system clock that Herald makes, for
/// payloads' `ts`, TSIG times (RFC 8945 §4.3, 48 bits) and files' creation times.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix seconds modulo 2^32, as DNSSEC counts them (RFC 4034 §3.1.5). The writer and the
/// signer take the time from a `Clock`, so tests can move it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> u32;
}

/// The system clock: [`unix_now`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u32 {
        unix_now() as u32
    }
}

/// A clock that moves only when told to, for tests of refresh and expiry.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU32);

impl ManualClock {
    pub fn new(now: u32) -> Self {
        Self(AtomicU32::new(now))
    }

    pub fn set(&self, now: u32) {
        self.0.store(now, Ordering::SeqCst);
    }

    pub fn advance(&self, seconds: u32) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `a > b` in RFC 1982 §3.2 serial number arithmetic: for SOA serials, and for signature
/// times, which RFC 4034 §3.1.5 compares the same way.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

/// The newer of two SOA serials in RFC 1982 arithmetic (`a` on a tie or when the comparison is
/// undefined).
pub fn newest_serial(a: u32, b: u32) -> u32 {
    if serial_gt(b, a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f";
    const SHA256: &str = "3f2a9c0d5e6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f3f2a9c0d5e6b7a8f9e0d1c2b";

    #[test]
    fn content_forms_name_a_commit() {
        for content in [
            SHA1.to_owned(),
            format!("commit={SHA1}"),
            format!("v=herald1 commit={SHA1} seq=9 ts=1"),
            format!("  v=herald1  commit={SHA1} extra=x "),
        ] {
            assert_eq!(
                Commit::from_content(&content).unwrap().as_str(),
                SHA1,
                "{content}"
            );
        }
        for (bad, want) in [
            ("xyz".to_owned(), "hex"),
            (format!("v=herald2 commit={SHA1}"), "v="),
            (format!("commit={SHA1} commit={SHA1}"), "twice"),
            ("seq=1".to_owned(), "commit="),
            (format!("v=herald1 {SHA1}"), "key=value"),
            (SHA1.to_uppercase(), "lowercase"),
        ] {
            let err = Commit::from_content(&bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn labels_are_validated_and_lowercased() {
        assert_eq!(NodeLabel::parse("N1").unwrap().as_str(), "n1");
        assert_eq!(NodeLabel::parse("a").unwrap().as_str(), "a");
        assert_eq!(NodeLabel::parse("web-01").unwrap().as_str(), "web-01");
        // A UUID and an IPv6 address written with dashes both fit.
        let uuid = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
        assert_eq!(
            NodeLabel::parse(uuid).unwrap().as_str(),
            uuid.to_lowercase()
        );
        assert!(NodeLabel::parse("2001-db8-0-0-0-ff00-42-8329").is_ok());
        assert_eq!(
            NodeLabel::parse(&"a".repeat(63)).unwrap().as_str().len(),
            63
        );
    }

    #[test]
    fn bad_labels_are_refused_with_the_reason() {
        assert_eq!(NodeLabel::parse(""), Err(RecordError::EmptyLabel));
        assert_eq!(
            NodeLabel::parse(&"a".repeat(64)),
            Err(RecordError::LabelTooLong(64))
        );
        assert_eq!(NodeLabel::parse("-a"), Err(RecordError::LabelHyphen));
        assert_eq!(NodeLabel::parse("a-"), Err(RecordError::LabelHyphen));
        assert_eq!(NodeLabel::parse("a.b"), Err(RecordError::LabelChar('.')));
        assert_eq!(NodeLabel::parse("a_b"), Err(RecordError::LabelChar('_')));
        assert_eq!(NodeLabel::parse("a b"), Err(RecordError::LabelChar(' ')));
        assert_eq!(NodeLabel::parse("ü"), Err(RecordError::LabelChar('ü')));
        assert_eq!(
            NodeLabel::parse(&"ü".repeat(40)),
            Err(RecordError::LabelChar('ü'))
        );
    }

    #[test]
    fn commits_are_40_or_64_lowercase_hex() {
        assert_eq!(Commit::parse(SHA1).unwrap().as_str(), SHA1);
        assert_eq!(Commit::parse(SHA256).unwrap().as_str(), SHA256);
        assert_eq!(
            Commit::parse(&SHA1[..39]),
            Err(RecordError::CommitLength(39))
        );
        assert_eq!(
            Commit::parse(&SHA256[..63]),
            Err(RecordError::CommitLength(63))
        );
        assert_eq!(Commit::parse(""), Err(RecordError::CommitLength(0)));
        assert_eq!(
            Commit::parse(&SHA1.to_uppercase()),
            Err(RecordError::CommitChar('F'))
        );
        assert_eq!(
            Commit::parse(&format!("{}g", &SHA1[..39])),
            Err(RecordError::CommitChar('g'))
        );
        assert_eq!(
            Commit::parse(&format!(" {}", &SHA1[..39])),
            Err(RecordError::CommitChar(' '))
        );
    }

    #[test]
    fn zone_names_accept_both_forms() {
        assert_eq!(normalize_zone("example.test").unwrap(), "example.test");
        assert_eq!(normalize_zone("Example.TEST.").unwrap(), "example.test");
        for bad in ["", ".", "a..b", "a b", "a/b", &"a".repeat(64)] {
            assert!(normalize_zone(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn payload_round_trips() {
        let p = Payload {
            commit: Commit::parse(SHA1).unwrap(),
            seq: 3,
            ts: 1764086400,
        };
        let text = p.render();
        assert_eq!(text, format!("v=herald1 commit={SHA1} seq=3 ts=1764086400"));
        assert_eq!(Payload::parse(&text).unwrap(), p);
    }

    #[test]
    fn payload_ignores_unknown_keys_and_refuses_broken_ones() {
        let text = format!("v=herald1 future=x commit={SHA256} seq=9 ts=1 more=y");
        assert_eq!(Payload::parse(&text).unwrap().seq, 9);
        for bad in [
            format!("commit={SHA1} seq=1 ts=1"),
            format!("v=herald2 commit={SHA1} seq=1 ts=1"),
            format!("v=herald1 commit={SHA1} seq=x ts=1"),
            format!("v=herald1 commit={SHA1} seq=1"),
            format!("v=herald1 commit={SHA1} seq=1 seq=2 ts=1"),
            "v=herald1 commit=abc seq=1 ts=1".to_owned(),
            format!("v=herald1 commit={SHA1} seq=1 ts"),
        ] {
            assert!(Payload::parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn owned_labels_and_commits_are_checked_like_parsed_ones() {
        assert_eq!(
            NodeLabel::try_from("Web-01".to_owned()),
            NodeLabel::parse("Web-01")
        );
        assert_eq!(
            NodeLabel::try_from("a.b".to_owned()),
            Err(RecordError::LabelChar('.'))
        );
        assert_eq!(Commit::try_from(SHA1.to_owned()), Commit::parse(SHA1));
        assert_eq!(
            Commit::try_from(SHA1.to_uppercase()),
            Err(RecordError::CommitChar('F'))
        );
    }

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_gt(1, 0));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(u32::MAX, 0));
        assert!(!serial_gt(5, 5));
        assert_eq!(newest_serial(u32::MAX, 3), 3);
        assert_eq!(newest_serial(10, 3), 10);
    }
}
