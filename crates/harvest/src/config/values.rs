//! How each setting's TOML value is read: strings, bounded integers, absolute paths, the
//! output file, interface names, argus arguments, sizes and durations (the last two in
//! argus-core's shared grammar).

use std::path::PathBuf;
use std::time::Duration;

use argus_core::escape::EscapedPath;
use argus_core::grammar::{Amount, Kind, ValueError, parse_amount, parse_duration, parse_size};
use toml::Value;

pub(super) fn string(value: &Value) -> Result<&str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("must be a string, not {}", value.type_str()))
}

pub(super) fn int_in(value: &Value, min: i64, max: i64) -> Result<u32, String> {
    let n = value
        .as_integer()
        .ok_or_else(|| format!("must be a whole number, not {}", value.type_str()))?;
    if !(min..=max).contains(&n) {
        return Err(format!("{n} is out of range ({min}..={max})"));
    }
    u32::try_from(n).map_err(|_| format!("{n} is out of range"))
}

pub(super) fn abs_path(value: &Value) -> Result<PathBuf, String> {
    let s = string(value)?;
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.contains('\0') {
        return Err("must not hold a NUL byte".to_owned());
    }
    let path = PathBuf::from(s);
    if !path.is_absolute() {
        return Err(format!(
            "{s:?} must be an absolute path (cron and WebJob start harvest_argus in unpredictable directories)"
        ));
    }
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!("{s:?} must not contain '..'"));
    }
    Ok(path)
}

pub(super) fn output(value: &Value) -> Result<PathBuf, String> {
    let path = abs_path(value)?;
    if path.as_os_str().to_string_lossy().ends_with('/') || path.file_name().is_none() {
        return Err(format!(
            "{} must name a file, not a directory",
            EscapedPath(&path)
        ));
    }
    Ok(path)
}

pub(super) fn interface(value: &Value) -> Result<String, String> {
    let s = string(value)?;
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.starts_with('-') {
        return Err(format!("{s:?} must not start with '-'"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?} must not hold spaces or control characters (argus' -i would take the rest as more interfaces)"
        ));
    }
    Ok(s.to_owned())
}

pub(super) fn args(value: &Value) -> Result<Vec<String>, String> {
    let list = value.as_array().ok_or_else(|| {
        format!(
            "must be an array of strings such as [\"-S\", \"5\"], not {}",
            value.type_str()
        )
    })?;
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("element {i} must be a string, not {}", v.type_str()))
        })
        .collect()
}

/// A size. Under a key that names bytes (`archive_max_bytes`) a TOML integer is a number of
/// bytes; elsewhere a size is a string with a unit (`"20G"`), and a bare number is refused with
/// the spellings it could have meant.
pub(super) fn size(value: &Value, in_bytes: bool) -> Result<u64, String> {
    match value {
        Value::Integer(n) if in_bytes => u64::try_from(*n)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{n} must be a positive number of bytes")),
        Value::Integer(n) => Err(ValueError::bare(Kind::Size, *n).to_string()),
        Value::String(s) if in_bytes && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            size(
                &Value::Integer(s.parse().map_err(|_| format!("{s:?} is too large"))?),
                true,
            )
        }
        Value::String(s) => parse_size(s).map_err(|e| e.to_string()),
        other => Err(format!(
            "must be a size such as \"20G\", not {}",
            other.type_str()
        )),
    }
}

/// A size, or a share such as `"90%"` (a TOML integer is refused: it could be either).
pub(super) fn amount(value: &Value) -> Result<Amount, String> {
    match value {
        Value::Integer(n) => Err(ValueError::bare(Kind::Amount, *n).to_string()),
        Value::String(s) => parse_amount(s).map_err(|e| e.to_string()),
        other => Err(format!(
            "must be a size such as \"18G\" or a share such as \"90%\", not {}",
            other.type_str()
        )),
    }
}

/// A duration (see [`parse_duration`]); zero is `None`, "never".
pub(super) fn duration(value: &Value) -> Result<Option<Duration>, String> {
    let parsed = match value {
        Value::Integer(0) => Ok(Duration::ZERO),
        Value::Integer(n) => Err(ValueError::bare(Kind::Duration, *n)),
        Value::String(s) => parse_duration(s),
        other => {
            return Err(format!(
                "must be a duration such as \"15m\", not {}",
                other.type_str()
            ));
        }
    };
    parsed
        .map(|d| (!d.is_zero()).then_some(d))
        .map_err(|e| e.to_string())
}
