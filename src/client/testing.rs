//! Helpers for the node side's tests: zone keys made by Herald's own key code, DNSKEY RRsets and
//! TXT records signed with them as a zone in the middle of a key rollover serves them, and a
//! small UDP server that hands out whatever answers a test sets.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG};
use hickory_proto::dnssec::{Algorithm, TBS};
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};

use super::trust::REVOKE;
use crate::dnssec::ZoneKey;

pub const HOUR: u32 = 3600;
pub const DAY: u32 = 86_400;

pub fn apex() -> Name {
    Name::from_ascii("example.test.").unwrap()
}

/// A zone key (CSK) with its private half.
pub struct Key {
    _dir: tempfile::TempDir,
    pub key: ZoneKey,
}

impl Key {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = ZoneKey::load_or_create(
            dir.path(),
            "example.test",
            &apex(),
            Algorithm::ECDSAP256SHA256,
        )
        .unwrap();
        Self { _dir: dir, key }
    }

    /// Flags 257.
    pub fn dnskey(&self) -> DNSKEY {
        self.key.dnskey.clone()
    }

    /// Flags 385: the same key with the REVOKE bit.
    pub fn revoked(&self) -> DNSKEY {
        DNSKEY::with_flags(257 | REVOKE, self.key.dnskey.public_key().clone())
    }

    pub fn tag(&self) -> u16 {
        tag(&self.dnskey())
    }
}

pub fn tag(key: &DNSKEY) -> u16 {
    key.calculate_key_tag().unwrap()
}

/// An RRSIG over `records` (one RRset) made by `key`, naming the key by `tag`, valid an hour
/// before `now` to 14 days after.
pub fn rrsig(key: &Key, tag: u16, records: &[Record], now: u32) -> Record {
    let owner = records[0].name.clone();
    let input = SigInput {
        type_covered: records[0].record_type(),
        algorithm: key.key.algorithm,
        num_labels: owner.num_labels(),
        original_ttl: records[0].ttl,
        sig_expiration: SerialNumber::new(now + 14 * DAY),
        sig_inception: SerialNumber::new(now - HOUR),
        key_tag: tag,
        signer_name: apex(),
    };
    let tbs = TBS::from_input(&owner, DNSClass::IN, &input, records.iter()).unwrap();
    let sig = key.key.sign(&tbs).unwrap();
    Record::from_rdata(
        owner,
        records[0].ttl,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
    )
}

/// The DNSKEY RRset of `published`, TTL 3600, unsigned.
pub fn dnskeys(published: &[DNSKEY]) -> Vec<Record> {
    published
        .iter()
        .map(|k| Record::from_rdata(apex(), 3600, RData::DNSSEC(DNSSECRData::DNSKEY(k.clone()))))
        .collect()
}

/// The answer section of a DNSKEY query: `published`, signed by each of `signers`, each as the
/// form it is published in (a revoked key signs under its revoked tag).
pub fn dnskey_answer(published: &[DNSKEY], signers: &[(&Key, &DNSKEY)], now: u32) -> Vec<Record> {
    let mut out = dnskeys(published);
    let sigs: Vec<Record> = signers
        .iter()
        .map(|(key, form)| rrsig(key, tag(form), &out, now))
        .collect();
    out.extend(sigs);
    out
}

/// The answer to `n1.example.test. TXT`: a node record with `seq`, signed by `key` at `now`.
pub fn txt_answer(seq: u64, key: &Key, now: u32) -> Vec<Record> {
    let owner = Name::from_ascii("n1.example.test.").unwrap();
    let text = format!(
        "v=herald1 commit={} seq={seq} ts=1764086400",
        "ab".repeat(20)
    );
    let txt = vec![Record::from_rdata(
        owner,
        60,
        RData::TXT(TXT::new(vec![text])),
    )];
    let sig = rrsig(key, key.tag(), &txt, now);
    txt.into_iter().chain([sig]).collect()
}

/// A UDP server that answers each query with the records set for its type (NOERROR, empty
/// when none are set), and remembers the types asked.
pub struct FakeServer {
    pub addr: SocketAddr,
    answers: Arc<Mutex<HashMap<RecordType, Vec<Record>>>>,
    asked: Arc<Mutex<Vec<RecordType>>>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let answers: Arc<Mutex<HashMap<RecordType, Vec<Record>>>> = Arc::default();
        let asked: Arc<Mutex<Vec<RecordType>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (a, k, s) = (answers.clone(), asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let rtype = query.queries[0].query_type();
                k.lock().unwrap().push(rtype);
                let mut m = query.into_response();
                m.edns = None;
                m.answers = a.lock().unwrap().get(&rtype).cloned().unwrap_or_default();
                let _ = socket.send_to(&m.to_vec().unwrap(), peer);
            }
        });
        Self {
            addr,
            answers,
            asked,
            stop,
        }
    }

    /// Answers queries of type `rtype` with `records` from now on.
    pub fn serve(&self, rtype: RecordType, records: Vec<Record>) {
        self.answers.lock().unwrap().insert(rtype, records);
    }

    /// The types asked since the last call.
    pub fn asked(&self) -> Vec<RecordType> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
