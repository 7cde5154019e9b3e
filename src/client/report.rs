//! Sending node reports: after each hook run, `herald watch --report-key FILE` tells the
//! servers how it went, as one TSIG-signed UPDATE (the format is in
//! `crate::record::report`).
//!
//! The message is sent over UDP to each report target in turn (TCP when the answer is
//! truncated) until one answers NOERROR. The answer's rcode is logged; its TSIG record is not
//! checked, because nothing on the node depends on it: a lost or refused report costs the
//! fleet view one node's state until the next hook run, and never the node's own work.
//! hickory-proto's `TSigner` signs the message (hmac-sha256, the only algorithm report keys
//! use).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use thiserror::Error;

use super::transport::{TransportError, exchange};
use crate::record::report::{REPORT_LABEL, Report};
use crate::record::unix_now;

/// Seconds of clock difference the report's signature allows (RFC 8945 §10).
const FUDGE: u16 = 300;

/// Why a report key cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportKeyError {
    #[error("cannot read the report key {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error(
        "the report key must be one line NAME:hmac-sha256:BASE64, as `herald key report` \
         prints it: {0}"
    )]
    Format(&'static str),
    #[error("the report key is for {found}, not for node {node} of zone {zone}")]
    Mismatch {
        found: String,
        node: String,
        zone: String,
    },
}

/// Why a report was not taken.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportSendError {
    #[error("cannot build or sign the report")]
    Build(#[source] hickory_proto::ProtoError),
    #[error("no report target was given")]
    NoTarget,
    #[error("no server took the report; the last said: {0}")]
    Refused(String),
    #[error("no server answered the report")]
    Unanswered(#[source] TransportError),
}

/// A node's report key, as `herald key report` prints it.
pub struct ReportKey {
    name: Name,
    secret: Vec<u8>,
}

impl std::fmt::Debug for ReportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("ReportKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ReportKey {
    /// Reads the key file of node `node` of zone `zone` (API form) and checks that it is that
    /// node's.
    pub fn load(path: &Path, zone: &str, node: &str) -> Result<Self, ReportKeyError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ReportKeyError::Read(path.to_owned(), e))?;
        Self::parse(text.trim(), zone, node)
    }

    /// Parses `NAME:hmac-sha256:BASE64` for node `node` of zone `zone`.
    pub fn parse(text: &str, zone: &str, node: &str) -> Result<Self, ReportKeyError> {
        let mut parts = text.splitn(3, ':');
        let (Some(name), Some(alg), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ReportKeyError::Format("three fields separated by ':'"));
        };
        if !alg.eq_ignore_ascii_case("hmac-sha256") {
            return Err(ReportKeyError::Format("the algorithm is hmac-sha256"));
        }
        let secret = STANDARD
            .decode(secret.trim())
            .map_err(|_| ReportKeyError::Format("the secret is not base64"))?;
        if secret.len() < 32 {
            return Err(ReportKeyError::Format(
                "the secret is shorter than 32 bytes",
            ));
        }
        let wanted = format!("{node}.{REPORT_LABEL}.{zone}.");
        let found = name.to_ascii_lowercase();
        if found.trim_end_matches('.') != wanted.trim_end_matches('.') {
            return Err(ReportKeyError::Mismatch {
                found: name.to_owned(),
                node: node.to_owned(),
                zone: zone.to_owned(),
            });
        }
        let name = Name::from_ascii(&wanted).map_err(|_| ReportKeyError::Format("a bad name"))?;
        Ok(Self { name, secret })
    }
}

/// Sends reports for one node.
#[derive(Debug)]
pub struct Reporter {
    pub key: ReportKey,
    /// Where to send them, in order.
    pub targets: Vec<SocketAddr>,
    /// The zone's apex.
    pub apex: Name,
    /// How long to wait for each target.
    pub timeout: Duration,
}

impl Reporter {
    /// Sends `report`; the target that took it.
    pub fn send(&self, report: &Report) -> Result<SocketAddr, ReportSendError> {
        if self.targets.is_empty() {
            return Err(ReportSendError::NoTarget);
        }
        let message = self.message(report).map_err(ReportSendError::Build)?;
        let mut last = None;
        for &target in &self.targets {
            match exchange(target, &message, self.timeout) {
                Ok(x) if x.response.metadata.response_code == ResponseCode::NoError => {
                    return Ok(target);
                }
                Ok(x) => {
                    let code = x.response.metadata.response_code;
                    tracing::debug!(%target, rcode = %code, "report refused");
                    last = Some(Ok(format!("{target}: {code}")));
                }
                Err(e) => {
                    tracing::debug!(%target, error = &e as &dyn std::error::Error, "report unanswered");
                    if !matches!(last, Some(Ok(_))) {
                        last = Some(Err(e));
                    }
                }
            }
        }
        Err(match last {
            Some(Ok(refusal)) => ReportSendError::Refused(refusal),
            Some(Err(e)) => ReportSendError::Unanswered(e),
            None => ReportSendError::NoTarget,
        })
    }

    /// The signed UPDATE that carries `report` (RFC 2136 §2; RFC 8945 §4.3).
    pub fn message(&self, report: &Report) -> Result<Message, hickory_proto::ProtoError> {
        let mut id = [0u8; 2];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
        let mut message = Message::new(u16::from_be_bytes(id), MessageType::Query, OpCode::Update);
        let mut zone = Query::query(self.apex.clone(), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        message.add_query(zone);
        let mut record = Record::from_rdata(
            self.key.name.clone(),
            0,
            RData::TXT(TXT::new(vec![report.to_string()])),
        );
        record.dns_class = DNSClass::IN;
        message.add_authority(record);
        let signer = TSigner::new(
            self.key.secret.clone(),
            TsigAlgorithm::HmacSha256,
            self.key.name.clone(),
            FUDGE,
        )
        .map_err(|e| hickory_proto::ProtoError::from(e.to_string()))?;
        let (tsig, _) = signer.sign_message(&message, unix_now())?;
        message.set_signature(tsig);
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "n1._report.example.test.:hmac-sha256:\
                       AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn parses_the_key_of_its_own_node_only() {
        assert!(ReportKey::parse(KEY, "example.test", "n1").is_ok());
        let err = ReportKey::parse(KEY, "example.test", "n2").unwrap_err();
        assert!(matches!(err, ReportKeyError::Mismatch { .. }), "{err}");
        for bad in [
            "n1._report.example.test.",
            "n1._report.example.test.:hmac-sha1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "n1._report.example.test.:hmac-sha256:not base64",
            "n1._report.example.test.:hmac-sha256:AAEC",
        ] {
            assert!(
                ReportKey::parse(bad, "example.test", "n1").is_err(),
                "{bad}"
            );
        }
        // The secret never shows in Debug.
        let key = ReportKey::parse(KEY, "example.test", "n1").unwrap();
        assert!(!format!("{key:?}").contains("secret"));
    }
}
