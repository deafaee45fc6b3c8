//! The value grammar of the configuration files of both programs, with one set of rules:
//! durations, sizes, shares, and the values of the 2003 recipe's shell assignments (read as
//! text, never by a shell). Client ids and globs belong to `webjob-drop`, which selects uploads
//! by them.
//!
//! A value says what it means: a size carries a unit (`B`, `K`, `M`, `G`, `T`; every unit is a
//! power of 1024, so `K`, `KB` and `KiB` are all 1024 bytes), a share carries `%`, a duration
//! carries a unit (`s`, `m`, `h`, `d`). A bare number is refused with a [`ValueError::BareNumber`]
//! that names the spellings it could have been: `90` as a low watermark might be `"90%"` or
//! `"90M"`, and reading it as 90 bytes would delete every archive. The one bare number taken is
//! a duration of `0`, which is zero in every unit.
//!
//! ```
//! use std::time::Duration;
//! use argus_core::grammar::{
//!     Amount, ValueError, format_duration, format_size, parse_amount, parse_duration, parse_size,
//!     shell_value,
//! };
//!
//! assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
//! assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
//! assert_eq!(parse_size("20G"), Ok(20 << 30));
//! assert_eq!(parse_size("1.5K"), Ok(1536));
//! assert_eq!(format_size(1_932_735_283), "1.8 GiB");
//! assert_eq!(parse_amount("90%"), Ok(Amount::Percent(90)));
//! assert!(matches!(parse_amount("90"), Err(ValueError::BareNumber { .. })));
//! assert_eq!(
//!     parse_amount("90").unwrap_err().to_string(),
//!     "a bare number has no unit: write \"90%\" or a size such as \"90M\" (K, M, G, T are powers of 1024)"
//! );
//! assert_eq!(shell_value("\"/bin/gzip -9\"  # the recipe's default").as_deref(), Ok("/bin/gzip -9"));
//! assert!(shell_value("$HOME/argus").is_err());
//! ```

use std::fmt::Write as _;
use std::time::Duration;

/// What a setting takes, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A size with a unit (`"512M"`).
    Size,
    /// A size, or a share with `%` (`"90%"`).
    Amount,
    /// A duration with a unit (`"90s"`, `"1h30m"`).
    Duration,
}

impl Kind {
    /// What a value of this kind looks like, for messages.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Size => "a size with a unit such as \"512M\" or \"20G\"",
            Kind::Amount => "a size with a unit such as \"18G\", or a share such as \"90%\"",
            Kind::Duration => "a duration such as \"90s\", \"30m\", \"6h\", \"2d\" or \"1h30m\"",
        }
    }

    /// The spellings a bare `number` could have meant.
    fn guesses(self, number: &str) -> String {
        match self {
            Kind::Size => format!(
                "write \"{number}M\", \"{number}G\" or, if bytes are meant, \"{number}B\" \
                 (K, M, G, T are powers of 1024)"
            ),
            Kind::Amount => format!(
                "write \"{number}%\" or a size such as \"{number}M\" (K, M, G, T are powers of 1024)"
            ),
            Kind::Duration => {
                format!("write \"{number}s\", \"{number}m\", \"{number}h\" or \"{number}d\"")
            }
        }
    }
}

/// Why a value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A number without the unit the setting needs.
    #[error("a bare number has no unit: {}", kind.guesses(number))]
    BareNumber {
        /// What the setting takes.
        kind: Kind,
        /// The number as written.
        number: String,
    },
    /// Not a value of this kind at all (or out of range).
    #[error("{text:?} is not {}", kind.expected())]
    Malformed {
        /// What the setting takes.
        kind: Kind,
        /// The value as written.
        text: String,
    },
}

impl ValueError {
    /// The error for a TOML integer given where a `kind` is needed (a size, a share or a
    /// duration is always a string with a unit).
    pub fn bare(kind: Kind, number: i64) -> ValueError {
        ValueError::BareNumber {
            kind,
            number: number.to_string(),
        }
    }

    fn malformed(kind: Kind, text: &str) -> ValueError {
        ValueError::Malformed {
            kind,
            text: text.to_owned(),
        }
    }
}

/// Parses a duration: numbers each followed by a unit `s`, `m`, `h` or `d`, one or several
/// (`"90s"`, `"30m"`, `"1h30m"`, `"2d"`). `"0"` is zero (which a setting may read as "never");
/// any other number without a unit is a [`ValueError::BareNumber`]. Surrounding white space is
/// ignored.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ValueError::malformed(Kind::Duration, text));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        if trimmed.bytes().all(|b| b == b'0') {
            return Ok(Duration::ZERO);
        }
        return Err(ValueError::BareNumber {
            kind: Kind::Duration,
            number: trimmed.to_owned(),
        });
    }
    let bad = || ValueError::malformed(Kind::Duration, text);
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(bad)?;
    }
    if digits.is_empty() {
        Ok(Duration::from_secs(total))
    } else {
        Err(bad())
    }
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

/// The binary units, smallest first: name and power of 1024.
const UNITS: [(&str, u32); 5] = [("B", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40)];

/// Parses a size of at least one byte: a number, whole or with a decimal fraction, and a unit
/// `B`, `K`, `M`, `G` or `T` (also written `KiB`, `KB`, ..., `k` for `K`; all powers of 1024).
/// A fraction of a byte is dropped (`"1.8G"` is 1,932,735,283 bytes). A number without a unit
/// is a [`ValueError::BareNumber`].
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let bad = || ValueError::malformed(Kind::Size, text);
    let trimmed = text.trim();
    let number_len = trimmed
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = trimmed.split_at(number_len);
    let unit = unit.trim();
    if unit.is_empty() && !number.is_empty() {
        return Err(ValueError::BareNumber {
            kind: Kind::Size,
            number: number.to_owned(),
        });
    }
    let unit = match unit {
        "k" | "kB" | "kiB" => "K",
        "B" => "B",
        u => u
            .strip_suffix("iB")
            .or_else(|| u.strip_suffix('B'))
            .unwrap_or(u),
    };
    let shift = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, shift)| *shift)
        .ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    if fraction.len() > 6 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let bytes = u128::from(whole) << shift;
    let fraction_bytes = if fraction.is_empty() {
        0
    } else {
        let f: u128 = fraction.parse().map_err(|_| bad())?;
        (f << shift) / 10u128.pow(u32::try_from(fraction.len()).map_err(|_| bad())?)
    };
    u64::try_from(bytes + fraction_bytes)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(bad)
}

/// A size for people: bytes below 1 KiB, else the largest binary unit with at most one
/// decimal (`"512 B"`, `"2 MiB"`, `"1.8 GiB"`). [`parse_size`] reads it back, to within the
/// rounding.
pub fn format_size(bytes: u64) -> String {
    let Some((name, shift)) = UNITS.iter().rev().find(|(_, shift)| bytes >> shift > 0) else {
        return "0 B".to_owned();
    };
    if *shift == 0 {
        return format!("{bytes} B");
    }
    let unit = 1u64 << shift;
    if bytes.is_multiple_of(unit) {
        return format!("{} {name}iB", bytes / unit);
    }
    // Tenths, to the nearest (a shown size is for reading; the exact one is in --json).
    let mut tenths = (u128::from(bytes) * 10 + u128::from(unit / 2)) / u128::from(unit);
    // Rounded up past the largest size there is, it would not read back: round down there.
    if tenths * u128::from(unit) / 10 > u128::from(u64::MAX) {
        tenths = u128::from(bytes) * 10 / u128::from(unit);
    }
    format!("{}.{} {name}iB", tenths / 10, tenths % 10)
}

/// A size in the shortest exact spelling [`parse_size`] reads (`"2M"`, `"1536K"`, `"7B"`):
/// what a configuration file written by the programs holds.
pub fn format_size_exact(bytes: u64) -> String {
    let (name, shift) = UNITS
        .iter()
        .rev()
        .find(|(_, shift)| bytes != 0 && bytes.is_multiple_of(1u64 << shift))
        .copied()
        .unwrap_or(("B", 0));
    format!("{}{name}", bytes >> shift)
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

/// The spelling [`parse_amount`] reads back exactly (`"2M"`, `"90%"`).
impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Bytes(n) => f.write_str(&format_size_exact(*n)),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// A size as [`parse_size`] reads it, or a percentage from 1% to 100% (`"10%"`). A bare number
/// is a [`ValueError::BareNumber`] naming both readings.
pub fn parse_amount(text: &str) -> Result<Amount, ValueError> {
    let trimmed = text.trim();
    match trimmed.strip_suffix('%') {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(Amount::Percent)
            .ok_or_else(|| ValueError::malformed(Kind::Amount, text)),
        None => parse_size(trimmed).map(Amount::Bytes).map_err(|e| match e {
            ValueError::BareNumber { number, .. } => ValueError::BareNumber {
                kind: Kind::Amount,
                number,
            },
            ValueError::Malformed { .. } => ValueError::malformed(Kind::Amount, text),
        }),
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

    /// Found by the `grammar` fuzz target: the largest sizes were shown rounded up past
    /// `u64::MAX` ("16777216.0 TiB"), which `parse_size` refuses.
    #[test]
    fn the_largest_sizes_are_shown_as_sizes_that_read_back() {
        let input = "18446744073709551615B";
        let n = parse_size(input).expect("u64::MAX bytes");
        let shown = format_size(n);
        assert_eq!(shown, "16777215.9 TiB");
        let back = parse_size(&shown).expect("reads back");
        assert!(n - back <= n / 20, "{back}");
    }

    #[test]
    fn an_amount_is_a_size_or_a_percentage() {
        assert_eq!(parse_amount("500G"), Ok(Amount::Bytes(500 << 30)));
        assert_eq!(parse_amount(" 90% "), Ok(Amount::Percent(90)));
        for bad in ["0%", "101%", "ten%", "", "%", "0B"] {
            assert!(
                matches!(parse_amount(bad), Err(ValueError::Malformed { .. })),
                "{bad}"
            );
        }
        for bare in ["90", " 90 ", "0", "1.5"] {
            assert!(
                matches!(
                    parse_amount(bare),
                    Err(ValueError::BareNumber {
                        kind: Kind::Amount,
                        ..
                    })
                ),
                "{bare}"
            );
        }
        assert_eq!(Amount::Percent(90).of(1000), 900);
        assert_eq!(Amount::Bytes(7).of(1000), 7);
        assert_eq!(Amount::Percent(100).of(u64::MAX), u64::MAX);
        for a in [
            Amount::Bytes(7),
            Amount::Bytes(2 << 20),
            Amount::Bytes(1536),
            Amount::Percent(90),
        ] {
            assert_eq!(parse_amount(&a.to_string()), Ok(a), "{a}");
        }
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 45s "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("00"), Ok(Duration::ZERO));
        for bare in ["2", " 45 ", "3600"] {
            assert!(
                matches!(
                    parse_duration(bare),
                    Err(ValueError::BareNumber {
                        kind: Kind::Duration,
                        ..
                    })
                ),
                "{bare}"
            );
        }
        assert_eq!(
            parse_duration("2").expect_err("bare").to_string(),
            "a bare number has no unit: write \"2s\", \"2m\", \"2h\" or \"2d\""
        );
        for bad in [
            "",
            "h",
            "5x",
            "1h30",
            "-5s",
            "1w",
            "1.5h",
            "1 h",
            "99999999999999999999d",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(ValueError::Malformed { .. })),
                "{bad}"
            );
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for secs in [1, 59, 61, 3600, 93_784, 86_400 * 30] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{secs}");
        }
    }

    #[test]
    fn sizes_need_a_binary_unit() {
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("2 T"), Ok(2 << 40));
        assert_eq!(parse_size("1.5M"), Ok(3 << 19));
        assert_eq!(parse_size("1.8 GiB"), Ok(1_932_735_283));
        for bare in ["100", "2", "3", " 7 ", "1.5"] {
            assert!(
                matches!(
                    parse_size(bare),
                    Err(ValueError::BareNumber {
                        kind: Kind::Size,
                        ..
                    })
                ),
                "{bare}"
            );
        }
        for bad in [
            "",
            "0B",
            "0G",
            "G",
            "5X",
            "1X",
            "-1",
            "-1G",
            "1.G",
            ".5G",
            "1.2.3G",
            "1.0000001G",
            "99999999999999T",
            "0.0000001B",
        ] {
            assert!(
                matches!(parse_size(bad), Err(ValueError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(2 << 20), "2 MiB");
        assert_eq!(format_size((2 << 20) / 10 * 9), "1.8 MiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(u64::MAX), "16777215.9 TiB");
        for n in [1, 7, 1023, 1024, 1536, 2 << 20, 3 << 40, 1_000_000_007] {
            assert_eq!(parse_size(&format_size_exact(n)), Ok(n), "{n}");
        }
        assert_eq!(format_size_exact(2 << 20), "2M");
        assert_eq!(format_size_exact(1536), "1536B");
        assert_eq!(format_size_exact(1536 << 10), "1536K");
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
