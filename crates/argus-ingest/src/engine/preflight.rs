//! The checks made before a pass starts, by `Engine::start`, the dry run and `check-config`:
//! every problem at once.

use std::fs;

use crate::config::Config;
use crate::error::Problem;

/// Problems that would stop a pass before it starts (for `check-config`): the values
/// [`Config::check`] refuses; the dropzone must exist; the other directories must exist or be
/// creatable.
pub fn preflight(config: &Config) -> Vec<Problem> {
    let mut problems: Vec<Problem> = config.check().into_iter().map(Problem::from).collect();
    match fs::metadata(&config.drop_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => problems.push(Problem::DropzoneNotDir(config.drop_dir.clone())),
        Err(source) => problems.push(Problem::DropzoneMissing {
            path: config.drop_dir.clone(),
            source,
        }),
    }
    for (name, dir) in config.own_directories() {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => problems.push(Problem::NotDir {
                key: name,
                path: dir.to_path_buf(),
            }),
            Err(_) => {
                let existing = dir.ancestors().find(|a| a.exists());
                if existing.is_some_and(|a| !a.is_dir()) {
                    problems.push(Problem::CannotCreate {
                        key: name,
                        path: dir.to_path_buf(),
                    });
                }
            }
        }
    }
    problems
}
