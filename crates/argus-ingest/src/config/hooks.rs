//! The follow-on stages: hooks, each naming an event, a command as an argv template and a
//! timeout, and the placeholders every event offers.
//!
//! A command is never given to a shell. Each argument is a template in which `{name}` is
//! replaced by the event's value (as raw bytes: a host name or a quarantine reason full of shell
//! metacharacters arrives as it is) and `{{`/`}}` stand for literal braces. The program itself
//! must be an absolute path without placeholders, so that no upload can choose what runs.

use std::time::Duration;

/// What a hook runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// Once per upload whose bytes are durable in their day file and in the archive.
    Ingested,
    /// Once per day file, when its day is closed (and, when configured, compressed).
    DayClosed,
    /// Once per group moved into the quarantine.
    Quarantined,
    /// Once each time a sensor enters or leaves one of the health conditions (dropping,
    /// restarting, a clock ahead), judged after each batch that brings its data.
    SensorHealth,
}

impl Event {
    /// Every event, in the order they are documented.
    pub const ALL: [Event; 4] = [
        Event::Ingested,
        Event::DayClosed,
        Event::Quarantined,
        Event::SensorHealth,
    ];

    /// The name in the configuration, the queue and `ARGUS_WEBJOB_EVENT`.
    pub fn name(self) -> &'static str {
        match self {
            Event::Ingested => "ingested",
            Event::DayClosed => "day_closed",
            Event::Quarantined => "quarantined",
            Event::SensorHealth => "sensor_health",
        }
    }

    /// The placeholders its commands may use, in the order they are documented.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            Event::Ingested => &[
                "stem", "client", "host", "day", "day_file", "archive", "bytes", "records",
            ],
            Event::DayClosed => &["day_file", "host", "day"],
            Event::Quarantined => &["stem", "client", "dir", "reason"],
            Event::SensorHealth => &[
                "client",
                "state",
                "previous",
                "drop_ratio",
                "restarts",
                "clock_offset",
            ],
        }
    }

    /// The event of a name (see [`Event::name`]).
    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// One piece of an argument template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text taken as it is.
    Text(String),
    /// The value of a placeholder, `{name}`.
    Value(&'static str),
}

/// One configured hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// Its name: `name = "..."`, or `EVENT-N` for the N-th hook of the file (from 1). Queued
    /// events refer to it, so a fixed command applies to the events that failed before the fix.
    pub name: String,
    /// The event it runs on.
    pub on: Event,
    /// The program, an absolute path.
    pub program: String,
    /// The arguments, as templates.
    pub args: Vec<Vec<Piece>>,
    /// The command is killed (its whole process group) after this long.
    pub timeout: Duration,
}

impl Hook {
    /// The arguments with the event's values in place (`value` gives the bytes of a placeholder).
    pub fn expand<'v>(&self, value: impl Fn(&str) -> &'v [u8]) -> Vec<Vec<u8>> {
        self.args
            .iter()
            .map(|pieces| {
                let mut arg = Vec::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => arg.extend_from_slice(t.as_bytes()),
                        Piece::Value(name) => arg.extend_from_slice(value(name)),
                    }
                }
                arg
            })
            .collect()
    }
}

/// How hooks run, beside the hooks themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookPolicy {
    /// The hooks, in the order configured.
    pub hooks: Vec<Hook>,
    /// After this many failed runs an event is kept as failed (`hooks retry` queues it again).
    pub attempts: u32,
    /// Hooks run at once in the daemon.
    pub concurrency: usize,
    /// How long a cron pass runs due hooks after its ingest; the rest waits for the next pass.
    pub budget: Duration,
    /// The wait after a first failed run; it doubles with each further one, to at most 1 hour.
    pub retry_delay: Duration,
}

impl Default for HookPolicy {
    fn default() -> Self {
        HookPolicy {
            hooks: Vec::new(),
            attempts: 10,
            concurrency: 2,
            budget: Duration::from_secs(300),
            retry_delay: Duration::from_secs(60),
        }
    }
}

impl HookPolicy {
    /// The hooks that run on `event`.
    pub fn on(&self, event: Event) -> impl Iterator<Item = &Hook> {
        self.hooks.iter().filter(move |h| h.on == event)
    }

    /// The hook of this name.
    pub fn named(&self, name: &str) -> Option<&Hook> {
        self.hooks.iter().find(|h| h.name == name)
    }
}

/// Parses one argument template of an `event` hook.
pub fn parse_template(arg: &str, event: Event) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(format!(
                        "{{{name} is not closed (write {{{{ for a literal brace)"
                    ));
                }
                let Some(known) = event.placeholders().iter().find(|p| **p == name) else {
                    return Err(format!(
                        "unknown placeholder {{{name}}} (a {} hook has {}; write {{{{ for a literal brace)",
                        event.name(),
                        event
                            .placeholders()
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Value(known));
            }
            '}' => return Err("a lone } (write }} for a literal brace)".to_owned()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}
