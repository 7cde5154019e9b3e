//! Zone signing keys: combined signing keys (CSK), one file each in `<data>/keys/`.
//!
//! A zone's first key, `<zone>.key`, is created on its first start with mode 0600 (its
//! directory 0700) and loaded from there afterwards. A rollover (`crate::dnssec::roll`) adds
//! `<zone>.<tag>.key`; which file signs is then the store's to say. A key file that others can read, or that cannot be parsed, stops the start with
//! an error that names the file: Herald never signs with a key it cannot trust to be private,
//! and never replaces a key silently (that would break every trust anchor).
//!
//! File format, one `key: value` per line, `;` comments:
//!
//! ```text
//! ; Herald zone signing key (CSK) of example.test. Secret: keep mode 0600.
//! zone: example.test.
//! algorithm: 13
//! created: 1764086400
//! private-key: <base64 of the PKCS#8 document>
//! ```

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey, TBS};
use hickory_proto::rr::Name;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use thiserror::Error;

use crate::config::secret::{self, SecretError};
use crate::record::unix_now;

/// DNSKEY flags of a combined signing key: Zone Key and Secure Entry Point (RFC 4034 §2.1.1).
const CSK_FLAGS: u16 = 257;
/// The REVOKE flag (RFC 5011 §3, bit 8).
const REVOKE: u16 = 0x0080;

/// Problems with a key file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Missing, unreadable, or readable by others.
    #[error(transparent)]
    File(#[from] SecretError),
    #[error("{path}: {reason}")]
    Format {
        path: PathBuf,
        reason: String,
        /// What the decoder said, where one was involved.
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error(
        "{path} holds an algorithm {found} key but the zone is set to algorithm {wanted}; \
         the algorithm of a zone that has a key changes only by a key rollover: set the \
         algorithm back to {found} and run `herald key roll --algorithm {wanted}`"
    )]
    Algorithm {
        path: PathBuf,
        found: u8,
        wanted: u8,
    },
    #[error("no signing key for {zone} in {dir} (it is created by the first `herald serve`)")]
    Missing { zone: String, dir: PathBuf },
    #[error("signing failed")]
    Crypto(#[from] hickory_proto::dnssec::DnsSecError),
    #[error("cannot encode the key or a record to sign")]
    Encode(#[from] hickory_proto::ProtoError),
    #[error("the system could not generate a key")]
    Generate,
}

/// A zone's signing key with its public records.
pub struct ZoneKey {
    signer: Box<dyn SigningKey>,
    pub algorithm: Algorithm,
    pub dnskey: DNSKEY,
    pub key_tag: u16,
    /// The key published with the REVOKE bit (RFC 5011 §2.1), and its tag (the flags are part
    /// of the tag, RFC 4034 Appendix B).
    pub revoked: DNSKEY,
    pub revoked_tag: u16,
    /// The DS for the parent zone, SHA-256 (digest type 2).
    pub ds: DS,
    pub apex: Name,
    pub path: PathBuf,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("ZoneKey")
            .field("apex", &self.apex)
            .field("algorithm", &self.algorithm)
            .field("key_tag", &self.key_tag)
            .finish()
    }
}

/// Where the first key of `zone` (API form) lives.
pub fn key_path(data_dir: &Path, zone: &str) -> PathBuf {
    data_dir.join("keys").join(first_key_file(zone))
}

/// The file name of a zone's first key.
pub fn first_key_file(zone: &str) -> String {
    format!("{zone}.key")
}

impl ZoneKey {
    /// Loads the zone's key, or creates it with `algorithm` when there is none. Returns the key
    /// and whether it was created.
    pub fn load_or_create(
        data_dir: &Path,
        zone: &str,
        apex: &Name,
        algorithm: Algorithm,
    ) -> Result<(Self, bool), KeyError> {
        let path = key_path(data_dir, zone);
        match Self::load_file(&path, apex) {
            Ok(key) if key.algorithm != algorithm => Err(KeyError::Algorithm {
                path,
                found: u8::from(key.algorithm),
                wanted: u8::from(algorithm),
            }),
            Ok(key) => Ok((key, false)),
            Err(KeyError::File(e)) if e.is_not_found() => {
                create(&path, apex, algorithm)?;
                Ok((Self::load_file(&path, apex)?, true))
            }
            Err(e) => Err(e),
        }
    }

    /// Loads an existing key, for `herald key show`.
    pub fn load(data_dir: &Path, zone: &str, apex: &Name) -> Result<Self, KeyError> {
        let path = key_path(data_dir, zone);
        match Self::load_file(&path, apex) {
            Err(KeyError::File(e)) if e.is_not_found() => Err(KeyError::Missing {
                zone: zone.to_owned(),
                dir: data_dir.join("keys"),
            }),
            other => other,
        }
    }

    /// Loads the key file `file` (a name inside `<data>/keys/`, as the store records it).
    pub fn load_named(data_dir: &Path, file: &str, apex: &Name) -> Result<Self, KeyError> {
        if file.contains('/') || file.starts_with('.') {
            return Err(KeyError::Format {
                path: PathBuf::from(file),
                reason: "not a key file name".into(),
                cause: None,
            });
        }
        Self::load_file(&data_dir.join("keys").join(file), apex)
    }

    /// Creates a new key for a rollover, `<zone>.<tag>.key`, and loads it. Its tag differs
    /// from every tag in `taken` (the zone's other keys, revoked forms included), so that a
    /// validator never has to try two keys for one RRSIG.
    pub fn generate(
        data_dir: &Path,
        zone: &str,
        apex: &Name,
        algorithm: Algorithm,
        taken: &[u16],
    ) -> Result<Self, KeyError> {
        for _ in 0..16 {
            let pkcs8 = new_pkcs8(algorithm)?;
            let key = Self::from_pkcs8(&pkcs8, algorithm, apex, Path::new(""))?;
            if [key.key_tag, key.revoked_tag]
                .iter()
                .any(|t| taken.contains(t))
            {
                continue;
            }
            let path = data_dir
                .join("keys")
                .join(format!("{zone}.{}.key", key.key_tag));
            write_file(&path, apex, algorithm, &pkcs8)?;
            return Self::load_file(&path, apex);
        }
        Err(KeyError::Generate)
    }

    /// The key's file name inside `<data>/keys/`.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn load_file(path: &Path, apex: &Name) -> Result<Self, KeyError> {
        let format = |reason: String| KeyError::Format {
            path: path.to_owned(),
            reason,
            cause: None,
        };
        let decoding =
            |reason: &str, cause: Box<dyn std::error::Error + Send + Sync>| KeyError::Format {
                path: path.to_owned(),
                reason: reason.to_owned(),
                cause: Some(cause),
            };
        let text = secret::read(path)?;
        let (mut zone, mut alg, mut secret) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| format(format!("line {line:?} is not key: value")))?;
            match k.trim() {
                "zone" => zone = Some(v.trim().to_owned()),
                "algorithm" => alg = Some(v.trim().to_owned()),
                "private-key" => secret = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        let zone = zone.ok_or_else(|| format("no zone: line".into()))?;
        let zone_name = Name::from_ascii(&zone)
            .map_err(|e| decoding(&format!("zone {zone:?} is not a name"), e.into()))?;
        if !zone_name.eq_ignore_root(apex) {
            return Err(format(format!("the key is for {zone}, not {apex}")));
        }
        let algorithm = match alg.as_deref() {
            Some("13") => Algorithm::ECDSAP256SHA256,
            Some("15") => Algorithm::ED25519,
            Some(other) => return Err(format(format!("algorithm {other:?} is not 13 or 15"))),
            None => return Err(format("no algorithm: line".into())),
        };
        let pkcs8 = STANDARD
            .decode(secret.ok_or_else(|| format("no private-key: line".into()))?)
            .map_err(|e| decoding("private-key is not base64", e.into()))?;
        Self::from_pkcs8(&pkcs8, algorithm, apex, path)
    }

    fn from_pkcs8(
        pkcs8: &[u8],
        algorithm: Algorithm,
        apex: &Name,
        path: &Path,
    ) -> Result<Self, KeyError> {
        let decoding =
            |reason: &str, cause: Box<dyn std::error::Error + Send + Sync>| KeyError::Format {
                path: path.to_owned(),
                reason: reason.to_owned(),
                cause: Some(cause),
            };
        let signer: Box<dyn SigningKey> = if algorithm == Algorithm::ED25519 {
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
                .map_err(|e| decoding("private-key is not an Ed25519 PKCS#8 key", e.into()))?;
            Box::new(Ed25519SigningKey::from_ed25519(pair))
        } else {
            let pair = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
                &SystemRandom::new(),
            )
            .map_err(|e| decoding("private-key is not a P-256 PKCS#8 key", e.into()))?;
            Box::new(EcdsaSigningKey::from_ecdsa(pair, algorithm))
        };
        let public = signer.to_public_key()?;
        let dnskey = DNSKEY::with_flags(CSK_FLAGS, public.clone());
        let key_tag = dnskey.calculate_key_tag()?;
        let revoked = DNSKEY::with_flags(CSK_FLAGS | REVOKE, public);
        let revoked_tag = revoked.calculate_key_tag()?;
        let digest = dnskey.to_digest(apex, DigestType::SHA256)?;
        let ds = DS::new(
            key_tag,
            algorithm,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        );
        Ok(Self {
            signer,
            algorithm,
            dnskey,
            key_tag,
            revoked,
            revoked_tag,
            ds,
            apex: apex.clone(),
            path: path.to_owned(),
        })
    }

    /// Signs to-be-signed data.
    pub fn sign(&self, tbs: &TBS) -> Result<Vec<u8>, KeyError> {
        Ok(self.signer.sign(tbs)?)
    }

    /// `example.test. 3600 IN DNSKEY 257 3 13 <base64>`
    pub fn dnskey_line(&self, ttl: u32) -> String {
        format!("{} {ttl} IN DNSKEY {}", self.apex, self.dnskey)
    }

    /// `example.test. 3600 IN DS <tag> 13 2 <hex>`
    pub fn ds_line(&self, ttl: u32) -> String {
        format!("{} {ttl} IN DS {}", self.apex, self.ds)
    }
}

/// Writes a new key file (see [`secret::create`]: mode 0600 in a 0700 directory, whole or not
/// at all, never over an existing key).
fn create(path: &Path, apex: &Name, algorithm: Algorithm) -> Result<(), KeyError> {
    write_file(path, apex, algorithm, &new_pkcs8(algorithm)?)
}

/// A new private key, as a PKCS#8 document.
fn new_pkcs8(algorithm: Algorithm) -> Result<Vec<u8>, KeyError> {
    let rng = SystemRandom::new();
    if algorithm == Algorithm::ED25519 {
        Ed25519KeyPair::generate_pkcs8(&rng).map(|d| d.as_ref().to_vec())
    } else {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
    }
    .map_err(|_| KeyError::Generate)
}

fn write_file(
    path: &Path,
    apex: &Name,
    algorithm: Algorithm,
    pkcs8: &[u8],
) -> Result<(), KeyError> {
    let text = format!(
        "; Herald zone signing key (CSK) of {apex} Secret: keep mode 0600.\n\
         zone: {apex}\nalgorithm: {}\ncreated: {}\nprivate-key: {}\n",
        u8::from(algorithm),
        unix_now(),
        STANDARD.encode(pkcs8)
    );
    secret::create(path, &text)?;
    tracing::info!(path = %path.display(), algorithm = u8::from(algorithm), "zone signing key created");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn apex() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    #[test]
    fn created_once_private_and_reloaded() {
        for alg in [Algorithm::ECDSAP256SHA256, Algorithm::ED25519] {
            let dir = tempfile::tempdir().unwrap();
            let (key, created) =
                ZoneKey::load_or_create(dir.path(), "example.test", &apex(), alg).unwrap();
            assert!(created);
            let path = key_path(dir.path(), "example.test");
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(path.parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700
            );
            let (again, created) =
                ZoneKey::load_or_create(dir.path(), "example.test", &apex(), alg).unwrap();
            assert!(!created);
            assert_eq!(again.dnskey, key.dnskey);
            assert_eq!(again.key_tag, key.key_tag);
            let line = key.dnskey_line(3600);
            assert!(
                line.starts_with(&format!(
                    "example.test. 3600 IN DNSKEY 257 3 {} ",
                    u8::from(alg)
                )),
                "{line}"
            );
            let ds = key.ds_line(3600);
            assert!(
                ds.starts_with(&format!(
                    "example.test. 3600 IN DS {} {} 2 ",
                    key.key_tag,
                    u8::from(alg)
                )),
                "{ds}"
            );
            assert!(!format!("{key:?}").contains("private"));
        }
    }

    #[test]
    fn refuses_readable_broken_or_mismatched_keys() {
        let dir = tempfile::tempdir().unwrap();
        ZoneKey::load_or_create(
            dir.path(),
            "example.test",
            &apex(),
            Algorithm::ECDSAP256SHA256,
        )
        .unwrap();
        let path = key_path(dir.path(), "example.test");
        let good = std::fs::read_to_string(&path).unwrap();

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = ZoneKey::load(dir.path(), "example.test", &apex()).unwrap_err();
        assert!(
            matches!(err, KeyError::File(SecretError::Mode { mode: 0o640, .. })),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let err = ZoneKey::load_or_create(dir.path(), "example.test", &apex(), Algorithm::ED25519)
            .unwrap_err();
        assert!(err.to_string().contains("rollover"), "{err}");

        for (broken, needle) in [
            (
                good.replace("private-key: ", "private-key: !!"),
                "not base64",
            ),
            (
                good.replace("algorithm: 13", "algorithm: 8"),
                "not 13 or 15",
            ),
            (
                good.replace("algorithm: 13", "algorithm: 15"),
                "not an Ed25519",
            ),
            (
                good.replace("zone: example.test.", "zone: other.test."),
                "not example.test.",
            ),
            ("garbage\n".to_owned(), "not key: value"),
            (String::new(), "no zone"),
        ] {
            std::fs::write(&path, broken).unwrap();
            let err = ZoneKey::load_or_create(
                dir.path(),
                "example.test",
                &apex(),
                Algorithm::ECDSAP256SHA256,
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(needle) && err.contains("example.test.key"),
                "{err}"
            );
        }
        let err = ZoneKey::load(
            dir.path(),
            "other.test",
            &Name::from_ascii("other.test.").unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::Missing { .. }), "{err}");
    }
}
