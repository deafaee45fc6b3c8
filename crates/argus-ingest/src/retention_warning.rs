//! Retention that cannot surprise: a purge that deletes archives written by the same pass, or
//! more than half of the archive's bytes at once, is carried out (the settings are valid and
//! say so) but warned about: in the log, naming the setting responsible; in the metrics
//! (`retention_warnings_total`); and in `status` for a day, from `STATE_DIR/retention-warning`,
//! one sealed line `UNIX_SECONDS<TAB>SETTING<TAB>MESSAGE`.

use std::path::{Path, PathBuf};

use argus_core::grammar::format_size;
use argus_core::retention::{Reason, Surprise};
use argus_core::stateline::StateLines;
use time::OffsetDateTime;

use crate::config::Config;

const LINES: StateLines = StateLines::new(b'\t', 4);

/// The last surprising purge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionWarning {
    /// When it happened.
    pub at: OffsetDateTime,
    /// The setting responsible (`archive_max_size`, `archive_days`).
    pub setting: String,
    /// What happened, for people.
    pub message: String,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("retention-warning")
}

impl RetentionWarning {
    /// The warning for `surprise`, a purge about to delete `count` archives under `config`.
    pub fn new(
        config: &Config,
        surprise: &Surprise,
        count: usize,
        at: OffsetDateTime,
    ) -> RetentionWarning {
        let (setting, values) = match (surprise.reason, config.archive_max_size) {
            (Reason::Size, Some(max)) => {
                let low = config.archive_low_watermark.of(max).min(max);
                (
                    "archive_max_size",
                    format!(
                        "archive_max_size = {} with archive_low_watermark = {}",
                        format_size(max),
                        format_size(low)
                    ),
                )
            }
            _ => (
                "archive_days",
                format!("archive_days = {}", config.archive_days),
            ),
        };
        let share =
            u128::from(surprise.deleted_bytes) * 100 / u128::from(surprise.total_bytes.max(1));
        let fresh = match surprise.fresh {
            0 => String::new(),
            n => format!(", {n} of them written by this same pass"),
        };
        RetentionWarning {
            at,
            setting: setting.to_owned(),
            message: format!(
                "retention deletes {count} archive{}, {} of {} ({share}%){fresh}: {values} \
                 decides it; if that is not meant, raise {setting} \
                 (process_argus check-config shows the effective values)",
                if count == 1 { "" } else { "s" },
                format_size(surprise.deleted_bytes),
                format_size(surprise.total_bytes),
            ),
        }
    }

    /// Keeps it for `status`, replacing the one before.
    pub fn save(&self, state_dir: &Path) -> argus_core::Result<()> {
        let body = format!(
            "{}\t{}\t{}",
            self.at.unix_timestamp(),
            self.setting,
            self.message.replace(['\t', '\n'], " ")
        );
        let mut out = Vec::new();
        LINES.seal(body.as_bytes(), &mut out);
        argus_core::publish::replace_durably(&path(state_dir), &out)
    }

    /// The last one kept, if any (a damaged file counts as none).
    pub fn load(state_dir: &Path) -> Option<RetentionWarning> {
        let bytes = std::fs::read(path(state_dir)).ok()?;
        let body = LINES.unseal_str(&bytes)?;
        let mut fields = body.splitn(3, '\t');
        let at = fields.next()?.parse::<i64>().ok()?;
        Some(RetentionWarning {
            at: OffsetDateTime::from_unix_timestamp(at).ok()?,
            setting: fields.next()?.to_owned(),
            message: fields.next()?.to_owned(),
        })
    }

    /// Whether `status` still shows it at `now` (for a day).
    pub fn recent(&self, now: OffsetDateTime) -> bool {
        now - self.at < time::Duration::days(1)
    }
}
