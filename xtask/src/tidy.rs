//! Repository rules, checked by `cargo test` (so CI enforces them): dependency direction between
//! the workspace crates, workspace lints everywhere, and no shell in product code.

#[cfg(test)]
mod module_graph;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs;
    use std::path::{Path, PathBuf};

    /// Every package of the workspace: name -> (manifest dir, parsed manifest).
    fn packages() -> BTreeMap<String, (PathBuf, toml::Table)> {
        let root = crate::root();
        let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
            .expect("crates/")
            .map(|e| e.expect("entry").path())
            .collect();
        dirs.push(root.join("xtask"));
        dirs.push(root.join("tests"));
        dirs.into_iter()
            .map(|dir| {
                let text = fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
                let manifest: toml::Table = text.parse().expect("valid TOML");
                let name = manifest["package"]["name"]
                    .as_str()
                    .expect("package.name")
                    .to_owned();
                (name, (dir, manifest))
            })
            .collect()
    }

    /// Normal (non-dev) dependencies of a manifest.
    fn deps(manifest: &toml::Table) -> Vec<String> {
        manifest
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn dependencies_point_downward_only() {
        let packages = packages();
        // What each workspace crate may depend on among the workspace crates and the crates
        // reserved for binaries.
        let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
            ("argus-core", &[][..]),
            ("argus-proc", &["argus-core"][..]),
            ("webjob-drop", &["argus-core"][..]),
            ("harvest", &["argus-core", "argus-proc"][..]),
            // The server's engine sits on the dropzone protocol, the program on the engine.
            ("argus-ingest", &["argus-core", "webjob-drop"][..]),
            (
                "process",
                &["argus-core", "webjob-drop", "argus-ingest"][..],
            ),
            // The end-to-end tests build both programs from their libraries, and nothing else.
            ("argus-webjob-e2e", &["harvest", "process"][..]),
        ]);
        let internal: Vec<&str> = packages.keys().map(String::as_str).collect();
        let bin_only = [
            "clap",
            "clap_complete",
            "clap_mangen",
            "env_logger",
            "anyhow",
        ];
        for (name, (_, manifest)) in &packages {
            let Some(allowed) = allowed.get(name.as_str()) else {
                continue;
            };
            for dep in deps(manifest) {
                if internal.contains(&dep.as_str()) {
                    assert!(
                        allowed.contains(&dep.as_str()),
                        "{name} must not depend on {dep}: dependencies point downward only \
                         (bins -> libraries -> argus-core; argus-proc and webjob-drop never \
                         depend on each other)"
                    );
                }
                let is_bin = matches!(name.as_str(), "harvest" | "process");
                assert!(
                    is_bin || !bin_only.contains(&dep.as_str()),
                    "library {name} must not depend on {dep}: only the bins parse arguments \
                     and install loggers"
                );
            }
        }
        assert_eq!(
            allowed
                .keys()
                .filter(|k| packages.contains_key(**k))
                .count(),
            allowed.len(),
            "every crate of the design card exists"
        );
    }

    #[test]
    fn the_small_libraries_pull_no_codec() {
        // argus-proc and webjob-drop compress nothing: an embedder of either must not build
        // libdeflate or liblzma from C (nor any other codec) through argus-core's features.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        for lib in ["argus-proc", "webjob-drop"] {
            let out = std::process::Command::new(&cargo)
                .args(["tree", "-p", lib, "-e", "normal", "--prefix", "none"])
                .args(["--format", "{p}"])
                .current_dir(crate::root())
                .output()
                .expect("run cargo tree");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "cargo tree -p {lib}: {text}");
            let crates: BTreeSet<&str> = text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            assert!(crates.contains("argus-core"), "{lib}: {crates:?}");
            for codec in ["flate2", "libdeflater", "liblzma", "bzip2"] {
                assert!(
                    !crates.contains(codec),
                    "{lib} pulls {codec}: depend on argus-core with default-features = false"
                );
            }
        }
    }

    #[test]
    fn every_package_uses_the_workspace_lints() {
        for (name, (_, manifest)) in packages() {
            let inherits = manifest
                .get("lints")
                .and_then(|l| l.get("workspace"))
                .and_then(toml::Value::as_bool);
            assert_eq!(inherits, Some(true), "{name}: add [lints] workspace = true");
        }
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn product_code_never_runs_a_shell() {
        let mut files = Vec::new();
        rust_files(&crate::root().join("crates"), &mut files);
        assert!(!files.is_empty());
        let needles = [
            concat!("Command::new(\"", "sh\")"),
            concat!("Command::new(\"", "/bin/sh\")"),
            concat!("Command::new(\"", "bash\")"),
            concat!("Command::new(\"", "/bin/bash\")"),
        ];
        for file in files {
            let text = fs::read_to_string(&file).expect("read");
            for needle in needles {
                assert!(
                    !text.contains(needle),
                    "{}: product code must not run a shell ({needle})",
                    file.display()
                );
            }
        }
    }

    /// Product source files: `crates/*/src/**/*.rs`.
    fn product_sources() -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(crate::root().join("crates")).expect("crates") {
            let src = entry.expect("entry").path().join("src");
            if src.is_dir() {
                rust_files(&src, &mut files);
            }
        }
        files.sort();
        assert!(files.len() > 20, "product sources found: {files:?}");
        files
    }

    #[test]
    fn every_module_says_what_it_owns() {
        for file in product_sources() {
            let text = fs::read_to_string(&file).expect("read");
            assert!(
                text.starts_with("//!"),
                "{}: a module opens with a //! paragraph saying what it owns",
                file.display()
            );
        }
    }

    /// Lines a product source file may hold, unit tests in a `tests.rs` of their own aside: past
    /// that a file holds two concepts and becomes a folder module.
    const MAX_LINES: usize = 600;

    #[test]
    fn no_source_file_grows_past_one_concept() {
        for file in product_sources() {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let lines = fs::read_to_string(&file).expect("read").lines().count();
            assert!(
                lines <= MAX_LINES,
                "{}: {lines} lines, more than {MAX_LINES}: split it into a folder module",
                file.display()
            );
        }
    }

    #[test]
    fn nothing_below_the_engine_imports_it() {
        // In argus-ingest, the engine orchestrates the modules beside it (config, dropzone,
        // journal, ledger, dayfile, report, ...); only what runs it (the daemon, and the crate
        // root) may name it.
        let src = crate::root().join("crates/argus-ingest/src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let rel = file.strip_prefix(&src).expect("inside");
            let above = rel.starts_with("engine")
                || ["watch.rs", "main.rs", "lib.rs", "progress.rs"]
                    .iter()
                    .any(|n| rel == Path::new(n));
            if above {
                continue;
            }
            let text = fs::read_to_string(&file).expect("read");
            assert!(
                !text.contains("crate::engine"),
                "{}: a module below the engine must not import it",
                file.display()
            );
        }
    }

    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        // Modules that use each other are one concept in two files, or two concepts sharing an
        // item that belongs in one of them (or in a small module below both): either way
        // neither can be read, tested or moved alone. process_argus's engine is a directory of
        // steps, so its submodules count one by one.
        let root = crate::root();
        let mut srcs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
            .expect("crates/")
            .map(|e| e.expect("entry").path().join("src"))
            .filter(|src| src.is_dir())
            .collect();
        srcs.push(root.join("xtask/src"));
        srcs.sort();
        let mut found = Vec::new();
        for src in &srcs {
            let graph = super::module_graph::of_crate(src, &["engine"]);
            assert!(
                !graph.is_empty() || src.ends_with("test-support/src"),
                "{}: no module uses another: the scan is broken",
                src.display()
            );
            for cycle in super::module_graph::cycles(&graph) {
                let name = src
                    .parent()
                    .unwrap_or(src)
                    .strip_prefix(&root)
                    .unwrap_or(src);
                found.push(format!("{}: {cycle}", name.display()));
            }
        }
        assert!(
            found.is_empty(),
            "import cycles between modules (move the shared item to the module that owns it):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_module_scan_reads_use_trees_and_ignores_tests_and_text() {
        use super::module_graph::{blank_out, cycles, references};
        let here = ["engine".to_owned(), "days".to_owned()];
        let text = r##"
            // Names crate::comment::Thing in a plain comment only.
            /// Links to [`crate::doc::Link`]."
            use crate::{a::X, b::{Y, c::Z}};
            use super::prepare::Plan;
            use super::super::top;
            fn f() { let s = "crate::string::Thing"; let c = '"'; crate::d::call(); }
            #[cfg(test)]
            mod tests {
                use crate::e::Only;
            }
        "##;
        let mut got: Vec<String> = references(&blank_out(text), &here)
            .into_iter()
            .map(|p| p.join("::"))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "a::X",
                "b::Y",
                "b::c::Z",
                "d::call",
                "doc::Link",
                "engine::prepare::Plan",
                "top"
            ]
        );

        let mut graph = super::module_graph::Graph::new();
        for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
            graph
                .entry(from.to_owned())
                .or_default()
                .insert(to.to_owned(), PathBuf::from(format!("{from}.rs")));
        }
        let found = cycles(&graph);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("a -> b -> c -> a\n"), "{found:?}");
        graph.get_mut("c").expect("c").remove("a");
        assert!(cycles(&graph).is_empty());
    }
}
