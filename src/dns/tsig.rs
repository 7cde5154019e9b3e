//! TSIG (RFC 8945): keys from `--tsig-key NAME:ALGORITHM:BASE64SECRET`, checking signed
//! requests, and signing the messages of a response stream.
//!
//! hickory-proto does the MAC work: verifying a request (`TSigner::verify_message_byte`) and
//! signing the first response message (`TSigResponseContext`). Later messages of a transfer
//! are signed over the prior MAC, the message and the TSIG timers (RFC 8945 §5.3.1), which
//! hickory verifies but has no signer for; that digest input is assembled here and MACed with
//! the same `TSigner`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use thiserror::Error;

use crate::record::unix_now;
use crate::zone::wire::name_wire;

/// Seconds of clock difference allowed on a signed message (RFC 8945 §10 recommends 300).
const FUDGE: u16 = 300;

/// A `--tsig-key` value that cannot be used. Its message names the flag, the key and the
/// problem (a flag parser's error is shown by its message alone); its source is the
/// problem's own cause.
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
    #[error("expected NAME:ALGORITHM:BASE64SECRET")]
    Syntax,
    #[error("the algorithm must be hmac-sha256, hmac-sha384 or hmac-sha512")]
    Algorithm,
    #[error("the secret is not base64")]
    Base64(#[source] base64::DecodeError),
    #[error("the secret is shorter than 16 bytes")]
    Short,
    #[error("the name is not a domain name")]
    Name(#[source] hickory_proto::ProtoError),
    #[error(transparent)]
    Signer(hickory_proto::dnssec::DnsSecError),
}

/// A TSIG record could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("cannot make a TSIG record")]
    Record(#[from] hickory_proto::ProtoError),
    #[error("cannot compute a TSIG MAC")]
    Mac(#[from] hickory_proto::dnssec::DnsSecError),
}

/// One shared secret.
#[derive(Clone)]
pub struct TsigKey {
    pub name: Name,
    signer: TSigner,
    /// The length of the TSIG record this key appends (see [`TsigKey::record_len`]).
    record_len: usize,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("TsigKey").field("name", &self.name).finish()
    }
}

impl TsigKey {
    /// Parses `NAME:ALGORITHM:BASE64SECRET`; the algorithm is `hmac-sha256` (or `hmac-sha384`,
    /// `hmac-sha512`).
    pub fn parse(text: &str) -> Result<Self, TsigKeyError> {
        let mut parts = text.splitn(3, ':');
        let (name, alg, secret) = (parts.next().unwrap_or(""), parts.next(), parts.next());
        let fail = |problem| TsigKeyError {
            name: name.to_owned(),
            problem,
        };
        let (Some(alg), Some(secret)) = (alg, secret) else {
            return Err(fail(TsigKeyProblem::Syntax));
        };
        // With the MAC's length (RFC 8945 §6).
        let (algorithm, mac_len) = match alg.to_ascii_lowercase().as_str() {
            "hmac-sha256" => (TsigAlgorithm::HmacSha256, 32),
            "hmac-sha384" => (TsigAlgorithm::HmacSha384, 48),
            "hmac-sha512" => (TsigAlgorithm::HmacSha512, 64),
            _ => return Err(fail(TsigKeyProblem::Algorithm)),
        };
        let key = STANDARD
            .decode(secret)
            .map_err(|e| fail(TsigKeyProblem::Base64(e)))?;
        if key.len() < 16 {
            return Err(fail(TsigKeyProblem::Short));
        }
        let name = Name::from_ascii(name)
            .map_err(|e| fail(TsigKeyProblem::Name(e)))?
            .to_lowercase();
        // RFC 8945 §4.2: the key name, type, class, TTL and RDLENGTH, then the algorithm
        // name, time (6), fudge (2), MAC size (2), the MAC, original ID (2), error (2) and
        // other length (2), with no other data; names uncompressed, as `ResponseSigner`
        // writes them.
        let record_len =
            name_wire(&name).len() + 10 + name_wire(&algorithm.to_name()).len() + 16 + mac_len;
        let signer = TSigner::new(key, algorithm, name.clone(), FUDGE)
            .map_err(|e| fail(TsigKeyProblem::Signer(e)))?;
        Ok(Self {
            name,
            signer,
            record_len,
        })
    }

    /// The length of the TSIG record that signs an answer with this key.
    pub fn record_len(&self) -> usize {
        self.record_len
    }

    /// Signs a message Herald sends (a NOTIFY): returns it with the TSIG record added.
    pub fn sign_message(&self, message: &mut hickory_proto::op::Message) -> Result<(), SignError> {
        let (tsig, _) = self.signer.sign_message(message, unix_now())?;
        message.set_signature(tsig);
        Ok(())
    }
}

/// What a request's TSIG record says.
#[derive(Debug, Clone)]
pub enum RequestAuth {
    /// No TSIG record.
    Unsigned,
    /// Validly signed with this key; `mac` seeds the response's signature.
    Signed { key: TsigKey, mac: Vec<u8>, id: u16 },
    /// Signed, but with an unknown key, a bad MAC or a time outside the fudge: answer NOTAUTH
    /// with this TSIG error, unsigned (RFC 8945 §5.2).
    Failed {
        error: TsigError,
        key_name: Name,
        id: u16,
    },
}

/// Checks the TSIG record of a request, if it has one. `has_tsig` says whether the last
/// additional record is a TSIG (the caller has parsed the message).
pub fn check_request(
    keys: &[TsigKey],
    wire: &[u8],
    tsig: Option<&TSIG>,
    key_name: Option<&Name>,
    id: u16,
) -> RequestAuth {
    let (Some(tsig), Some(key_name)) = (tsig, key_name) else {
        return RequestAuth::Unsigned;
    };
    let Some(key) = keys
        .iter()
        .find(|k| k.name.eq_ignore_root(key_name) && *k.signer.algorithm() == tsig.algorithm)
    else {
        return RequestAuth::Failed {
            error: TsigError::BadKey,
            key_name: key_name.clone(),
            id,
        };
    };
    match key.signer.verify_message_byte(wire, None, true) {
        Ok((mac, _, range)) => {
            if range.contains(&unix_now()) {
                RequestAuth::Signed {
                    key: key.clone(),
                    mac,
                    id,
                }
            } else {
                RequestAuth::Failed {
                    error: TsigError::BadTime,
                    key_name: key_name.clone(),
                    id,
                }
            }
        }
        Err(_) => RequestAuth::Failed {
            error: TsigError::BadSig,
            key_name: key_name.clone(),
            id,
        },
    }
}

/// Signs the messages of one response, in order.
pub struct ResponseSigner {
    key: TsigKey,
    id: u16,
    time: u64,
    /// The request's MAC before the first message, then each message's own MAC.
    prior: Vec<u8>,
    first: bool,
}

impl ResponseSigner {
    pub fn new(key: TsigKey, request_mac: Vec<u8>, id: u16) -> Self {
        Self {
            key,
            id,
            time: unix_now(),
            prior: request_mac,
            first: true,
        }
    }

    /// Appends a TSIG record to `message` (a complete DNS message) and raises its ARCOUNT.
    pub fn sign(&mut self, message: &mut Vec<u8>) -> Result<(), SignError> {
        let record = if self.first {
            self.first = false;
            let context = TSigResponseContext::new(
                self.id,
                self.time,
                self.key.signer.clone(),
                self.prior.clone(),
                None,
            );
            *context.sign(message)?
        } else {
            // RFC 8945 §5.3.1: prior MAC, the message, and the timers only.
            let mut tbs = Vec::with_capacity(message.len() + self.prior.len() + 10);
            tbs.extend_from_slice(&(self.prior.len() as u16).to_be_bytes());
            tbs.extend_from_slice(&self.prior);
            tbs.extend_from_slice(message);
            tbs.extend_from_slice(&self.time.to_be_bytes()[2..]);
            tbs.extend_from_slice(&FUDGE.to_be_bytes());
            let mac = self.key.signer.sign(&tbs)?;
            make_tsig_record(
                self.key.name.clone(),
                TSIG::new(
                    self.key.signer.algorithm().clone(),
                    self.time,
                    FUDGE,
                    mac,
                    self.id,
                    None,
                    Vec::new(),
                ),
            )
        };
        self.prior = record.data.mac.clone();
        append_record(message, &record)
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
pub fn append_error(
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
    use super::*;

    #[test]
    fn record_len_is_what_signing_appends() {
        for alg in ["hmac-sha256", "hmac-sha384", "hmac-sha512"] {
            let key = TsigKey::parse(&format!(
                "transfer.key.example.:{alg}:c2VjcmV0LXNlY3JldC1zZWNyZXQ="
            ))
            .unwrap();
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
        let k = TsigKey::parse("xfr.example.:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=").unwrap();
        assert_eq!(k.name.to_ascii(), "xfr.example.");
        assert!(!format!("{k:?}").contains("c2VjcmV0"));
        for (bad, needle) in [
            ("xfr", "NAME:ALGORITHM"),
            ("xfr:hmac-md5:c2VjcmV0LXNlY3JldC1zZWNyZXQ=", "algorithm"),
            ("xfr:hmac-sha256:!!!", "base64"),
            ("xfr:hmac-sha256:c2hvcnQ=", "shorter"),
        ] {
            let err = TsigKey::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
