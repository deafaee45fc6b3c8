//! The value grammar of the configuration files of both programs, with one set of rules:
//! durations, sizes, and the values of the 2003 recipe's shell assignments (read as text, never
//! by a shell). Client ids and globs belong to `webjob-drop`, which selects uploads by them.
//!
//! ```
//! use std::time::Duration;
//! use argus_core::grammar::{format_duration, parse_duration, parse_size, shell_value};
//!
//! assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
//! assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
//! assert_eq!(parse_size("20G"), Some(20 << 30));
//! assert_eq!(shell_value("\"/bin/gzip -9\"  # the recipe's default").as_deref(), Ok("/bin/gzip -9"));
//! assert!(shell_value("$HOME/argus").is_err());
//! ```

use std::fmt::Write as _;
use std::time::Duration;

/// Parses a duration: numbers with a unit `s`, `m`, `h` or `d`, one or several (`"90s"`,
/// `"30m"`, `"1h30m"`, `"2d"`), or a bare whole number of seconds. `"0"` is zero (which a
/// setting may read as "never"). Surrounding white space is ignored; anything else is `None`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(Duration::from_secs);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    digits.is_empty().then_some(Duration::from_secs(total))
}

/// Formats a duration the way [`parse_duration`] reads it, largest units first (`"1h30m"`).
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            let _infallible = write!(out, "{}{unit}", s / size);
            s %= size;
        }
    }
    out
}

/// Parses a size of at least one byte: a whole number of bytes, optionally with a binary unit
/// `K`, `M`, `G` or `T` (also written `KiB`, `KB`, ...; `k` for `K`).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = text.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let unit = unit.trim();
    let shift = match unit
        .strip_suffix("iB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(unit)
    {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift).filter(|&n| n > 0)
}

/// An amount of space: a size, or a share of something (a file system, a limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// So many bytes.
    Bytes(u64),
    /// So many percent (1 to 100).
    Percent(u8),
}

impl Amount {
    /// The bytes this amount is of `total`.
    pub fn of(self, total: u64) -> u64 {
        match self {
            Amount::Bytes(n) => n,
            Amount::Percent(p) => {
                u64::try_from(u128::from(total) * u128::from(p) / 100).unwrap_or(u64::MAX)
            }
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Bytes(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// A size as [`parse_size`] reads it, or a percentage from 1% to 100% (`"10%"`).
pub fn parse_amount(text: &str) -> Option<Amount> {
    let text = text.trim();
    match text.strip_suffix('%') {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(Amount::Percent),
        None => parse_size(text).map(Amount::Bytes),
    }
}

/// The value of a shell assignment (what follows `NAME=`), when it is a plain word: bare,
/// `'single'` or `"double"` quoted (with the `\"`, `\\`, `\$` and `` \` `` escapes), and
/// optionally a `# comment` after white space. Anything a shell would expand (`$`, a backquote)
/// or run (`;`, `|`, `&`, a redirection) is refused rather than guessed.
pub fn shell_value(raw: &str) -> Result<String, String> {
    const EXPANSION: &str = "the value uses shell expansion ($ or `), which is never performed: \
                             write the value out";
    let mut out = String::new();
    let mut chars = raw.trim_start().chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("the value has an unterminated ' quote".to_owned()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('$' | '`' | '"' | '\\')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("the value has an unterminated \" quote".to_owned()),
                    },
                    Some('$' | '`') => return Err(EXPANSION.to_owned()),
                    Some(c) => out.push(c),
                    None => return Err("the value has an unterminated \" quote".to_owned()),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => return Err("the value ends in a backslash".to_owned()),
            },
            '$' | '`' => return Err(EXPANSION.to_owned()),
            ';' | '|' | '&' | '<' | '>' | '(' | ')' => {
                return Err(format!(
                    "the value is followed by the shell operator {c:?}; only plain assignments are read"
                ));
            }
            c if c.is_whitespace() => {
                let rest = chars.as_str().trim();
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                return Err(format!(
                    "more follows the value ({rest:?}), which cannot be read without a shell: \
                     quote the whole value"
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amount_is_a_size_or_a_percentage() {
        assert_eq!(parse_amount("500G"), Some(Amount::Bytes(500 << 30)));
        assert_eq!(parse_amount(" 90% "), Some(Amount::Percent(90)));
        assert_eq!(parse_amount("0%"), None);
        assert_eq!(parse_amount("101%"), None);
        assert_eq!(parse_amount("ten%"), None);
        assert_eq!(Amount::Percent(90).of(1000), 900);
        assert_eq!(Amount::Bytes(7).of(1000), 7);
        assert_eq!(Amount::Percent(100).of(u64::MAX), u64::MAX);
    }

    #[test]
    fn durations_read_one_or_several_units() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 45 "), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "h", "5x", "1h30", "-5s", "1w", "1.5h", "1 h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for secs in [1, 59, 61, 3600, 93_784, 86_400 * 30] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Some(d), "{secs}");
        }
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1KB"), Some(1024));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("2 T"), Some(2 << 40));
        for bad in [
            "",
            "0",
            "G",
            "5X",
            "1X",
            "-1",
            "-1G",
            "1.5G",
            "99999999999999T",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn shell_values_are_read_literally_or_refused() {
        for (raw, want) in [
            ("\"/bin/gzip -9\"", "/bin/gzip -9"),
            ("'/opt/ar gus'", "/opt/ar gus"),
            ("eth0  # comment", "eth0"),
            ("\"a\\\"b\\$c\"", "a\"b$c"),
            ("a\\ b", "a b"),
            ("\"client1 client2\"  # two", "client1 client2"),
            ("", ""),
            ("\"\"", ""),
            ("\"30\"", "30"),
            ("  \"x\"", "x"),
        ] {
            assert_eq!(shell_value(raw).as_deref(), Ok(want), "{raw}");
        }
        for bad in [
            "$HOME/argus",
            "\"${X}\"",
            "`hostname`",
            "a b",
            "\"open",
            "'open",
            "x; rm -rf /",
            "x|y",
            "x>y",
            "end\\",
        ] {
            assert!(shell_value(bad).is_err(), "{bad}");
        }
    }
}
