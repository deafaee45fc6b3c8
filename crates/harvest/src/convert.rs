//! `convert-config`: the recipe's per-host shell variables (`arc_day_HOST="0"`, `arc_dir_`,
//! `arc_zip_`, `bin_`, `int_`, `out_`) as this program's TOML.
//!
//! The script is read as text and never run: only unindented lines of the form `NAME=VALUE`
//! count (the recipe's assignments inside its functions are indented), and a value that would
//! need a shell to mean something (`$VAR`, backquotes, operators) is reported, not guessed at.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use argus_core::codec::{Codec, Compression};
use argus_core::grammar::shell_value;
use argus_core::host::Hostname;
use toml::Value;

use crate::config::Config;

/// The recipe's variable prefixes and the keys they become, in output order.
const VARIABLES: &[(&str, &str)] = &[
    ("arc_day_", "archive_days"),
    ("arc_dir_", "archive_dir"),
    ("arc_zip_", "compression"),
    ("bin_", "argus_bin"),
    ("int_", "interface"),
    ("out_", "output"),
];

/// The TOML keys and values one recipe variable becomes.
type KeyValues = Vec<(&'static str, Value)>;

/// The converted configuration and what to tell the operator about it.
#[derive(Debug)]
pub(crate) struct Converted {
    pub(crate) toml: String,
    pub(crate) warnings: Vec<String>,
}

/// Converts the text of the recipe's `harvest_argus` script. Errors name the line.
pub(crate) fn convert(source: &Path, text: &str) -> Result<Converted, Vec<String>> {
    let mut errors = Vec::new();
    // host -> key -> value, in key order of VARIABLES.
    let mut hosts: BTreeMap<String, BTreeMap<usize, KeyValues>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let Some((name, raw)) = assignment(line) else {
            continue;
        };
        let Some((index, prefix, key)) = VARIABLES
            .iter()
            .enumerate()
            .find(|(_, (p, _))| name.starts_with(p) && name.len() > p.len())
            .map(|(i, (p, k))| (i, *p, *k))
        else {
            continue;
        };
        let host = &name[prefix.len()..];
        if let Err(e) = Hostname::new(host) {
            errors.push(format!(
                "line {n}: {name}: {host:?} is not a valid host name: {e}"
            ));
            continue;
        }
        let value = match shell_value(raw) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("line {n}: {name}: {e}"));
                continue;
            }
        };
        let values = match key_values(key, &value) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("line {n}: {name}={value:?}: {e}"));
                continue;
            }
        };
        // A later assignment replaces an earlier one, as in the shell.
        hosts
            .entry(host.to_owned())
            .or_default()
            .insert(index, values);
    }
    if hosts.is_empty() && errors.is_empty() {
        errors.push(format!(
            "{} holds no per-host variables (arc_day_HOST=, arc_dir_HOST=, arc_zip_HOST=, bin_HOST=, int_HOST=, out_HOST=)",
            source.display()
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // A value every host shares becomes a top-level default; the rest stays per host.
    let mut shared: Vec<(&str, Value)> = Vec::new();
    for index in 0..VARIABLES.len() {
        let mut values = hosts.values().map(|h| h.get(&index));
        let first = values.next().flatten();
        if let Some(first) = first
            && values.all(|v| v == Some(first))
        {
            shared.extend(first.iter().cloned());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# harvest_argus configuration, converted by `harvest_argus convert-config` from\n# {}\n#\n# Values all hosts share are defaults at the top; [hosts.NAME] tables hold the rest.\n# Not in the old script, so at their defaults: argus_args = [], pid_file = OUTPUT.pid,\n# argus_log = OUTPUT.log, supervise = true; the one duration written out with its unit.\n# The old script started argus with -c (a chroot in argus 3); harvest_argus does not.\n# archive_days counts days, as the old script's arc_day_HOST did.\nstale_after = \"15m\"",
        source.display()
    );
    for (key, value) in &shared {
        let _ = writeln!(out, "{key} = {value}");
    }
    for (host, values) in &hosts {
        let own: Vec<&(&str, Value)> = values
            .values()
            .flatten()
            .filter(|kv| !shared.contains(kv))
            .collect();
        let _ = writeln!(out, "\n[hosts.{host}]");
        for (key, value) in own {
            let _ = writeln!(out, "{key} = {value}");
        }
    }

    // Check the result as harvest_argus will read it.
    let warnings = match Config::parse_text(source, &out) {
        Ok(config) => {
            let mut w = config.check_all();
            for host in config.host_names() {
                if let Ok(h) = Hostname::new(host)
                    && let Err(p) = config.resolve(&h)
                {
                    w.extend(p.0);
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            w.retain(|p| seen.insert(p.clone()));
            w
        }
        Err(p) => p.0,
    };
    Ok(Converted {
        toml: out,
        warnings,
    })
}

/// `NAME=VALUE` at the start of an unindented line.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once('=')?;
    let mut bytes = name.bytes();
    let first = bytes.next()?;
    if !(first.is_ascii_alphabetic() || first == b'_')
        || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    Some((name, value))
}

/// The keys and values one recipe variable becomes.
fn key_values(key: &'static str, value: &str) -> Result<KeyValues, String> {
    Ok(match key {
        "archive_days" => {
            let days: u32 = value.trim().parse().map_err(|_| {
                "the number of archive days must be a whole number, 0 or more".to_owned()
            })?;
            vec![(key, Value::Integer(i64::from(days)))]
        }
        "compression" => {
            let codec = Codec::from_recipe_command(value).map_err(|e| e.to_string())?;
            if codec.compression() == Compression::None {
                vec![(key, Value::String("none".to_owned()))]
            } else {
                vec![
                    (key, Value::String(codec.compression().name().to_owned())),
                    (
                        "compression_level",
                        Value::Integer(i64::from(codec.level())),
                    ),
                ]
            }
        }
        _ => vec![(key, Value::String(value.to_owned()))],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_values() {
        assert_eq!(
            shell_value("\"/bin/gzip -9\"").as_deref(),
            Ok("/bin/gzip -9")
        );
        assert_eq!(shell_value("'/opt/ar gus'").as_deref(), Ok("/opt/ar gus"));
        assert_eq!(shell_value("eth0  # comment").as_deref(), Ok("eth0"));
        assert_eq!(shell_value("\"a\\\"b\\$c\"").as_deref(), Ok("a\"b$c"));
        assert_eq!(shell_value("a\\ b").as_deref(), Ok("a b"));
        assert_eq!(shell_value("").as_deref(), Ok(""));
        assert_eq!(shell_value("\"\"").as_deref(), Ok(""));
        for bad in [
            "\"$HOME/x\"",
            "`hostname`",
            "$x",
            "\"abc",
            "'abc",
            "a; rm -rf /",
            "a b",
            "a|b",
        ] {
            assert!(shell_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn converts_the_recipe() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/recipe_harvest_argus"
        ))
        .expect("recipe copy");
        let converted = convert(Path::new("harvest_argus"), &text).expect("converts");
        let toml = &converted.toml;
        for line in [
            "stale_after = \"15m\"",
            "archive_days = 0",
            "archive_dir = \"/opt/argus\"",
            "argus_bin = \"/usr/local/sbin/argus\"",
            "output = \"/tmp/argus.out\"",
            "[hosts.client1]",
            "compression = \"gzip\"\ncompression_level = 9\ninterface = \"eth0\"",
            "[hosts.client2]",
            "compression = \"bzip2\"\ncompression_level = 9\ninterface = \"hme1\"",
        ] {
            assert!(toml.contains(line), "{line:?} not in:\n{toml}");
        }
        // The result is a valid configuration for both hosts.
        assert!(converted.warnings.is_empty(), "{:?}", converted.warnings);
        let config = Config::parse_text(Path::new("x"), toml).expect("parses");
        let (s, _) = config
            .resolve(&Hostname::new("client2").expect("host"))
            .expect("resolves");
        assert_eq!(s.interface, "hme1");
        assert_eq!(s.codec, Codec::new(Compression::Bzip2, 9).expect("codec"));
    }

    #[test]
    fn reports_what_it_cannot_convert_with_line_numbers() {
        let text = "arc_day_s1=\"x\"\nout_s1=\"$HOME/argus.out\"\narc_zip_s1=\"/usr/bin/lz4 -1\"\nint_bad_host=eth0\n";
        let errors = convert(Path::new("h"), text).expect_err("errors");
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("line 1: arc_day_s1="));
        assert!(errors[1].contains("line 2") && errors[1].contains("expansion"));
        assert!(errors[2].contains("line 3") && errors[2].contains("lz4"));
        assert!(errors[3].contains("line 4") && errors[3].contains("not a valid host name"));
        assert!(convert(Path::new("h"), "echo hi\n").is_err());
    }

    #[test]
    fn missing_variables_become_warnings_and_empty_zip_means_none() {
        let text = "arc_zip_s1=\"\"\nout_s1=/var/argus.out\n";
        let converted = convert(Path::new("h"), text).expect("converts");
        assert!(converted.toml.contains("compression = \"none\""));
        assert!(
            converted
                .warnings
                .iter()
                .any(|w| w.contains("interface is missing for host s1")),
            "{:?}",
            converted.warnings
        );
    }
}
