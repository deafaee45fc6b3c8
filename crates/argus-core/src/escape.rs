//! Printing untrusted names (file names from the dropzone, hostnames from `.env` files) safely,
//! and percent-encoding arbitrary bytes into one field of a state line.

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

/// Appends `bytes` percent-encoded to `out`: letters, digits and `/._+,:=@-` stay as they are,
/// every other byte becomes `%XX`, and so does a lone `-` (which state lines use for "none").
/// The result holds no space, tab or newline, so it is one field of a state line.
pub fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"/._+,:=@".contains(&b) || (b == b'-' && bytes.len() > 1) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// The bytes [`percent_encode`] encoded, or `None` for a malformed `%` escape.
pub fn percent_decode(field: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'%' {
            let hex = std::str::from_utf8(field.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_round_trips_any_bytes_into_one_field() {
        for bytes in [
            &b""[..],
            b"-",
            b"--",
            b"a b\tc\n%",
            b"\xff\x00/x_y.z",
            b"{host}$(rm -rf /)",
        ] {
            let mut field = Vec::new();
            percent_encode(bytes, &mut field);
            assert!(!field.iter().any(|b| b" \t\n".contains(b)), "{field:?}");
            assert_ne!(field, b"-");
            assert_eq!(percent_decode(&field).as_deref(), Some(bytes));
        }
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(percent_decode(b"%zz"), None);
    }
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
