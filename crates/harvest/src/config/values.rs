//! How each setting's TOML value is read: strings, bounded integers, absolute paths, the
//! output file, interface names, argus arguments, sizes and durations (the last two in
//! argus-core's shared grammar).

use std::path::PathBuf;
use std::time::Duration;

use argus_core::escape::EscapedPath;
use argus_core::grammar::{parse_duration, parse_size};
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

/// A size: a whole number of bytes, or a string with a binary unit (`K`, `M`, `G`, `T`, also
/// written `KiB` ...).
pub(super) fn size(value: &Value) -> Result<u64, String> {
    if let Some(n) = value.as_integer() {
        return u64::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{n} must be a positive number of bytes"));
    }
    let s = string(value).map_err(|_| {
        format!(
            "must be a number of bytes or a string such as \"20G\", not {}",
            value.type_str()
        )
    })?;
    parse_size(s)
        .ok_or_else(|| format!("{s:?} is not a size such as 20000000000, \"512M\" or \"20G\""))
}

/// A duration (see [`parse_duration`]); zero is `None`, "never".
pub(super) fn duration(value: &Value) -> Result<Option<Duration>, String> {
    if let Some(n) = value.as_integer() {
        return u64::try_from(n)
            .map(|n| (n > 0).then(|| Duration::from_secs(n)))
            .map_err(|_| format!("{n} must not be negative"));
    }
    let s = string(value)?;
    parse_duration(s)
        .map(|d| (!d.is_zero()).then_some(d))
        .ok_or_else(|| {
            format!("{s:?} is not a duration such as \"90s\", \"15m\", \"1h30m\", \"1d\" or \"0\"")
        })
}
