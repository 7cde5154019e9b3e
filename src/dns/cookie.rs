//! DNS cookies (RFC 7873) with the interoperable server cookie of RFC 9018.
//!
//! A client that sends a COOKIE option gets one back: its own client cookie followed by a
//! server cookie that only this server (or a server sharing its secret) can make:
//!
//! ```text
//! Version (1) = 1 | Reserved (3) = 0 | Timestamp (4) | Hash (8)
//! Hash = SipHash-2-4(secret, Client Cookie | Version | Reserved | Timestamp | Client IP)
//! ```
//!
//! A query whose server cookie checks proves that its source address is not spoofed: response
//! rate limiting ([`super::rrl`]) lets it through. Herald never *requires* a cookie (RFC 7873
//! §5.2.3): a query without one, or with a stale or foreign one, is answered normally with a
//! fresh cookie, unless rate limiting holds it back; then it may get BADCOOKIE instead, which
//! tells a cookie-aware client to ask again with the new cookie (§5.2.3, §5.3).
//!
//! Secrets: an active secret makes cookies, and a staging secret is accepted too, so that
//! servers sharing a secret can move to a new one without a window of refused cookies
//! (RFC 9018 §5: install the new secret as staging everywhere, then make it active everywhere,
//! then drop the old one). Without a configured secret, one is drawn at random at start.
//!
//! The check runs on the query path: it copies into a stack buffer and hashes, allocating
//! nothing.

use std::net::IpAddr;

use arc_swap::ArcSwap;
use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use thiserror::Error;

/// The COOKIE option code (RFC 7873 §4).
pub const OPTION_CODE: u16 = 10;
/// The extended RCODE BADCOOKIE (RFC 7873 §8).
pub const BADCOOKIE: u16 = 23;
/// Length of a client cookie.
pub const CLIENT_LEN: usize = 8;
/// Length of an RFC 9018 server cookie.
pub const SERVER_LEN: usize = 16;
/// Length of the option's value in every answer: client and server cookie.
pub const REPLY_LEN: usize = CLIENT_LEN + SERVER_LEN;
/// Bytes the COOKIE option adds to an answer's OPT record: code, length, value.
pub const OPTION_LEN: usize = 4 + REPLY_LEN;

const VERSION: u8 = 1;
/// A server cookie is accepted up to an hour after it was made (RFC 9018 §4.3)…
const MAX_AGE: u32 = 3600;
/// …and up to five minutes before, for clocks that differ between servers.
const MAX_AHEAD: u32 = 300;
/// A valid cookie older than this is replaced by a fresh one in the answer (RFC 9018 §4.3).
const RENEW_AFTER: u32 = 1800;

/// A 128-bit SipHash key.
pub type Secret = [u8; 16];

/// A COOKIE option as a query carried it (RFC 7873 §4). Its length was checked when it was
/// read: 8 bytes of client cookie, then nothing or 8 to 32 bytes of server cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCookie {
    pub client: [u8; CLIENT_LEN],
    /// The server cookie when it is as long as the ones Herald makes; otherwise zeros.
    pub server: [u8; SERVER_LEN],
    /// The server cookie's length as sent: 0 when the client has none yet.
    pub server_len: u8,
}

impl ClientCookie {
    /// Reads an option value; `None` when its length is malformed (RFC 7873 §5.2.2: fewer
    /// than 8 bytes, 9 to 15, or more than 40), which the caller answers with FORMERR.
    pub fn read(value: &[u8]) -> Option<Self> {
        let server_len = value.len().checked_sub(CLIENT_LEN)?;
        if server_len != 0 && !(8..=32).contains(&server_len) {
            return None;
        }
        let mut cookie = Self {
            client: value[..CLIENT_LEN].try_into().ok()?,
            server: [0; SERVER_LEN],
            server_len: server_len as u8,
        };
        if server_len == SERVER_LEN {
            cookie.server.copy_from_slice(&value[CLIENT_LEN..]);
        }
        Some(cookie)
    }
}

/// What the check made of a query's cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The server cookie was made by this server's active or staging secret, for this client
    /// cookie and this address, within the last hour: the address is not spoofed.
    pub valid: bool,
    /// The option value to answer with: the client cookie and a server cookie.
    pub reply: [u8; REPLY_LEN],
}

/// Why a cookie secret cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    #[error(
        "a cookie secret is 32 hexadecimal digits (128 bits), as `openssl rand -hex 16` prints"
    )]
    Secret,
}

/// Reads a secret written as 32 hex digits (surrounding white space ignored), as NSD's and
/// Knot's cookie secrets are written.
pub fn parse_secret(text: &str) -> Result<Secret, CookieError> {
    let text = text.trim();
    if text.len() != 32 {
        return Err(CookieError::Secret);
    }
    let mut secret = [0u8; 16];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or(CookieError::Secret)?, 16)
            .map_err(|_| CookieError::Secret)?;
    }
    Ok(secret)
}

/// The secrets in force.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    /// Makes every new server cookie.
    pub active: Secret,
    /// Accepted as well, during a rollover.
    pub staging: Option<Secret>,
}

impl std::fmt::Debug for Secrets {
    /// Never prints the secrets themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("staging", &self.staging.is_some())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// A random active secret and no staging one: cookies valid for this process only.
    pub fn random() -> Self {
        let mut active = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut active)
            .expect("the system's random source works");
        Self {
            active,
            staging: None,
        }
    }
}

/// The server's cookie secrets, replaceable while serving (SIGHUP).
#[derive(Debug)]
pub struct Cookies {
    secrets: ArcSwap<Secrets>,
}

impl Cookies {
    pub fn new(secrets: Secrets) -> Self {
        Self {
            secrets: ArcSwap::from_pointee(secrets),
        }
    }

    /// Puts `secrets` in force for every query from now on.
    pub fn replace(&self, secrets: Secrets) {
        self.secrets.store(std::sync::Arc::new(secrets));
    }

    /// Checks `cookie`, sent from `ip` at `now` (Unix seconds), and makes the option to answer
    /// with: the same server cookie while it is valid and younger than half an hour, a fresh
    /// one otherwise (RFC 9018 §4.3).
    pub fn check(&self, cookie: &ClientCookie, ip: IpAddr, now: u32) -> Checked {
        let secrets = self.secrets.load();
        let mut reply = [0u8; REPLY_LEN];
        reply[..CLIENT_LEN].copy_from_slice(&cookie.client);
        if usize::from(cookie.server_len) == SERVER_LEN && cookie.server[0] == VERSION {
            let s = &cookie.server;
            let made = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
            // Serial-number arithmetic (RFC 1982), as RFC 9018 §4.3 asks: wraps in 2106.
            let age = now.wrapping_sub(made);
            let in_time = age <= MAX_AGE || made.wrapping_sub(now) <= MAX_AHEAD;
            let by = |secret: &Secret| hash(secret, &cookie.client, &s[..8], ip) == s[8..16];
            let by_active = in_time && by(&secrets.active);
            if by_active || (in_time && secrets.staging.as_ref().is_some_and(by)) {
                if by_active && age < RENEW_AFTER {
                    reply[CLIENT_LEN..].copy_from_slice(s);
                } else {
                    make(&secrets.active, &cookie.client, now, ip, &mut reply);
                }
                return Checked { valid: true, reply };
            }
        }
        make(&secrets.active, &cookie.client, now, ip, &mut reply);
        Checked {
            valid: false,
            reply,
        }
    }
}

/// Writes a fresh server cookie for `client` from `ip` at `now` into `reply[8..]`.
fn make(secret: &Secret, client: &[u8; CLIENT_LEN], now: u32, ip: IpAddr, reply: &mut [u8]) {
    let mut head = [0u8; 8];
    head[0] = VERSION;
    head[4..].copy_from_slice(&now.to_be_bytes());
    reply[CLIENT_LEN..CLIENT_LEN + 8].copy_from_slice(&head);
    reply[CLIENT_LEN + 8..].copy_from_slice(&hash(secret, client, &head, ip));
}

/// RFC 9018 §4.4: SipHash-2-4 over the client cookie, version, reserved bytes, timestamp and
/// the client's address (4 or 16 bytes), its 64-bit result in the byte order of the
/// reference implementation (little-endian).
fn hash(secret: &Secret, client: &[u8; CLIENT_LEN], head: &[u8], ip: IpAddr) -> [u8; 8] {
    let mut h = SipHasher24::new_with_key(secret);
    h.write(client);
    h.write(head);
    match ip.to_canonical() {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    h.finish().to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn cookie(text: &str) -> ClientCookie {
        ClientCookie::read(&hex(text)).unwrap()
    }

    fn cookies(secret: &str) -> Cookies {
        Cookies::new(Secrets {
            active: parse_secret(secret).unwrap(),
            staging: None,
        })
    }

    /// RFC 9018 Appendix A.1: a client without a server cookie learns one.
    #[test]
    fn rfc_9018_a1_learning_a_new_server_cookie() {
        let c = cookies("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let got = c.check(
            &cookie("2464c4abcf10c957"),
            "198.51.100.100".parse().unwrap(),
            1559731985,
        );
        assert!(!got.valid);
        assert_eq!(
            got.reply.to_vec(),
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
    }

    /// Appendix A.2: the same client comes back 40 minutes later; its cookie is valid but
    /// past half an hour, so it gets a new one.
    #[test]
    fn rfc_9018_a2_the_same_client_learns_a_renewed_cookie() {
        let c = cookies("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let got = c.check(
            &cookie("2464c4abcf10c957010000005cf79f111f8130c3eee29480"),
            "198.51.100.100".parse().unwrap(),
            1559734385,
        );
        assert!(got.valid);
        assert_eq!(
            got.reply.to_vec(),
            hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")
        );
    }

    /// Appendix A.3: another implementation set the reserved bytes; they are hashed as
    /// received, so the cookie checks. Two hours on it has expired, and the fresh one that
    /// replaces it has them zeroed.
    #[test]
    fn rfc_9018_a3_reserved_bytes_are_hashed_as_received() {
        let c = cookies("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let ip: IpAddr = "203.0.113.203".parse().unwrap();
        let sent = cookie("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        assert!(c.check(&sent, ip, 1559727985 + 600).valid);
        let mut tampered = sent;
        tampered.server[3] ^= 1;
        assert!(!c.check(&tampered, ip, 1559727985 + 600).valid);
        let later = c.check(&sent, ip, 1559734700);
        assert!(!later.valid);
        assert_eq!(
            later.reply.to_vec(),
            hex("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")
        );
    }

    /// Appendix A.4: an IPv6 client whose cookie was made with the previous secret, now the
    /// staging one, gets one made with the new secret.
    #[test]
    fn rfc_9018_a4_ipv6_after_a_rollover() {
        let c = Cookies::new(Secrets {
            active: parse_secret("445536bcd2513298075a5d379663c962").unwrap(),
            staging: Some(parse_secret("dd3bdf9344b678b185a6f5cb60fca715").unwrap()),
        });
        let got = c.check(
            &cookie("22681ab97d52c298010000005cf7c57926556bd0934c72f8"),
            "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap(),
            1559741961,
        );
        assert!(got.valid);
        assert_eq!(
            got.reply.to_vec(),
            hex("22681ab97d52c298010000005cf7c609a6bb79d16625507a")
        );
    }

    #[test]
    fn a_fresh_cookie_is_echoed_and_everything_else_is_replaced() {
        let c = cookies("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let ip: IpAddr = "2001:db8::53".parse().unwrap();
        let first = c.check(&cookie("0102030405060708"), ip, 1_000_000);
        let back = ClientCookie::read(&first.reply).unwrap();
        // Ten minutes later: valid, and the same cookie comes back.
        let again = c.check(&back, ip, 1_000_600);
        assert!(again.valid);
        assert_eq!(again.reply, first.reply);
        // From another address, with another client cookie, too old, from the future,
        // tampered with: not valid, and a fresh cookie is made.
        let other: IpAddr = "2001:db8::54".parse().unwrap();
        assert!(!c.check(&back, other, 1_000_600).valid);
        let mut moved = back;
        moved.client[0] ^= 1;
        assert!(!c.check(&moved, ip, 1_000_600).valid);
        assert!(!c.check(&back, ip, 1_000_000 + MAX_AGE + 1).valid);
        assert!(!c.check(&back, ip, 1_000_000 - MAX_AHEAD - 1).valid);
        assert!(c.check(&back, ip, 1_000_000 - MAX_AHEAD).valid);
        let mut forged = back;
        forged.server[15] ^= 1;
        let checked = c.check(&forged, ip, 1_000_600);
        assert!(!checked.valid);
        assert_eq!(
            checked.reply[8..16],
            [1, 0, 0, 0, 0, 0x0F, 0x44, 0x98],
            "version, reserved, the time now"
        );
    }

    #[test]
    fn a_staging_secret_is_accepted_and_replaced_by_the_active_one() {
        let (old, new) = (
            parse_secret("00112233445566778899aabbccddeeff").unwrap(),
            parse_secret("ffeeddccbbaa99887766554433221100").unwrap(),
        );
        let c = Cookies::new(Secrets {
            active: old,
            staging: None,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let by_old =
            ClientCookie::read(&c.check(&cookie("0102030405060708"), ip, 5000).reply).unwrap();
        // The new secret becomes active, the old one stays as staging: still valid, and
        // renewed with the new secret at once.
        c.replace(Secrets {
            active: new,
            staging: Some(old),
        });
        let renewed = c.check(&by_old, ip, 5010);
        assert!(renewed.valid);
        assert_ne!(renewed.reply[8..], by_old.server);
        assert!(
            c.check(&ClientCookie::read(&renewed.reply).unwrap(), ip, 5020)
                .valid
        );
        // The old one retired: its cookies are no longer valid.
        c.replace(Secrets {
            active: new,
            staging: None,
        });
        assert!(!c.check(&by_old, ip, 5030).valid);
    }

    #[test]
    fn malformed_lengths_and_secrets_are_refused() {
        for len in [0, 7, 9, 15, 41] {
            assert!(ClientCookie::read(&vec![1; len]).is_none(), "{len}");
        }
        for len in [8, 16, 24, 40] {
            assert!(ClientCookie::read(&vec![1; len]).is_some(), "{len}");
        }
        // A server cookie of another length is kept as a length only, and never valid.
        let long = ClientCookie::read(&[1; 40]).unwrap();
        assert_eq!((long.server_len, long.server), (32, [0; 16]));
        for bad in [
            "",
            "00112233",
            "zz112233445566778899aabbccddeeff",
            "0011223344556677889900aabbccddeeff",
        ] {
            assert_eq!(parse_secret(bad), Err(CookieError::Secret), "{bad}");
        }
        assert_eq!(
            format!("{:?}", Secrets::random()),
            "Secrets { staging: false, .. }"
        );
    }
}
