//! TSIG (RFC 8945): keys from `--tsig-key NAME:ALGORITHM:BASE64SECRET[,zone=Z][,nodes=PATTERN]`,
//! checking signed requests, and signing the messages Herald sends.
//!
//! The MACs are computed and verified here with `ring::hmac`, not with hickory-proto's
//! `TSigner`: hickory 0.26 refuses hmac-sha1 (`TSigner::new` and `TsigAlgorithm::mac_data`
//! know only hmac-sha256, hmac-sha384 and hmac-sha512), yet RFC 8945 §6 makes hmac-sha1
//! mandatory to implement and lego and cert-manager use it by default. Verification is in
//! constant time (`ring::hmac::verify`).
//!
//! hickory still does the wire encoding: `signed_bitmessage_to_buf` rebuilds the digest input
//! of a signed request and returns its TSIG record (RFC 8945 §4.3, §5.2),
//! `TSIG::emit_tsig_for_mac` writes the TSIG variables (§4.3.3), `message_tbs` the digest
//! input of a message Herald sends (a NOTIFY), `make_tsig_record` and the record encoder the
//! TSIG record itself (§4.2), and `TSigResponseContext::unknown_key` the unsigned record of an
//! error answer (§5.2). The digest inputs of a response are assembled here: the request's
//! MAC, the message and the TSIG variables for the first message (§4.3.1–§4.3.3, §5.3), the
//! prior MAC, the message and the timers only for later messages of a transfer (§5.3.1).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{
    TSIG, TsigAlgorithm, TsigError, make_tsig_record, message_tbs, signed_bitmessage_to_buf,
};
use hickory_proto::rr::{Name, Record, TSigResponseContext};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use ring::hmac;
use thiserror::Error;

use super::answer::error_answer;
use super::message::rcode;
use crate::record::{Scope, ScopeError, unix_now};
use crate::zone::wire::name_wire;

/// Seconds of clock difference allowed on a signed message (RFC 8945 §10 recommends 300).
const FUDGE: u16 = 300;

/// A `--tsig-key` value that cannot be used. Its message names the flag, the key and the
/// problem, never the secret (so `herald serve` parses the flag itself: clap's own error
/// would repeat the whole value); its source is the problem's own cause.
#[derive(Debug)]
pub struct TsigKeyError {
    name: String,
    problem: TsigKeyProblem,
}

impl std::fmt::Display for TsigKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--tsig-key {:?}: {}", self.name, self.problem)
    }
}

impl std::error::Error for TsigKeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.problem)
    }
}

/// What is wrong with a `--tsig-key` value.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TsigKeyProblem {
    /// Fewer than three `:`-separated parts.
    #[error("expected NAME:ALGORITHM:BASE64SECRET[,zone=Z][,nodes=PATTERN]")]
    Syntax,
    /// An algorithm Herald does not implement (RFC 8945 §6).
    #[error("the algorithm must be hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512")]
    Algorithm,
    /// The secret is not base64.
    #[error("the secret is not base64")]
    Base64(#[source] base64::DecodeError),
    /// The secret is too short to be worth anything.
    #[error("the secret is shorter than 16 bytes")]
    Short,
    /// The key name is not a domain name.
    #[error("the name is not a domain name")]
    Name(#[source] hickory_proto::ProtoError),
    /// An option after the secret other than `zone=` and `nodes=`.
    #[error("unknown option {0:?}: expected zone=Z or nodes=PATTERN")]
    UnknownOption(String),
    /// `zone=` or `nodes=` given twice.
    #[error("option {0}= given twice")]
    RepeatedOption(&'static str),
    /// `nodes=` names nodes of no zone.
    #[error("nodes= needs zone=")]
    NodesWithoutZone,
    /// The `zone=` value is not a zone name.
    #[error("the zone= value is not a zone name")]
    Zone(#[source] ScopeError),
    /// The `nodes=` value is not a node pattern.
    #[error("the nodes= value is not a node name, PREFIX* or *")]
    Nodes(#[source] ScopeError),
}

/// A TSIG record, or the data its MAC covers, could not be encoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SignError {
    /// hickory-proto could not encode the message, the TSIG variables or the record.
    #[error("cannot encode a TSIG record or the data it signs")]
    Record(#[from] hickory_proto::ProtoError),
}

/// One shared secret (RFC 8945 §2), with the algorithm it is used with and what it may change.
#[derive(Clone)]
pub struct TsigKey {
    /// The key's name, lowercase: the owner name of its TSIG records (RFC 8945 §4.2).
    pub name: Name,
    /// The nodes this key may change with RFC 2136 UPDATE: `zone=` and `nodes=` of
    /// `--tsig-key`. `None` (no options): the key may transfer zones (AXFR, IXFR) but not
    /// update them. That policy is enforced where UPDATE is handled, not here.
    pub scope: Option<Scope>,
    /// The algorithm, for its name in TSIG records (RFC 8945 §4.2, §6).
    algorithm: TsigAlgorithm,
    /// The secret, bound to the HMAC of `algorithm`; shared, as keys are cloned per request
    /// and `hmac::Key` holds two digest states.
    key: Arc<hmac::Key>,
    /// The length of the TSIG record this key appends (see [`TsigKey::record_len`]).
    record_len: usize,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// Parses `NAME:ALGORITHM:BASE64SECRET[,zone=Z][,nodes=PATTERN]`. The algorithm is
    /// `hmac-sha1`, `hmac-sha256`, `hmac-sha384` or `hmac-sha512`. The options, in any order
    /// and each at most once, scope the key (see [`TsigKey::scope`]): `zone=Z` alone covers
    /// every node of Z, `nodes=` (`n1`, `PREFIX*` or `*`) narrows it and needs `zone=`.
    pub fn parse(text: &str) -> Result<Self, TsigKeyError> {
        let mut parts = text.splitn(3, ':');
        let (name, alg, rest) = (parts.next().unwrap_or(""), parts.next(), parts.next());
        let fail = |problem| TsigKeyError {
            name: name.to_owned(),
            problem,
        };
        let (Some(alg), Some(rest)) = (alg, rest) else {
            return Err(fail(TsigKeyProblem::Syntax));
        };
        // Base64 has no comma: the secret ends at the first one.
        let mut options = rest.split(',');
        let secret = options.next().unwrap_or("");
        let (algorithm, hmac_algorithm) = match alg.to_ascii_lowercase().as_str() {
            // RFC 8945 §6: mandatory to implement, not recommended to use.
            "hmac-sha1" => (TsigAlgorithm::HmacSha1, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            "hmac-sha256" => (TsigAlgorithm::HmacSha256, hmac::HMAC_SHA256),
            "hmac-sha384" => (TsigAlgorithm::HmacSha384, hmac::HMAC_SHA384),
            "hmac-sha512" => (TsigAlgorithm::HmacSha512, hmac::HMAC_SHA512),
            _ => return Err(fail(TsigKeyProblem::Algorithm)),
        };
        let secret = STANDARD
            .decode(secret)
            .map_err(|e| fail(TsigKeyProblem::Base64(e)))?;
        if secret.len() < 16 {
            return Err(fail(TsigKeyProblem::Short));
        }
        let name = Name::from_ascii(name)
            .map_err(|e| fail(TsigKeyProblem::Name(e)))?
            .to_lowercase();
        let scope = parse_scope(options).map_err(fail)?;
        Ok(Self::new(name, algorithm, hmac_algorithm, &secret, scope))
    }

    /// An hmac-sha256 key named `name`, with no scope: a node's report key, whose secret the
    /// server derives (`crate::record::report`).
    pub fn hmac_sha256(name: Name, secret: &[u8]) -> Self {
        Self::new(
            name.to_lowercase(),
            TsigAlgorithm::HmacSha256,
            hmac::HMAC_SHA256,
            secret,
            None,
        )
    }

    fn new(
        name: Name,
        algorithm: TsigAlgorithm,
        hmac_algorithm: hmac::Algorithm,
        secret: &[u8],
        scope: Option<Scope>,
    ) -> Self {
        let key = Arc::new(hmac::Key::new(hmac_algorithm, secret));
        let mac_len = hmac_algorithm.digest_algorithm().output_len();
        // RFC 8945 §4.2: the key name, type, class, TTL and RDLENGTH, then the algorithm
        // name, time (6), fudge (2), MAC size (2), the MAC, original ID (2), error (2) and
        // other length (2), with no other data; names uncompressed, as `append_record`
        // writes them.
        let record_len =
            name_wire(&name).len() + 10 + name_wire(&algorithm.to_name()).len() + 16 + mac_len;
        Self {
            name,
            scope,
            algorithm,
            key,
            record_len,
        }
    }

    /// The algorithm's name (`hmac-sha256`), for showing the configuration.
    pub fn algorithm_name(&self) -> String {
        self.algorithm
            .to_name()
            .to_ascii()
            .trim_end_matches('.')
            .to_owned()
    }

    /// The length of the TSIG record that signs an answer with this key.
    pub fn record_len(&self) -> usize {
        self.record_len
    }

    /// Signs a message Herald sends (a NOTIFY): adds the TSIG record to it.
    pub fn sign_message(&self, message: &mut Message) -> Result<(), SignError> {
        self.sign_message_at(message, unix_now())
    }

    /// [`TsigKey::sign_message`] at the time `now`.
    fn sign_message_at(&self, message: &mut Message, now: u64) -> Result<(), SignError> {
        // RFC 8945 §4.3.2, §4.3.3: the message, then the TSIG variables.
        let tsig = self.tsig(now, message.metadata.id);
        let tbs = message_tbs(message, &tsig, &self.name)?;
        let mac = self.mac(&tbs);
        message.set_signature(Box::new(make_tsig_record(
            self.name.clone(),
            tsig.set_mac(mac),
        )));
        Ok(())
    }

    /// A TSIG RDATA of this key signed at `time`, without its MAC, error or other data.
    fn tsig(&self, time: u64, id: u16) -> TSIG {
        TSIG::new(
            self.algorithm.clone(),
            time,
            FUDGE,
            Vec::new(),
            id,
            None,
            Vec::new(),
        )
    }

    /// The MAC of `data`.
    fn mac(&self, data: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key, data).as_ref().to_vec()
    }

    /// The length of this key's MACs, untruncated.
    fn mac_len(&self) -> usize {
        self.key.algorithm().digest_algorithm().output_len()
    }

    /// Checks the MAC and time of a request signed with this key (RFC 8945 §5.2.2, §5.2.3),
    /// at the time `now`; returns the request's MAC.
    fn verify_request(&self, wire: &[u8], now: u64) -> Result<Vec<u8>, (TsigError, Vec<u8>)> {
        // The message as it was before the TSIG record was added, then the TSIG variables.
        let Ok((tbv, record)) = signed_bitmessage_to_buf(wire, None, true) else {
            return Err((TsigError::BadSig, Vec::new()));
        };
        let tsig = record.data;
        if !record.name.eq_ignore_root(&self.name) || tsig.algorithm != self.algorithm {
            return Err((TsigError::BadKey, Vec::new()));
        }
        // RFC 8945 §5.2.2.1 allows MACs truncated to half the output (10 bytes at least); they
        // are weaker, and no client Herald serves sends them: refused.
        if tsig.mac.len() != self.mac_len() {
            return Err((TsigError::BadSig, Vec::new()));
        }
        hmac::verify(&self.key, &tbv, &tsig.mac).map_err(|_| (TsigError::BadSig, Vec::new()))?;
        // §5.2.3, with the window capped at Herald's own fudge: a client asking for hours
        // would leave a captured message replayable for hours.
        if now.abs_diff(tsig.time) > u64::from(tsig.fudge.min(FUDGE)) {
            return Err((TsigError::BadTime, tsig.mac));
        }
        Ok(tsig.mac)
    }
}

/// The scope given by the options after a key's secret.
fn parse_scope<'a>(
    options: impl Iterator<Item = &'a str>,
) -> Result<Option<Scope>, TsigKeyProblem> {
    let (mut zone, mut nodes) = (None, None);
    for option in options {
        let (slot, name, value) = match option.split_once('=') {
            Some(("zone", value)) => (&mut zone, "zone", value),
            Some(("nodes", value)) => (&mut nodes, "nodes", value),
            _ => return Err(TsigKeyProblem::UnknownOption(option.to_owned())),
        };
        if slot.replace(value).is_some() {
            return Err(TsigKeyProblem::RepeatedOption(name));
        }
    }
    match (zone, nodes) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(TsigKeyProblem::NodesWithoutZone),
        (Some(zone), nodes) => match Scope::parse(zone, nodes.unwrap_or("*")) {
            Ok(scope) => Ok(Some(scope)),
            Err(e @ ScopeError::Zone(_)) => Err(TsigKeyProblem::Zone(e)),
            Err(e) => Err(TsigKeyProblem::Nodes(e)),
        },
    }
}

/// What a request's TSIG record says.
#[derive(Debug, Clone)]
pub enum RequestAuth {
    /// No TSIG record.
    Unsigned,
    /// Validly signed with `key`; `mac` seeds the response's signature (RFC 8945 §4.3.1) and
    /// `id` is the request's message ID.
    Signed { key: TsigKey, mac: Vec<u8>, id: u16 },
    /// Signed, but with an unknown key, a bad MAC or a time outside the fudge: answer with
    /// [`Failure::answer`].
    Failed(Failure),
}

/// A request whose TSIG record failed (RFC 8945 §5.2).
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: TsigError,
    /// The key the request named.
    pub key_name: Name,
    id: u16,
    /// For BADTIME, the key and the request's MAC: that answer is signed (§5.2.3).
    stale: Option<(TsigKey, Vec<u8>)>,
}

impl Failure {
    /// The NOTAUTH answer to `request` (RFC 8945 §5.2): its question and a TSIG record with
    /// the error, unsigned for BADKEY and BADSIG, signed and carrying the server's time for
    /// BADTIME.
    pub fn answer(&self, request: &[u8], out: &mut Vec<u8>) {
        error_answer(request, rcode::NOTAUTH, out);
        let added = match &self.stale {
            Some((key, mac)) => ResponseSigner::new(key.clone(), mac.clone(), self.id)
                .with_error(self.error)
                .sign(out),
            None => append_error(out, &self.key_name, self.error, self.id),
        };
        if let Err(e) = added {
            tracing::debug!(
                error = &e as &dyn std::error::Error,
                "cannot add a TSIG error record"
            );
        }
    }
}

/// Checks the TSIG record of a request, if it has one (RFC 8945 §5.2): `wire` is the request
/// as received, `tsig` and `key_name` its TSIG record's RDATA and owner name, as the caller
/// parsed them, and `id` its message ID.
pub fn check_request(
    keys: &[TsigKey],
    wire: &[u8],
    tsig: Option<&TSIG>,
    key_name: Option<&Name>,
    id: u16,
) -> RequestAuth {
    check_request_at(keys, wire, tsig, key_name, id, unix_now())
}

/// [`check_request`] at the time `now`.
fn check_request_at(
    keys: &[TsigKey],
    wire: &[u8],
    tsig: Option<&TSIG>,
    key_name: Option<&Name>,
    id: u16,
    now: u64,
) -> RequestAuth {
    let (Some(tsig), Some(key_name)) = (tsig, key_name) else {
        return RequestAuth::Unsigned;
    };
    let failed = |error, stale| {
        RequestAuth::Failed(Failure {
            error,
            key_name: key_name.clone(),
            id,
            stale,
        })
    };
    // RFC 8945 §5.2.1: a key of that name, for that algorithm.
    let Some(key) = keys
        .iter()
        .find(|k| k.name.eq_ignore_root(key_name) && k.algorithm == tsig.algorithm)
    else {
        return failed(TsigError::BadKey, None);
    };
    match key.verify_request(wire, now) {
        Ok(mac) => RequestAuth::Signed {
            key: key.clone(),
            mac,
            id,
        },
        Err((TsigError::BadTime, mac)) => failed(TsigError::BadTime, Some((key.clone(), mac))),
        Err((error, _)) => failed(error, None),
    }
}

/// Signs the messages of one response, in order (RFC 8945 §5.3).
pub struct ResponseSigner {
    key: TsigKey,
    id: u16,
    time: u64,
    /// The request's MAC before the first message, then each message's own MAC.
    prior: Vec<u8>,
    first: bool,
    /// The TSIG error the answer reports (BADTIME), if any.
    error: Option<TsigError>,
}

impl ResponseSigner {
    /// A signer for the answer to a request signed with `key`, whose MAC was `request_mac` and
    /// whose message ID was `id`.
    pub fn new(key: TsigKey, request_mac: Vec<u8>, id: u16) -> Self {
        Self {
            key,
            id,
            time: unix_now(),
            prior: request_mac,
            first: true,
            error: None,
        }
    }

    /// Reports `error` in the TSIG record; for BADTIME with the server's time as Other Data
    /// (RFC 8945 §5.2.3).
    pub fn with_error(mut self, error: TsigError) -> Self {
        self.error = Some(error);
        self
    }

    /// Appends a TSIG record to `message` (a complete DNS message) and raises its ARCOUNT.
    pub fn sign(&mut self, message: &mut Vec<u8>) -> Result<(), SignError> {
        let mut tsig = self.key.tsig(self.time, self.id);
        if let Some(error) = self.error {
            let other = match error {
                TsigError::BadTime => self.time.to_be_bytes()[2..].to_vec(),
                _ => Vec::new(),
            };
            tsig = TSIG::new(
                self.key.algorithm.clone(),
                self.time,
                FUDGE,
                Vec::new(),
                self.id,
                Some(error),
                other,
            );
        }
        let mut tbs = Vec::with_capacity(2 + self.prior.len() + message.len() + 128);
        let mut encoder = BinEncoder::new(&mut tbs);
        // RFC 8945 §4.3.1: the prior MAC (the request's, for the first message), with its
        // length; §4.3.2: the message.
        encoder.emit_u16(self.prior.len() as u16)?;
        encoder.emit_vec(&self.prior)?;
        encoder.emit_vec(message)?;
        if self.first {
            // §4.3.3: the TSIG variables.
            tsig.emit_tsig_for_mac(&mut encoder, &self.key.name)?;
            self.first = false;
        } else {
            // §5.3.1: later messages of a stream cover the timers only.
            encoder.emit_u16((tsig.time >> 32) as u16)?;
            encoder.emit_u32(tsig.time as u32)?;
            encoder.emit_u16(tsig.fudge)?;
        }
        let mac = self.key.mac(&tbs);
        let record = make_tsig_record(self.key.name.clone(), tsig.set_mac(mac));
        append_record(message, &record)?;
        self.prior = record.data.mac;
        Ok(())
    }
}

/// Appends `record` to `message` and raises its ARCOUNT.
fn append_record(message: &mut Vec<u8>, record: &Record<TSIG>) -> Result<(), SignError> {
    let mut rr = Vec::with_capacity(128);
    record.emit(&mut BinEncoder::new(&mut rr))?;
    message.extend_from_slice(&rr);
    let ar = u16::from_be_bytes([message[10], message[11]]) + 1;
    message[10..12].copy_from_slice(&ar.to_be_bytes());
    Ok(())
}

/// The unsigned TSIG record of an error answer to a request that failed TSIG (RFC 8945 §5.2):
/// appended to `message`, ARCOUNT raised.
fn append_error(
    message: &mut Vec<u8>,
    key_name: &Name,
    error: TsigError,
    id: u16,
) -> Result<(), SignError> {
    let context = TSigResponseContext::unknown_key(id, unix_now(), key_name.clone());
    let mut record = *context.sign(message)?;
    record.data.error = Some(error);
    append_record(message, &record)
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::{RecordType, TSigner};

    use super::*;

    /// "secret-secret-secret", 20 bytes.
    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
    const ALGORITHMS: [&str; 4] = ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

    fn key(alg: &str) -> TsigKey {
        TsigKey::parse(&format!("xfr.example.:{alg}:{SECRET}")).unwrap()
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `check_request` on `wire` at `now`, parsing it as the caller does.
    fn check_at(keys: &[TsigKey], wire: &[u8], now: u64) -> RequestAuth {
        let msg = Message::from_vec(wire).unwrap();
        let tsig = msg.signature();
        check_request_at(
            keys,
            wire,
            tsig.map(|r| &r.data),
            tsig.map(|r| &r.name),
            msg.metadata.id,
            now,
        )
    }

    fn check(keys: &[TsigKey], wire: &[u8]) -> RequestAuth {
        check_at(keys, wire, unix_now())
    }

    fn error_of(auth: RequestAuth) -> TsigError {
        match auth {
            RequestAuth::Failed(failure) => failure.error,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// A signed SOA query for example.test.
    fn signed_query(key: &TsigKey) -> Vec<u8> {
        let mut msg = Message::new(0x4242, MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(
            Name::from_ascii("example.test.").unwrap(),
            RecordType::SOA,
        ));
        key.sign_message(&mut msg).unwrap();
        msg.to_vec().unwrap()
    }

    /// The offset of the MAC in a message whose last record is the TSIG record of `key`.
    fn mac_offset(wire: &[u8], key: &TsigKey) -> usize {
        // The MAC is followed by the original ID, the error and the other length.
        wire.len() - 6 - key.mac_len()
    }

    #[test]
    fn record_len_is_what_signing_appends() {
        for alg in ALGORITHMS {
            let key = key(alg);
            // A header-only answer, signed as the first message of a response.
            let mut message = vec![0x12, 0x34, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            ResponseSigner::new(key.clone(), vec![0; 32], 0x1234)
                .sign(&mut message)
                .unwrap();
            assert_eq!(message.len() - 12, key.record_len(), "{alg}");
        }
    }

    #[test]
    fn parses_keys_and_hides_secrets() {
        let k = TsigKey::parse(&format!("xfr.example.:hmac-sha256:{SECRET}")).unwrap();
        assert_eq!(k.name.to_ascii(), "xfr.example.");
        assert!(k.scope.is_none());
        assert!(!format!("{k:?}").contains("c2VjcmV0"));
        let k = TsigKey::parse(&format!("Lego.:HMAC-SHA1:{SECRET}")).unwrap();
        assert_eq!(k.name.to_ascii(), "lego.");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha1);
        assert_eq!(k.mac_len(), 20);
        for (bad, needle) in [
            (
                "xfr",
                "NAME:ALGORITHM:BASE64SECRET[,zone=Z][,nodes=PATTERN]",
            ),
            (
                "xfr:hmac-md5:c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
                "hmac-sha1, hmac-sha256",
            ),
            ("xfr:hmac-sha256:!!!", "base64"),
            ("xfr:hmac-sha256:c2hvcnQ=", "shorter"),
        ] {
            let err = TsigKey::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn parses_scopes() {
        let parse = |options: &str| TsigKey::parse(&format!("n:hmac-sha256:{SECRET}{options}"));
        let scope = parse(",zone=example.test,nodes=web-*")
            .unwrap()
            .scope
            .unwrap();
        assert!(scope.allows("example.test", "web-1"));
        assert!(!scope.allows("example.test", "db-1"));
        assert!(!scope.allows("other.test", "web-1"));
        // Any order.
        let reversed = parse(",nodes=web-*,zone=Example.Test.").unwrap().scope;
        assert_eq!(reversed, Some(scope.clone()));
        // The scope may show, the secret never.
        let shown = format!("{:?}", parse(",zone=example.test,nodes=web-*").unwrap());
        assert!(
            shown.contains("web-") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        let whole = parse(",zone=example.test").unwrap().scope.unwrap();
        assert!(whole.allows("example.test", "db-1"));
        assert!(whole.allows("example.test", "web-1"));
        assert!(!whole.allows("other.test", "web-1"));
        assert!(parse("").unwrap().scope.is_none());
        for (bad, needle) in [
            (",nodes=n1", "nodes= needs zone="),
            (",color=red", "\"color=red\""),
            (",zone", "\"zone\""),
            (",", "unknown option \"\""),
            (",zone=a.test,zone=b.test", "zone= given twice"),
            (",zone=example.test,nodes=n1,nodes=n2", "nodes= given twice"),
            (",zone=example.test,nodes=a*b", "nodes= value"),
            (",zone=bad..zone", "zone= value"),
        ] {
            let err = parse(bad).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(needle), "{bad}: {text}");
            assert!(!text.contains("c2VjcmV0"), "{bad}: {text}");
            if needle.ends_with(" value") {
                let source = std::error::Error::source(&err).expect("the scope error");
                assert!(source.downcast_ref::<ScopeError>().is_some(), "{bad}");
            }
        }
    }

    #[test]
    fn requests_signed_with_each_algorithm_verify() {
        let keys: Vec<_> = ALGORITHMS.iter().map(|alg| key(alg)).collect();
        for key in &keys {
            let alg = &key.algorithm;
            let wire = signed_query(key);
            let RequestAuth::Signed {
                key: found,
                mac,
                id,
            } = check(&keys, &wire)
            else {
                panic!("{alg}: not signed");
            };
            assert_eq!(found.algorithm, *alg);
            assert_eq!(mac.len(), key.mac_len(), "{alg}");
            assert_eq!(id, 0x4242);
            // Any flipped bit of the MAC, or of the message, breaks it.
            let at = mac_offset(&wire, key);
            for i in [at, at + key.mac_len() - 1, 13] {
                let mut bad = wire.clone();
                bad[i] ^= 1;
                assert_eq!(error_of(check(&keys, &bad)), TsigError::BadSig, "{alg} {i}");
            }
            // A key of another name, or of that name but another algorithm.
            let other = TsigKey::parse(&format!("other.:{alg}:{SECRET}")).unwrap();
            assert_eq!(error_of(check(&[other], &wire)), TsigError::BadKey, "{alg}");
            let others: Vec<_> = keys
                .iter()
                .filter(|k| k.algorithm != *alg)
                .cloned()
                .collect();
            assert_eq!(error_of(check(&others, &wire)), TsigError::BadKey, "{alg}");
            // The same name and algorithm, another secret.
            let wrong = TsigKey::parse(&format!("XFR.example:{alg}:{}", "A".repeat(24))).unwrap();
            assert_eq!(error_of(check(&[wrong], &wire)), TsigError::BadSig, "{alg}");
        }
    }

    #[test]
    fn sha1_macs_are_20_bytes_and_checked() {
        let key = key("hmac-sha1");
        let wire = signed_query(&key);
        let record = Message::from_vec(&wire)
            .unwrap()
            .signature()
            .unwrap()
            .clone();
        assert_eq!(record.data.algorithm, TsigAlgorithm::HmacSha1);
        assert_eq!(record.data.mac.len(), 20);
        // Recomputed independently of `TsigKey`: HMAC-SHA1 over hickory's digest input.
        let (tbv, _) = signed_bitmessage_to_buf(&wire, None, true).unwrap();
        let secret = STANDARD.decode(SECRET).unwrap();
        let sha1 = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret);
        assert_eq!(hmac::sign(&sha1, &tbv).as_ref(), &record.data.mac[..]);
        assert!(matches!(check(&[key], &wire), RequestAuth::Signed { .. }));
    }

    #[test]
    fn truncated_macs_are_refused() {
        let key = key("hmac-sha256");
        let mut msg = Message::new(7, MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(Name::root(), RecordType::SOA));
        key.sign_message(&mut msg).unwrap();
        let mut record = msg.signature().unwrap().clone();
        // The first half of the right MAC (RFC 8945 §5.2.2.1 would allow it).
        record.data.mac.truncate(16);
        msg.set_signature(Box::new(record));
        let wire = msg.to_vec().unwrap();
        assert_eq!(error_of(check(&[key], &wire)), TsigError::BadSig);
    }

    /// Requests signed by other implementations, captured off the wire: Knot's kdig
    /// (`kdig -y ALG:xfr.example.:SECRET +noedns example.test SOA`) and BIND's nsupdate
    /// (`-y hmac-sha1:...`, an UPDATE adding a TXT record for n1.example.test). They were
    /// signed at `TIME`.
    #[test]
    fn requests_signed_by_knot_and_bind_verify() {
        const TIME: u64 = 0x6b0d_66e2;
        let captured = [
            (
                "hmac-sha1",
                "193101200001000000000001076578616d706c650474657374000006000103786672076578616d\
                 706c650000fa00ff00000000002f09686d61632d736861310000006b0d66e2012c001406128da1\
                 ef765aa6f8171bd3a30c668f8bdbd864193100000000",
            ),
            (
                "hmac-sha256",
                "37bc01200001000000000001076578616d706c650474657374000006000103786672076578616d\
                 706c650000fa00ff00000000003d0b686d61632d7368613235360000006b0d66e4012c002088e2\
                 e74ec1df7bd9ecc0bb2b76fc2d0668658a596b2b2459bb1dde8c15f8de0b37bc00000000",
            ),
            (
                "hmac-sha384",
                "bdca01200001000000000001076578616d706c650474657374000006000103786672076578616d\
                 706c650000fa00ff00000000004d0b686d61632d7368613338340000006b0d66e9012c003079a9\
                 99cb30d3e7b492ee2c2e8a66bd6ecc54d22ca52d5dffd998a564d3bd98fcb86807246836909ca4\
                 be3ea1eaadb344bdca00000000",
            ),
            (
                "hmac-sha512",
                "501601200001000000000001076578616d706c650474657374000006000103786672076578616d\
                 706c650000fa00ff00000000005d0b686d61632d7368613531320000006b0d66ea012c0040a08d\
                 932737c6e933a5819a2cf8349201066c004ad99d4f9fb1faf5771de82d867a983bc175875688f7\
                 396ff2f9836da07c52def53fb8320041cdde26ff320ea6501600000000",
            ),
            (
                "hmac-sha1",
                "c26a28000001000000010001076578616d706c6504746573740000060001026e31c00c00100001\
                 0000003c0002017803786672076578616d706c650000fa00ff00000000002f09686d61632d7368\
                 61310000006b0d66ec012c001417914361362a4bd73ea068029b3cdb39beaac346c26a00000000",
            ),
        ];
        for (alg, text) in captured {
            let key = key(alg);
            let wire = hex(text);
            let signed_at = Message::from_vec(&wire)
                .unwrap()
                .signature()
                .unwrap()
                .data
                .time;
            assert!(signed_at.abs_diff(TIME) < 60);
            for now in [signed_at, signed_at - 300, signed_at + 300] {
                let auth = check_at(std::slice::from_ref(&key), &wire, now);
                assert!(
                    matches!(auth, RequestAuth::Signed { .. }),
                    "{alg}: {auth:?}"
                );
            }
            // Outside the fudge: the MAC is right, the time is not (RFC 8945 §5.2.3).
            for now in [signed_at - 301, signed_at + 301] {
                let auth = check_at(std::slice::from_ref(&key), &wire, now);
                assert_eq!(error_of(auth), TsigError::BadTime, "{alg}");
            }
            let mut bad = wire.clone();
            let at = mac_offset(&wire, &key);
            bad[at + 3] ^= 0x80;
            let auth = check_at(&[key], &bad, signed_at);
            assert_eq!(error_of(auth), TsigError::BadSig, "{alg}");
        }
    }

    /// The message kdig signed, signed again here at kdig's time, is the same message with
    /// the same MAC.
    #[test]
    fn signing_reproduces_knots_sha1_mac() {
        let wire = hex(
            "193101200001000000000001076578616d706c650474657374000006000103786672076578616d706c\
             650000fa00ff00000000002f09686d61632d736861310000006b0d66e2012c001406128da1ef765aa6\
             f8171bd3a30c668f8bdbd864193100000000",
        );
        let mut msg = Message::from_vec(&wire).unwrap();
        let theirs = msg.take_signature().unwrap();
        key("hmac-sha1")
            .sign_message_at(&mut msg, theirs.data.time)
            .unwrap();
        assert_eq!(msg.signature().unwrap().data.mac, theirs.data.mac);
        assert_eq!(msg.to_vec().unwrap(), wire);
    }

    #[test]
    fn responses_verify_with_hickory() {
        let key = key("hmac-sha256");
        let secret = STANDARD.decode(SECRET).unwrap();
        let hickory = TSigner::new(
            secret,
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("xfr.example.").unwrap(),
            FUDGE,
        )
        .unwrap();
        let request = signed_query(&key);
        let RequestAuth::Signed { key, mac, id } = check(std::slice::from_ref(&key), &request)
        else {
            panic!("not signed");
        };
        let mut signer = ResponseSigner::new(key, mac.clone(), id);
        let mut first = Message::new(id, MessageType::Response, OpCode::Query)
            .to_vec()
            .unwrap();
        signer.sign(&mut first).unwrap();
        let (first_mac, _, _) = hickory
            .verify_message_byte(&first, Some(&mac), true)
            .expect("the first message verifies");
        // A later message of the stream covers the prior MAC, itself and the timers.
        let mut second = first[..12].to_vec();
        second[10..12].copy_from_slice(&[0, 0]);
        signer.sign(&mut second).unwrap();
        hickory
            .verify_message_byte(&second, Some(&first_mac), false)
            .expect("the second message verifies");
        assert!(
            hickory
                .verify_message_byte(&second, Some(&mac), false)
                .is_err()
        );
    }

    /// The response digest of RFC 8945 §4.3, written out byte by byte, for every algorithm.
    #[test]
    fn response_macs_cover_request_mac_message_and_variables() {
        let secret = STANDARD.decode(SECRET).unwrap();
        for (alg, ring_alg) in ALGORITHMS.into_iter().zip([
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            hmac::HMAC_SHA256,
            hmac::HMAC_SHA384,
            hmac::HMAC_SHA512,
        ]) {
            let request_mac = vec![0xAB; 20];
            let message = vec![0x12, 0x34, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            let mut signed = message.clone();
            ResponseSigner::new(key(alg), request_mac.clone(), 0x1234)
                .sign(&mut signed)
                .unwrap();
            let record = Message::from_vec(&signed)
                .unwrap()
                .signature()
                .unwrap()
                .clone();
            let time = record.data.time;
            let mut tbs = vec![0, 20];
            tbs.extend_from_slice(&request_mac);
            tbs.extend_from_slice(&message);
            tbs.extend_from_slice(b"\x03xfr\x07example\x00\x00\xff\x00\x00\x00\x00");
            tbs.push(alg.len() as u8);
            tbs.extend_from_slice(alg.as_bytes());
            tbs.push(0);
            tbs.extend_from_slice(&time.to_be_bytes()[2..]);
            tbs.extend_from_slice(&[0x01, 0x2c, 0, 0, 0, 0]);
            let expected = hmac::sign(&hmac::Key::new(ring_alg, &secret), &tbs);
            assert_eq!(record.data.mac, expected.as_ref(), "{alg}");
            assert_eq!(record.data.oid, 0x1234);
        }
    }
}
