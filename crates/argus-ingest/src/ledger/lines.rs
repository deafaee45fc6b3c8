//! The ledger's line format: facts of the log (`C`, `D`, `U` lines) and the checksum every line
//! of the log and the snapshot ends with, so that a torn or damaged line is recognised.

use argus_core::stateline::StateLines;

use super::Fact;

/// The ledger's lines, in the log and the snapshot: a space, then 4 bytes of SHA-256.
const LINES: StateLines = StateLines::new(b' ', 4);

pub(super) fn push_line(body: &str, out: &mut Vec<u8>) {
    LINES.seal(body.as_bytes(), out);
}

pub(super) fn checked(line: &[u8]) -> Option<&str> {
    LINES.unseal_str(line)
}

pub(super) fn encode(fact: &Fact, out: &mut Vec<u8>) {
    let body = match fact {
        Fact::Chunk {
            host,
            seq,
            client,
            sha,
            version,
        } => match version {
            Some(v) => format!("C {host} {seq} {client} {sha} {v}"),
            None => format!("C {host} {seq} {client} {sha}"),
        },
        Fact::Duplicate { host, seq } => format!("D {host} {seq}"),
        Fact::Upload {
            client,
            at,
            bytes,
            stem,
            version,
            health,
        } => match (version, health) {
            (v, Some(h)) => format!(
                "U {client} {at} {bytes} {stem} {} {}",
                v.map_or("-".to_owned(), |v| v.to_string()),
                h.encode()
            ),
            (Some(v), None) => format!("U {client} {at} {bytes} {stem} {v}"),
            (None, None) => format!("U {client} {at} {bytes} {stem}"),
        },
    };
    push_line(&body, out);
}

pub(super) fn decode(line: &[u8]) -> Option<Fact> {
    let body = checked(line)?;
    let f: Vec<&str> = body.split(' ').collect();
    match f.as_slice() {
        ["C", host, seq, client, rest @ ..] if rest.len() <= 2 && !client.is_empty() => {
            Some(Fact::Chunk {
                host: (*host).to_owned(),
                seq: seq.parse().ok()?,
                client: (*client).to_owned(),
                sha: rest
                    .first()
                    .map_or(Some("-"), |s| is_short_hash(s).then_some(*s))?
                    .to_owned(),
                version: match rest.get(1) {
                    None => None,
                    Some(v) => Some(v.parse().ok()?),
                },
            })
        }
        ["D", host, seq] => Some(Fact::Duplicate {
            host: (*host).to_owned(),
            seq: seq.parse().ok()?,
        }),
        ["U", client, at, bytes, stem, rest @ ..] if rest.len() <= 2 => Some(Fact::Upload {
            client: (*client).to_owned(),
            at: at.parse().ok()?,
            bytes: bytes.parse().ok()?,
            stem: (*stem).to_owned(),
            version: match rest.first() {
                None | Some(&"-") => None,
                Some(v) => Some(v.parse().ok()?),
            },
            health: match rest.get(1) {
                None => None,
                Some(h) => Some(crate::health::UploadHealth::decode(h)?),
            },
        }),
        _ => None,
    }
}

/// A chunk's short hash as the ledger keeps it: 1 to 16 hex digits (a number), or `-` when
/// unknown. Anything else (a line edited by hand) is a damaged line.
pub(crate) fn is_short_hash(s: &str) -> bool {
    s == "-" || (!s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}
