//! Values of settings as people write them: `14d`, `16M`, `192.0.2.0/24`. Each parser names
//! the text it refused and the form it expected, so a flag's error says how to fix it.

use std::net::IpAddr;

use ipnet::IpNet;
use thiserror::Error;

/// A value that is not of the expected form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValueError {
    #[error("{0:?} is not a duration like 90s, 30m, 12h, 14d or 2w")]
    Duration(String),
    #[error("{0:?} is not a size (like 65536, 512k, 64M or 1G)")]
    Size(String),
    #[error("{0:?} is not an address prefix (like 192.0.2.0/24 or 2001:db8::1)")]
    Prefix(String),
}

const DAY: u32 = 86_400;

/// `90`, `90s`, `30m`, `12h`, `14d` or `2w`, in seconds.
pub fn duration(text: &str) -> Result<u32, ValueError> {
    let bad = || ValueError::Duration(text.to_owned());
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return Err(bad()),
    };
    digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(bad)
}

/// A byte count with an optional `k`, `M` or `G` (powers of 1024).
pub fn size(text: &str) -> Result<u64, ValueError> {
    let (digits, shift) = match text.strip_suffix(['k', 'K']) {
        Some(d) => (d, 10),
        None => match text.strip_suffix('M') {
            Some(d) => (d, 20),
            None => match text.strip_suffix('G') {
                Some(d) => (d, 30),
                None => (text, 0),
            },
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| ValueError::Size(text.to_owned()))
}

/// An address prefix, or one address (a prefix of its full length).
pub fn prefix(text: &str) -> Result<IpNet, ValueError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| ValueError::Prefix(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("90"), Ok(90));
        assert_eq!(duration("30m"), Ok(1800));
        assert_eq!(duration("2w"), Ok(14 * DAY));
        for bad in ["", "10x", "d", "-1s", "99999999999s", "5000000w"] {
            let err = duration(bad).unwrap_err().to_string();
            assert!(err.contains("not a duration"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("65536"), Ok(65536));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("64M"), Ok(64 << 20));
        assert_eq!(size("1G"), Ok(1 << 30));
        for bad in ["", "1T", "M", "-1", "99999999999999999999G"] {
            assert_eq!(size(bad), Err(ValueError::Size(bad.to_owned())));
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix("192.0.2.0/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(
            prefix("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert!(matches!(prefix("192.0.2.0/33"), Err(ValueError::Prefix(_))));
        assert!(matches!(prefix("example"), Err(ValueError::Prefix(_))));
    }
}
