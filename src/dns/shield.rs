//! The abuse controls of the query path, applied to an answer once it is built: DNS cookies
//! ([`super::cookie`]) and response rate limiting ([`super::rrl`]).
//!
//! [`Shield`] holds the cookie secrets and, when it is switched on, the rate limiter; the
//! socket loops hand it to [`super::answer::handle_counted`] with the client's address. A
//! query with a COOKIE option gets its answer with the option appended to the answer's OPT
//! record (room for it was kept when the answer was sized). Over UDP, an answer to a client
//! without a valid cookie is then counted against its prefix; past the limit it is dropped, or
//! sent truncated (BADCOOKIE to a client that sent a cookie).

use std::net::IpAddr;

use super::cookie::{self, Checked, Cookies, Secrets};
use super::message::{Edns, rcode};
use super::rrl::{Limits, Rrl, Verdict};

/// The cookie secrets and the rate limiter, shared by every socket loop.
#[derive(Debug)]
pub struct Shield {
    pub cookies: Cookies,
    /// `None` while rate limiting is off (the default).
    pub rrl: Option<Rrl>,
}

impl Shield {
    pub fn new(secrets: Secrets, rrl: Option<Limits>) -> Self {
        Self {
            cookies: Cookies::new(secrets),
            rrl: rrl.map(Rrl::new),
        }
    }
}

impl Default for Shield {
    /// Cookies with a random secret, no rate limiting.
    fn default() -> Self {
        Self::new(Secrets::random(), None)
    }
}

/// Who asked, for [`super::answer::handle_counted`].
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub shield: &'a Shield,
    pub ip: IpAddr,
}

/// What the shield did to an answer, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Slipped,
    Dropped,
}

/// Seconds since the Unix epoch, as cookies and the limiter count them.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Appends the COOKIE option to the answer's OPT record, which is its last record and still
/// empty (RFC 7873 §5.2: every answer to a query with a cookie carries one).
pub fn append_cookie(out: &mut Vec<u8>, reply: &[u8; cookie::REPLY_LEN]) {
    let rdlen_at = out.len() - 2;
    out.extend_from_slice(&cookie::OPTION_CODE.to_be_bytes());
    out.extend_from_slice(&(cookie::REPLY_LEN as u16).to_be_bytes());
    out.extend_from_slice(reply);
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&(cookie::OPTION_LEN as u16).to_be_bytes());
}

/// Applies the limiter to the UDP answer in `out`, whose question is `question_len` bytes and
/// whose query had `edns` (with `cookie` checked). A slipped answer is rewritten in place:
/// the header and question with TC set, or BADCOOKIE for a client that sent a cookie.
pub fn limit(
    rrl: &Rrl,
    ip: IpAddr,
    now: u32,
    out: &mut Vec<u8>,
    question_len: usize,
    edns: Option<Edns>,
    cookie: Option<&Checked>,
) -> Outcome {
    if out.len() < 12 + question_len {
        return Outcome::Sent;
    }
    let nxdomain = u16::from(out[3] & 0xF) == rcode::NXDOMAIN;
    match rrl.check(ip, nxdomain, now) {
        Verdict::Send => Outcome::Sent,
        Verdict::Drop => Outcome::Dropped,
        Verdict::Slip => {
            out.truncate(12 + question_len);
            out[6..12].fill(0);
            match (edns, cookie) {
                (Some(e), Some(c)) => {
                    // RFC 7873 §5.2.3: BADCOOKIE with a fresh cookie; the client asks again
                    // with it, and a valid cookie is never limited.
                    out[2] &= !0x04; // not an authoritative answer
                    out[3] = (out[3] & 0xF0) | (cookie::BADCOOKIE & 0xF) as u8;
                    super::answer::push_opt(out, e, cookie::BADCOOKIE);
                    out[11] = 1;
                    append_cookie(out, &c.reply);
                }
                (edns, _) => {
                    out[2] |= 0x02; // TC: ask again over TCP
                    if let Some(e) = edns {
                        super::answer::push_opt(out, e, u16::from(out[3] & 0xF));
                        out[11] = 1;
                    }
                }
            }
            Outcome::Slipped
        }
    }
}
