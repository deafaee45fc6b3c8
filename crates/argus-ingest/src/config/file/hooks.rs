//! The follow-on stages of the TOML configuration: `[[hook]]` tables, each naming an event, a
//! command as an argv template and a timeout, and the placeholders every event offers.
//!
//! A command is never given to a shell. Each argument is a template in which `{name}` is
//! replaced by the event's value (as raw bytes: a host name or a quarantine reason full of shell
//! metacharacters arrives as it is) and `{{`/`}}` stand for literal braces. The program itself
//! must be an absolute path without placeholders, so that no upload can choose what runs.

use std::time::Duration;

use crate::config::{Event, Hook, Piece, parse_template};

use argus_core::grammar::{Kind, ValueError, parse_duration};

/// The `[[hook]]` table that configures `hook`.
pub(super) fn hook_to_toml(hook: &Hook) -> String {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut words = vec![q(&hook.program)];
    for pieces in &hook.args {
        let mut word = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => word.push_str(&t.replace('{', "{{").replace('}', "}}")),
                Piece::Value(name) => {
                    word.push('{');
                    word.push_str(name);
                    word.push('}');
                }
            }
        }
        words.push(q(&word));
    }
    format!(
        "\n[[hook]]\nname = {}\non = {}\ncommand = [{}]\ntimeout = {}\n",
        q(&hook.name),
        q(hook.on.name()),
        words.join(", "),
        q(&argus_core::grammar::format_duration(hook.timeout))
    )
}

/// Parses the `[[hook]]` array; every problem goes to `problems`, named by the hook's position.
pub(super) fn parse_hooks(value: &toml::Value, problems: &mut Vec<String>) -> Vec<Hook> {
    let Some(tables) = value.as_array() else {
        problems.push("hook must be an array of tables ([[hook]])".to_owned());
        return Vec::new();
    };
    let mut hooks = Vec::new();
    for (i, item) in tables.iter().enumerate() {
        let n = i + 1;
        let Some(table) = item.as_table() else {
            problems.push(format!("hook {n}: must be a table ([[hook]])"));
            continue;
        };
        let before = problems.len();
        let mut problem = |what: String| problems.push(format!("hook {n}: {what}"));
        for key in table.keys() {
            if !["on", "command", "timeout", "name"].contains(&key.as_str()) {
                problem(format!(
                    "unknown key {key:?} (a hook has on, command, timeout and name)"
                ));
            }
        }
        let on = match table.get("on").map(|v| v.as_str()) {
            Some(Some(name)) => Event::parse(name).or_else(|| {
                problem(format!(
                    "on = {name:?} is not one of {}",
                    Event::ALL.map(Event::name).join(", ")
                ));
                None
            }),
            Some(None) => {
                problem("on must be a string".to_owned());
                None
            }
            None => {
                problem(format!(
                    "on is required (one of {})",
                    Event::ALL.map(Event::name).join(", ")
                ));
                None
            }
        };
        let timeout = match table.get("timeout") {
            None => Duration::from_secs(600),
            Some(v) => {
                let parsed = match v {
                    toml::Value::String(s) => parse_duration(s),
                    toml::Value::Integer(n) => Err(ValueError::bare(Kind::Duration, *n)),
                    _ => Err(ValueError::Malformed {
                        kind: Kind::Duration,
                        text: v.to_string(),
                    }),
                };
                match parsed {
                    Ok(d) => d,
                    Err(e) => {
                        problem(format!("timeout = {v}: {e}"));
                        Duration::from_secs(600)
                    }
                }
            }
        };
        let words: Option<Vec<&str>> = match table.get("command") {
            Some(toml::Value::Array(items)) => items.iter().map(toml::Value::as_str).collect(),
            _ => None,
        };
        let name = match table.get("name") {
            None => on.map(|e| format!("{}-{n}", e.name())),
            Some(v) => match v.as_str() {
                Some(s)
                    if !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
                {
                    Some(s.to_owned())
                }
                _ => {
                    problem(format!(
                        "name = {v} must be letters, digits, '_', '.' or '-'"
                    ));
                    None
                }
            },
        };
        let (Some(on), Some(name)) = (on, name) else {
            continue;
        };
        let Some(words) = words.filter(|w| !w.is_empty()) else {
            problem(
                "command must be a non-empty list of strings: the program (an absolute path) and its arguments"
                    .to_owned(),
            );
            continue;
        };
        let program = words[0];
        if !program.starts_with('/') || program.contains('{') {
            problem(format!(
                "the program {program:?} must be an absolute path without placeholders (no shell runs it)"
            ));
        }
        let mut args = Vec::new();
        for (j, word) in words[1..].iter().enumerate() {
            match parse_template(word, on) {
                Ok(t) => args.push(t),
                Err(why) => problem(format!("argument {} {word:?}: {why}", j + 1)),
            }
        }
        if problems.len() > before {
            continue;
        }
        if hooks.iter().any(|h: &Hook| h.name == name) {
            problems.push(format!("hook {n}: another hook is named {name:?}"));
            continue;
        }
        hooks.push(Hook {
            name,
            on,
            program: program.to_owned(),
            args,
            timeout,
        });
    }
    hooks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Hook>, Vec<String>) {
        let table: toml::Table = text.parse().expect("toml");
        let mut problems = Vec::new();
        let hooks = parse_hooks(&table["hook"], &mut problems);
        (hooks, problems)
    }

    #[test]
    fn a_hook_is_an_argv_template_with_the_events_placeholders() {
        let (hooks, problems) = parse(
            r#"
            [[hook]]
            on = "day_closed"
            command = ["/usr/local/bin/report", "--file={day_file}", "{host}/{day}", "{{x}}"]
            [[hook]]
            on = "ingested"
            name = "load"
            command = ["/bin/true"]
            timeout = "30s"
            "#,
        );
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(hooks[0].name, "day_closed-1");
        assert_eq!(hooks[0].timeout, Duration::from_secs(600));
        assert_eq!(hooks[1].name, "load");
        assert_eq!(hooks[1].timeout, Duration::from_secs(30));
        let values = |name: &str| -> &'static [u8] {
            match name {
                "day_file" => b"/oper/h_20261201.gz",
                "host" => b"h;$(reboot)",
                "day" => b"20261201",
                _ => b"?",
            }
        };
        assert_eq!(
            hooks[0].expand(values),
            [
                &b"--file=/oper/h_20261201.gz"[..],
                b"h;$(reboot)/20261201",
                b"{x}"
            ]
        );
    }

    #[test]
    fn bad_hooks_are_named_with_every_problem() {
        let (hooks, problems) = parse(
            r#"
            [[hook]]
            on = "day_closed"
            command = ["report", "{stem}"]
            [[hook]]
            on = "closed"
            command = ["/bin/x"]
            [[hook]]
            on = "ingested"
            command = []
            timeout = "soon"
            [[hook]]
            on = "quarantined"
            command = ["/bin/x", "{reason"]
            colour = "red"
            [[hook]]
            on = "quarantined"
            command = ["{dir}/run"]
            "#,
        );
        assert!(hooks.is_empty(), "{hooks:?}");
        let text = problems.join("\n");
        for needle in [
            "hook 1: the program \"report\" must be an absolute path",
            "hook 1: argument 1 \"{stem}\": unknown placeholder {stem} (a day_closed hook has {day_file} {host} {day}",
            "hook 2: on = \"closed\" is not one of ingested, day_closed, quarantined",
            "hook 3: timeout = \"soon\"",
            "hook 3: command must be a non-empty list",
            "hook 4: unknown key \"colour\"",
            "hook 4: argument 1 \"{reason\": {reason is not closed",
            "hook 5: the program \"{dir}/run\" must be an absolute path without placeholders",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn two_hooks_of_one_name_are_refused() {
        let (_, problems) = parse(
            r#"
            [[hook]]
            on = "ingested"
            name = "a"
            command = ["/bin/true"]
            [[hook]]
            on = "day_closed"
            name = "a"
            command = ["/bin/true"]
            "#,
        );
        assert_eq!(problems, ["hook 2: another hook is named \"a\""]);
    }
}
