//! Which module of a crate uses which, read from the source text, and the cycles among them.
//!
//! A text scan, not a compiler: comments (but for the intra-doc links of doc comments, which
//! rustdoc resolves), string and character literals and `#[cfg(test)]` items are blanked out,
//! then every `crate::` and `super::` path (including the branches of a
//! `use crate::{a::X, b::Y}` tree) names the module it reaches. Modules are the crate's
//! top-level ones (`src/foo.rs` or `src/foo/`); a directory listed in `split` also counts each
//! of its submodules (`engine::days`) on its own. The crate root (`lib.rs`, `main.rs`) re-exports
//! and declares everything, so paths to it and from it are left out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// Edges `from -> to`, each with the first file that makes it (relative to `src`).
pub(super) type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

/// The module graph of the crate whose sources are in `src`. Files named `tests.rs` hold unit
/// tests and are skipped.
pub(super) fn of_crate(src: &Path, split: &[&str]) -> Graph {
    let mut files = Vec::new();
    collect(src, &mut files);
    files.sort();
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("inside src");
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let here = module_path(rel);
        let Some(from) = node(&here, split) else {
            continue;
        };
        let text = fs::read_to_string(&file).expect("read source");
        for target in references(&blank_out(&text), &here) {
            if let Some(to) = node(&target, split)
                && to != from
            {
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    graph
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file relative to `src`: `engine/day_pieces.rs` -> `[engine, day_pieces]`,
/// `engine/mod.rs` -> `[engine]`, `lib.rs` -> `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

/// The graph node a module path belongs to; `None` for the crate root.
fn node(path: &[String], split: &[&str]) -> Option<String> {
    let top = path.first()?;
    match path.get(1) {
        Some(sub) if split.contains(&top.as_str()) => Some(format!("{top}::{sub}")),
        _ => Some(top.clone()),
    }
}

/// The source with comments, literals and `#[cfg(test)]` items replaced by spaces (newlines
/// kept).
pub(super) fn blank_out(text: &str) -> String {
    let without_literals = blank_comments_and_literals(text.as_bytes());
    blank_test_items(&without_literals)
}

fn blank_comments_and_literals(b: &[u8]) -> String {
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            // A doc comment's intra-doc links are paths rustdoc resolves: they stay.
            let doc = (rest.starts_with(b"///") && !rest.starts_with(b"////"))
                || rest.starts_with(b"//!");
            if !doc {
                blank(&mut out, i, end);
            }
            i = end;
        } else if rest.starts_with(b"/*") {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#"))
            && (i == 0 || !ident(b[i - 1]))
        {
            // A raw string: r"..." or r#"..."#, closed by a quote and as many hashes.
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let mut closing = vec![b'"'];
            closing.extend(std::iter::repeat_n(b'#', hashes));
            let body = i + 2 + hashes;
            let end = b[body..]
                .windows(closing.len())
                .position(|w| w == closing.as_slice())
                .map_or(b.len(), |p| body + p + closing.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\'') or a lifetime ('a), which stays.
            if rest.get(1) == Some(&b'\\') {
                let end = rest[2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(b.len(), |p| i + 2 + p + 1);
                blank(&mut out, i, end);
                i = end;
            } else if let Some(len) = rest[1..].iter().take(5).position(|&c| c == b'\'')
                && std::str::from_utf8(&rest[1..1 + len]).is_ok_and(|s| s.chars().count() == 1)
            {
                blank(&mut out, i, i + len + 2);
                i += len + 2;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Blanks every item that follows a `#[cfg(test)]`: up to its `;`, or its `{ ... }` block.
fn blank_test_items(text: &str) -> String {
    let mut out = text.as_bytes().to_vec();
    let mut from = 0;
    while let Some(p) = text[from..].find("#[cfg(test)]") {
        let start = from + p;
        let b = text.as_bytes();
        let mut j = start + "#[cfg(test)]".len();
        let mut depth = 0usize;
        while j < b.len() {
            match b[j] {
                b';' if depth == 0 => {
                    j += 1;
                    break;
                }
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        j += 1;
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        for c in &mut out[start..j.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = j.min(b.len());
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every module path reached by a `crate::` or `super::` path in `text` (already blanked out),
/// as seen from the module at `here`.
pub(super) fn references(text: &str, here: &[String]) -> Vec<Vec<String>> {
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if i > 0 && (ident(b[i - 1]) || b[i - 1] == b':') {
            i += 1;
            continue;
        }
        let rest = &b[i..];
        let (base, mut j) = if rest.starts_with(b"crate::") {
            (Vec::new(), i + "crate::".len())
        } else if rest.starts_with(b"super::") {
            let mut base = here.to_vec();
            let mut j = i;
            while b[j..].starts_with(b"super::") {
                base.pop();
                j += "super::".len();
            }
            (base, j)
        } else {
            i += 1;
            continue;
        };
        j = skip_space(b, j);
        use_tree(b, &mut j, base, &mut found);
        i = j.max(i + 1);
    }
    found
}

/// Reads one branch of a path or use tree at `*j` (`a::b::c`, `a::{b, c::d}`, `{a, b}`),
/// pushing every path it names below `base`.
fn use_tree(b: &[u8], j: &mut usize, mut base: Vec<String>, found: &mut Vec<Vec<String>>) {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    loop {
        *j = skip_space(b, *j);
        if b.get(*j) == Some(&b'{') {
            *j += 1;
            loop {
                *j = skip_space(b, *j);
                match b.get(*j) {
                    None => return,
                    Some(b'}') => {
                        *j += 1;
                        return;
                    }
                    Some(b',') => *j += 1,
                    Some(_) => {
                        let before = *j;
                        use_tree(b, j, base.clone(), found);
                        if *j == before {
                            *j += 1;
                        }
                    }
                }
            }
        }
        let start = *j;
        while *j < b.len() && ident(b[*j]) {
            *j += 1;
        }
        if *j == start {
            found.push(base);
            return;
        }
        base.push(String::from_utf8_lossy(&b[start..*j]).into_owned());
        let after = skip_space(b, *j);
        if b[after..].starts_with(b"::") {
            *j = after + 2;
        } else {
            found.push(base);
            return;
        }
    }
}

fn skip_space(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    j
}

/// Every cycle of the graph, one per strongly connected set of modules, each as the shortest
/// round trip from the set's first module, written `a -> b -> a`.
pub(super) fn cycles(graph: &Graph) -> Vec<String> {
    let nodes: BTreeSet<&String> = graph
        .iter()
        .flat_map(|(from, to)| std::iter::once(from).chain(to.keys()))
        .collect();
    let mut seen: BTreeSet<&String> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in &nodes {
        if seen.contains(start) {
            continue;
        }
        // Shortest path back to `start`, breadth first.
        let mut previous: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        while let Some(at) = queue.pop_front() {
            for next in graph.get(at).into_iter().flat_map(BTreeMap::keys) {
                if next == start {
                    closing = Some(at);
                    break;
                }
                if !previous.contains_key(next) {
                    previous.insert(next, at);
                    queue.push_back(next);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let Some(mut at) = closing else { continue };
        let mut path = vec![start];
        while at != start {
            path.push(at);
            at = previous[at];
        }
        path.push(start);
        let last = path.len() - 1;
        path[1..last].reverse();
        let names: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
        let mut text = names.join(" -> ");
        for pair in path.windows(2) {
            let file = &graph[pair[0]][pair[1]];
            text.push_str(&format!(
                "\n    {} uses {} in {}",
                pair[0],
                pair[1],
                file.display()
            ));
        }
        seen.extend(path);
        out.push(text);
    }
    out
}
