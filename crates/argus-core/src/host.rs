//! Validated host names: the only form in which a name from a remote host becomes part of a path.

use std::fmt;
use std::str::FromStr;

/// Longest accepted host name, in bytes (the DNS limit for a full name).
pub const MAX_LEN: usize = 253;

/// A host name that is safe to use as a file-name component: 1 to 253 bytes of ASCII letters,
/// digits, `.` and `-`, starting with a letter or digit, with no `..`. So it can never hold a path
/// separator, a parent-directory reference, whitespace, a control character or non-UTF-8 bytes.
///
/// ```
/// use argus_core::host::Hostname;
/// assert!(Hostname::new("sensor-1.example.org").is_ok());
/// for bad in ["", "../../etc/x", "a/b", "-x", "a..b", "host name", "ho\u{e9}st"] {
///     assert!(Hostname::new(bad).is_err(), "{bad:?}");
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hostname(String);

/// Why a host name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidHostname {
    /// Nothing at all.
    #[error("host name is empty")]
    Empty,
    /// Longer than [`MAX_LEN`] bytes.
    #[error("host name is {0} bytes long, more than 253")]
    TooLong(usize),
    /// A byte outside `[A-Za-z0-9.-]` (the byte is given).
    #[error("host name holds the byte 0x{0:02x}; only letters, digits, '.' and '-' are allowed")]
    BadByte(u8),
    /// Starts with `.` or `-`.
    #[error("host name must start with a letter or digit")]
    BadStart,
    /// Holds `..`.
    #[error("host name holds '..'")]
    DotDot,
}

impl Hostname {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, InvalidHostname> {
        Hostname::from_bytes(name.as_bytes())
    }

    /// Validates raw bytes (e.g. a value from an `.env` file, which may not be UTF-8).
    pub fn from_bytes(name: &[u8]) -> Result<Self, InvalidHostname> {
        if name.is_empty() {
            return Err(InvalidHostname::Empty);
        }
        if name.len() > MAX_LEN {
            return Err(InvalidHostname::TooLong(name.len()));
        }
        if let Some(&b) = name
            .iter()
            .find(|&&b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        {
            return Err(InvalidHostname::BadByte(b));
        }
        if !name[0].is_ascii_alphanumeric() {
            return Err(InvalidHostname::BadStart);
        }
        if name.windows(2).any(|w| w == b"..") {
            return Err(InvalidHostname::DotDot);
        }
        // Every byte was checked to be ASCII above.
        Ok(Hostname(String::from_utf8_lossy(name).into_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Hostname {
    type Err = InvalidHostname;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hostname::new(s)
    }
}

impl AsRef<str> for Hostname {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_host_names() {
        for ok in [
            "a",
            "client1",
            "sensor-01.dmz.example.org",
            "10.0.0.1",
            "A1",
        ] {
            assert_eq!(Hostname::new(ok).expect(ok).as_str(), ok);
        }
        assert!(Hostname::new(&"a".repeat(253)).is_ok());
    }

    #[test]
    fn refuses_hostile_names_with_the_reason() {
        let cases: [(&[u8], InvalidHostname); 9] = [
            (b"", InvalidHostname::Empty),
            (&[b'a'; 300], InvalidHostname::TooLong(300)),
            (b"../../etc/x", InvalidHostname::BadByte(b'/')),
            (b"a/b", InvalidHostname::BadByte(b'/')),
            (b"host\xff", InvalidHostname::BadByte(0xff)),
            (b"ho st", InvalidHostname::BadByte(b' ')),
            (b".hidden", InvalidHostname::BadStart),
            (b"a..b", InvalidHostname::DotDot),
            (b"under_score", InvalidHostname::BadByte(b'_')),
        ];
        for (input, want) in cases {
            assert_eq!(Hostname::from_bytes(input), Err(want), "{input:?}");
        }
    }
}
