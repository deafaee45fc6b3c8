//! The ledger's snapshot: the state of every host and client written as one sealed line each
//! (`H` and `K` lines), and read back.

use std::collections::BTreeMap;

use super::lines::{checked, push_line};
use super::{ClientState, HostState, Ledger, RecentChunks, Versions};

impl Ledger {
    /// The snapshot's text: one sealed line per host and per client. Public only for the fuzz
    /// targets, which check that it reads back as the same ledger.
    #[doc(hidden)]
    pub fn snapshot(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        for (host, h) in &self.hosts {
            let gaps: Vec<String> = h.gaps.iter().map(|(a, b)| format!("{a}-{b}")).collect();
            let recent: Vec<String> = h
                .recent
                .iter()
                .map(|(q, h)| format!("{q}:{h:016x}"))
                .collect();
            let body = format!(
                "H {host} {} {} {} {} {} {} {} {}",
                if h.client.is_empty() { "-" } else { &h.client },
                h.max_seq,
                h.gaps_dropped,
                h.duplicates,
                if gaps.is_empty() {
                    "-".to_owned()
                } else {
                    gaps.join(",")
                },
                h.first_seq.map_or("-".to_owned(), |f| f.to_string()),
                if recent.is_empty() {
                    "-".to_owned()
                } else {
                    recent.join(",")
                },
                h.version.map_or("-".to_owned(), |v| v.to_string())
            );
            push_line(&body, &mut buf);
        }
        for (client, c) in &self.clients {
            let hours: Vec<String> = c
                .hours
                .iter()
                .map(|(h, (n, b))| format!("{h}:{n}:{b}"))
                .collect();
            let body = format!(
                "K {client} {} {} {} {}",
                c.last_upload.map_or("-".to_owned(), |l| l.to_string()),
                if hours.is_empty() {
                    "-".to_owned()
                } else {
                    hours.join(",")
                },
                c.versions.encode(),
                c.health.encode()
            );
            push_line(&body, &mut buf);
        }
        buf
    }

    pub(super) fn load_snapshot_line(&mut self, line: &[u8]) -> bool {
        let Some(body) = checked(line) else {
            return false;
        };
        let f: Vec<&str> = body.split(' ').collect();
        match f.as_slice() {
            // The writer never leaves the client empty (`-` when there is none).
            ["H", host, client, max, dropped, dups, gaps, rest @ ..]
                if rest.len() <= 3 && !client.is_empty() =>
            {
                let first = &rest[..rest.len().min(1)];
                let mut recent = RecentChunks::default();
                if let Some(list) = rest.get(1).filter(|l| **l != "-") {
                    for item in list.split(',') {
                        let Some((q, h)) = item.split_once(':') else {
                            return false;
                        };
                        let (Ok(q), Some(h)) = (q.parse(), super::parse_hash(h)) else {
                            return false;
                        };
                        recent.insert(q, h);
                    }
                }
                let parse_gaps = || -> Option<Vec<(u64, u64)>> {
                    if *gaps == "-" {
                        return Some(Vec::new());
                    }
                    gaps.split(',')
                        .map(|g| {
                            let (a, b) = g.split_once('-')?;
                            Some((a.parse().ok()?, b.parse().ok()?))
                        })
                        .collect()
                };
                let (Ok(max_seq), Ok(gaps_dropped), Ok(duplicates), Some(gaps)) = (
                    max.parse::<u64>(),
                    dropped.parse(),
                    dups.parse(),
                    parse_gaps(),
                ) else {
                    return false;
                };
                let version = match rest.get(2) {
                    None | Some(&"-") => None,
                    Some(v) => match v.parse() {
                        Ok(v) => Some(v),
                        Err(_) => return false,
                    },
                };
                // Snapshots written before `first_seq` counted every sequence from 1.
                let first_seq = match first.first() {
                    None => (max_seq > 0).then_some(1),
                    Some(&"-") => None,
                    Some(f) => match f.parse() {
                        Ok(f) => Some(f),
                        Err(_) => return false,
                    },
                };
                self.hosts.insert(
                    (*host).to_owned(),
                    HostState {
                        // `-` is a host that never sent a chunk (so has no client yet); a host
                        // with chunks has the client id they came from, which may be `-`.
                        client: if *client == "-" && first_seq.is_none() {
                            String::new()
                        } else {
                            (*client).to_owned()
                        },
                        first_seq,
                        max_seq,
                        gaps,
                        gaps_dropped,
                        duplicates,
                        recent,
                        version,
                    },
                );
                true
            }
            ["K", client, last, hours, rest @ ..] if rest.len() <= 2 => {
                let Some(versions) = rest
                    .first()
                    .map_or(Some(Versions::default()), |v| Versions::decode(v))
                else {
                    return false;
                };
                let Some(health) = rest.get(1).map_or(Some(Default::default()), |h| {
                    crate::health::SensorHealth::decode(h)
                }) else {
                    return false;
                };
                let last_upload = if *last == "-" {
                    None
                } else {
                    last.parse().ok()
                };
                let mut map = BTreeMap::new();
                if *hours != "-" {
                    for h in hours.split(',') {
                        // The hour is signed, the counts are what the ledger adds up: u64.
                        let mut it = h.split(':');
                        let hour = it.next().and_then(|v| v.parse::<i64>().ok());
                        let mut count = || it.next().and_then(|v| v.parse::<u64>().ok());
                        let (Some(hour), Some(n), Some(b)) = (hour, count(), count()) else {
                            return false;
                        };
                        map.insert(hour, (n, b));
                    }
                }
                self.clients.insert(
                    (*client).to_owned(),
                    ClientState {
                        last_upload,
                        hours: map,
                        versions,
                        health,
                    },
                );
                true
            }
            _ => false,
        }
    }
}
