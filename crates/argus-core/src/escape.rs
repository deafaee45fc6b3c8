//! Printing untrusted names (file names from the dropzone, hostnames from `.env` files) safely.

use std::fmt;

/// Displays bytes with everything outside printable ASCII escaped (`\xNN`, `\n`, `\\`), so that an
/// untrusted name can never inject terminal escapes, fake log lines or invisible characters.
///
/// ```
/// use argus_core::escape::Escaped;
/// assert_eq!(Escaped(b"a\nb\x1b[2J\xff").to_string(), r"a\nb\x1b[2J\xff");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            match b {
                b'\\' => f.write_str(r"\\")?,
                b'\n' => f.write_str(r"\n")?,
                b'\r' => f.write_str(r"\r")?,
                b'\t' => f.write_str(r"\t")?,
                0x20..=0x7e => fmt::Write::write_char(f, char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

/// Displays a path with [`Escaped`] rules applied to its raw bytes.
#[derive(Clone, Copy, Debug)]
pub struct EscapedPath<'a>(pub &'a std::path::Path);

impl fmt::Display for EscapedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::unix::ffi::OsStrExt;
        Escaped(self.0.as_os_str().as_bytes()).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    #[test]
    fn escapes_everything_unprintable() {
        assert_eq!(Escaped(b"client1_x.out").to_string(), "client1_x.out");
        assert_eq!(Escaped(b"a\\b\tc\r").to_string(), r"a\\b\tc\r");
        assert_eq!(Escaped("é".as_bytes()).to_string(), r"\xc3\xa9");
        assert_eq!(Escaped(b"\x00\x7f").to_string(), r"\x00\x7f");
        let p = Path::new(OsStr::from_bytes(b"/drop/\xffname"));
        assert_eq!(EscapedPath(p).to_string(), r"/drop/\xffname");
    }
}
