//! Repository rules, checked by `cargo test` (so CI enforces them): dependency direction between
//! the workspace crates, workspace lints everywhere, and no shell in product code.

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
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
            ("process", &["argus-core", "webjob-drop"][..]),
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
}
