//! `cargo xtask deb`: the Debian packages `argus-webjob-server` (process_argus) and
//! `argus-webjob-sensor` (harvest_argus), built with Debian's own `dpkg-deb`.
//!
//! Each package holds its binary in `/usr/bin` (stripped), its man pages (`gzip -9n`, from the
//! clap definitions, as in the tarball), its shell completions, its example configuration as a
//! conffile under `/etc/argus-webjob/` (paths moved to the Debian places), its systemd units in
//! `/lib/systemd/system` (running `/usr/bin/...` with that config; never enabled or started by
//! the package), `copyright` and `changelog.gz` (a native package). `postinst` creates the state and log
//! directories, `postrm` removes them on purge only. `Depends:` comes from `dpkg-shlibdeps` run
//! on the binary; the sensor package recommends `argus-server`. Every file's time is
//! `SOURCE_DATE_EPOCH` (dpkg-deb clamps to it too), so the same inputs give the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::dist;

/// The packages: name, program, what it is for, the units it ships, what it recommends.
pub(crate) struct Package {
    pub(crate) name: &'static str,
    pub(crate) program: &'static str,
    summary: &'static str,
    about: &'static str,
    units: &'static [&'static str],
    recommends: Option<&'static str>,
}

pub(crate) const PACKAGES: [Package; 2] = [
    Package {
        name: "argus-webjob-server",
        program: "process_argus",
        summary: "ingest WebJob argus uploads exactly once into per-host day files",
        about: "process_argus takes each complete upload of argus flow data from the\n \
                WebJob dropzone, appends it exactly once to a per-host per-day file,\n \
                archives the raw upload compressed, quarantines bad uploads, and reports\n \
                which sensors went quiet. It runs from a timer or as a daemon, runs the\n \
                site's follow-on stages, and exports Prometheus metrics.",
        units: &[
            "process_argus.service",
            "process_argus.timer",
            "process_argus-pass.service",
        ],
        recommends: None,
    },
    Package {
        name: "argus-webjob-sensor",
        program: "harvest_argus",
        summary: "cut a live argus output file without loss and ship it through WebJob",
        about: "harvest_argus cuts the output file of a running argus sensor without\n \
                losing a record, writes the chunk to stdout for WebJob to upload, keeps a\n \
                compressed local archive, purges old archives and keeps argus running.",
        units: &["harvest_argus.service", "harvest_argus.timer"],
        recommends: Some("argus-server"),
    },
];

/// Where the packages keep their state and logs (created by `postinst`, removed on purge).
const STATE_DIR: &str = "/var/lib/argus-webjob";
const LOG_DIR: &str = "/var/log/argus-webjob";

/// What `build` needs besides the repository.
#[derive(Clone, Debug)]
pub(crate) struct Inputs {
    pub(crate) harvest_bin: PathBuf,
    pub(crate) process_bin: PathBuf,
    pub(crate) version: String,
    pub(crate) mtime: u64,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!(
            "deb takes no arguments (got {extra:?}); set SOURCE_DATE_EPOCH to fix the time stamps"
        ));
    }
    let dir = crate::util::build(true)?;
    let inputs = Inputs {
        harvest_bin: dir.join("harvest_argus"),
        process_bin: dir.join("process_argus"),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        mtime: dist::source_date_epoch()?,
    };
    for deb in build(&inputs, &crate::root().join("target").join("deb"))? {
        println!("{}", deb.display());
    }
    Ok(())
}

/// Builds both packages into `out_dir`; returns their paths.
pub(crate) fn build(inputs: &Inputs, out_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let arch = output("dpkg", &["--print-architecture"], None)?;
    let arch = arch.trim();
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let generated = dist::man_and_completions(inputs.mtime, &inputs.version)?;
    let mut debs = Vec::new();
    for p in &PACKAGES {
        let root = work.path().join(p.name);
        let bin = match p.program {
            "process_argus" => &inputs.process_bin,
            _ => &inputs.harvest_bin,
        };
        tree(p, bin, &generated, &root, inputs)?;
        let depends = shlib_depends(&root.join("usr/bin").join(p.program), work.path())?;
        control(p, &root, inputs, arch, &depends)?;
        set_times(&root, inputs.mtime)?;
        let deb = out_dir.join(format!("{}_{}_{arch}.deb", p.name, inputs.version));
        let epoch = inputs.mtime.to_string();
        let out = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb)
            .env("SOURCE_DATE_EPOCH", &epoch)
            .output()
            .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "dpkg-deb --build {}: {}",
                p.name,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        debs.push(deb);
    }
    Ok(debs)
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The installed configuration: the example with the Debian paths.
pub(crate) fn packaged_config(program: &str) -> Result<String, String> {
    let example = crate::root()
        .join("dist/examples")
        .join(format!("{program}.toml"));
    let text = String::from_utf8(read(&example)?).map_err(|e| e.to_string())?;
    Ok(match program {
        "process_argus" => text
            .replace(
                "log_dir = \"/usr/local/integrity/log\"",
                &format!("log_dir = \"{LOG_DIR}\""),
            )
            .replace(
                "#state_dir = \"/integrity/process_argus\"",
                &format!("state_dir = \"{STATE_DIR}\""),
            ),
        _ => text,
    })
}

/// A unit as installed: the programs in `/usr/bin`, the config in `/etc/argus-webjob`.
fn packaged_unit(p: &Package, text: &str) -> String {
    let config = format!("/etc/argus-webjob/{}.toml", p.program);
    text.replace(
        &format!("/usr/local/integrity/bin/{} watch", p.program),
        &format!("/usr/bin/{} --config {config} watch", p.program),
    )
    .replace(
        &format!("ExecStart=/usr/local/integrity/bin/{}\n", p.program),
        &format!("ExecStart=/usr/bin/{} --config {config}\n", p.program),
    )
    .replace(
        "ReadWritePaths=-/usr/local/integrity/log",
        &format!("ReadWritePaths=-{LOG_DIR}"),
    )
    .replace("Environment=WEBJOB_HOME=/usr/local/integrity\n", "")
    .replace(
        "copy to /etc/systemd/system/, adjust the paths (`systemctl edit process_argus`), then",
        "installed by the package; adjust with `systemctl edit process_argus`, then",
    )
}

fn tree(
    p: &Package,
    bin: &Path,
    generated: &[dist::File],
    root: &Path,
    inputs: &Inputs,
) -> Result<(), String> {
    let usr = root.join("usr");
    let bin_to = usr.join("bin").join(p.program);
    write(&bin_to, &read(bin)?, 0o755)?;
    let status = Command::new("strip")
        .args([
            "--strip-unneeded",
            "--remove-section=.comment",
            "--remove-section=.note",
        ])
        .arg(&bin_to)
        .status()
        .map_err(|e| format!("cannot run strip: {e}"))?;
    if !status.success() {
        return Err(format!("strip {} failed", bin_to.display()));
    }
    for f in generated {
        let Some(rest) = f.path.strip_prefix("share/") else {
            continue;
        };
        let name = Path::new(rest)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let ours = name.trim_start_matches('_').starts_with(p.program);
        if !ours {
            continue;
        }
        let (to, data) = if let Some(page) = rest.strip_prefix("man/man1/") {
            (format!("man/man1/{page}.gz"), dist::gzip(&f.data)?)
        } else if let Some(zsh) = rest.strip_prefix("zsh/site-functions/") {
            (format!("zsh/vendor-completions/{zsh}"), f.data.clone())
        } else {
            (rest.to_owned(), f.data.clone())
        };
        write(&usr.join("share").join(to), &data, 0o644)?;
    }
    write(
        &root
            .join("etc/argus-webjob")
            .join(format!("{}.toml", p.program)),
        packaged_config(p.program)?.as_bytes(),
        0o644,
    )?;
    for unit in p.units {
        let text = String::from_utf8(read(&crate::root().join("dist/systemd").join(unit))?)
            .map_err(|e| e.to_string())?;
        write(
            &root.join("lib/systemd/system").join(unit),
            packaged_unit(p, &text).as_bytes(),
            0o644,
        )?;
    }
    let doc = usr.join("share/doc").join(p.name);
    write(&doc.join("copyright"), copyright(p)?.as_bytes(), 0o644)?;
    let date = debian_date(inputs.mtime)?;
    let changelog = format!(
        "{} ({}) unstable; urgency=medium\n\n  * Release {}.\n\n -- argus-webjob developers <maintainers@argus-webjob.invalid>  {date}\n",
        p.name, inputs.version, inputs.version
    );
    write(
        &doc.join("changelog.gz"),
        &dist::gzip(changelog.as_bytes())?,
        0o644,
    )?;
    Ok(())
}

fn copyright(p: &Package) -> Result<String, String> {
    let license =
        String::from_utf8(read(&crate::root().join("LICENSE"))?).map_err(|e| e.to_string())?;
    let body: Vec<String> = license
        .lines()
        .skip_while(|l| !l.starts_with("Permission"))
        .map(|l| {
            if l.trim().is_empty() {
                " .".to_owned()
            } else {
                format!(" {l}")
            }
        })
        .collect();
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: {}\nSource: {}\n\nFiles: *\nCopyright: 2026 the argus-webjob developers\nLicense: Expat\n\nLicense: Expat\n{}\n",
        p.name,
        env!("CARGO_PKG_REPOSITORY"),
        body.join("\n")
    ))
}

/// `Depends:` of a binary, from `dpkg-shlibdeps` (which wants a `debian/control` to read).
fn shlib_depends(binary: &Path, work: &Path) -> Result<String, String> {
    let dir = work.join("shlibdeps");
    write(
        &dir.join("debian/control"),
        b"Source: argus-webjob\n\nPackage: argus-webjob\nArchitecture: any\n",
        0o644,
    )?;
    let out = output(
        "dpkg-shlibdeps",
        &["-O", &format!("-e{}", binary.display())],
        Some(&dir),
    )?;
    out.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::to_owned)
        .ok_or_else(|| format!("dpkg-shlibdeps printed no Depends: {out}"))
}

fn control(
    p: &Package,
    root: &Path,
    inputs: &Inputs,
    arch: &str,
    depends: &str,
) -> Result<(), String> {
    let installed_kib = du_kib(root)?;
    let recommends = p
        .recommends
        .map(|r| format!("Recommends: {r}\n"))
        .unwrap_or_default();
    let text = format!(
        "Package: {}\nVersion: {}\nArchitecture: {arch}\nMaintainer: argus-webjob developers <maintainers@argus-webjob.invalid>\nInstalled-Size: {installed_kib}\nDepends: {depends}\n{recommends}Section: net\nPriority: optional\nHomepage: {}\nDescription: {}\n {}\n",
        p.name,
        inputs.version,
        env!("CARGO_PKG_REPOSITORY"),
        p.summary,
        p.about
    );
    let debian = root.join("DEBIAN");
    write(&debian.join("control"), text.as_bytes(), 0o644)?;
    write(
        &debian.join("conffiles"),
        format!("/etc/argus-webjob/{}.toml\n", p.program).as_bytes(),
        0o644,
    )?;
    let postinst = format!(
        "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\tmkdir -p {STATE_DIR} {LOG_DIR}\n\tchmod 0750 {STATE_DIR} {LOG_DIR}\nfi\n"
    );
    write(&debian.join("postinst"), postinst.as_bytes(), 0o755)?;
    let postrm = format!(
        "#!/bin/sh\nset -e\nif [ \"$1\" = purge ]; then\n\trm -rf {STATE_DIR} {LOG_DIR}\nfi\n"
    );
    write(&debian.join("postrm"), postrm.as_bytes(), 0o755)?;
    write(&debian.join("md5sums"), md5sums(root)?.as_bytes(), 0o644)
}

/// The sizes of every file below `root` (without `DEBIAN`), in KiB rounded up, as dpkg counts.
fn du_kib(root: &Path) -> Result<u64, String> {
    Ok(files(root)?.iter().map(|(_, len)| len.div_ceil(1024)).sum())
}

/// `md5sum`'s lines for every file below `root`, `DEBIAN` left out, sorted.
fn md5sums(root: &Path) -> Result<String, String> {
    let mut lines = String::new();
    for (rel, _) in files(root)? {
        let out = output("md5sum", &[&rel], Some(root))?;
        lines.push_str(&out);
    }
    Ok(lines)
}

/// Every regular file below `root` but `DEBIAN/`, relative and sorted, with its size.
fn files(root: &Path) -> Result<Vec<(String, u64)>, String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, u64)>) -> Result<(), String> {
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|e| e.to_string())?;
            if meta.is_dir() {
                if path != root.join("DEBIAN") {
                    walk(&path, root, out)?;
                }
            } else {
                let rel = path.strip_prefix(root).map_err(|e| e.to_string())?;
                out.push((rel.display().to_string(), meta.len()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// Every file and directory below `root` gets the time `mtime`.
fn set_times(root: &Path, mtime: u64) -> Result<(), String> {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| e.to_string())? {
                stack.push(entry.map_err(|e| e.to_string())?.path());
            }
        }
        std::fs::File::open(&path)
            .and_then(|f| f.set_modified(when))
            .map_err(|e| format!("cannot set the time of {}: {e}", path.display()))?;
    }
    Ok(())
}

/// An RFC 2822 date for the changelog.
fn debian_date(mtime: u64) -> Result<String, String> {
    let seconds = i64::try_from(mtime).map_err(|e| e.to_string())?;
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| e.to_string())?;
    t.format(&time::format_description::well_known::Rfc2822)
        .map_err(|e| e.to_string())
}

/// The stdout of a command that must succeed.
fn output(program: &str, args: &[&str], dir: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
