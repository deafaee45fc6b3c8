//! Process identity: a pid together with its start time, so that a reused pid is never taken
//! for the process that had it before.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::procfs;

/// One process instance: its pid and its start time in clock ticks since boot.
///
/// The kernel hands out a pid again only after its process is gone, and the new process starts
/// later, so the pair never names two processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The pid.
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat`.
    pub start_ticks: u64,
}

impl ProcessId {
    /// The process that has `pid` now, if there is one that still runs (zombies do not count).
    pub fn of(pid: i32) -> Option<ProcessId> {
        if pid <= 0 {
            return None;
        }
        let stat = procfs::stat(pid).ok()?;
        (!stat.is_dead()).then_some(ProcessId {
            pid,
            start_ticks: stat.start_ticks,
        })
    }

    /// True while this very process runs: same pid, same start time, not a zombie.
    pub fn is_alive(&self) -> bool {
        ProcessId::of(self.pid) == Some(*self)
    }

    /// When the process started, by the wall clock (to the clock tick).
    pub fn started_at(&self) -> Option<SystemTime> {
        let boot = procfs::boot_time().ok()?;
        let hz = procfs::ticks_per_second();
        let since_boot = Duration::from_secs(self.start_ticks / hz)
            + Duration::from_nanos((self.start_ticks % hz) * 1_000_000_000 / hz);
        Some(boot + since_boot)
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let id = ProcessId::of(me).expect("running");
        assert!(id.is_alive());
        let reused = ProcessId {
            start_ticks: id.start_ticks + 1,
            ..id
        };
        assert!(!reused.is_alive());
        let started = id.started_at().expect("start time");
        let now = SystemTime::now();
        assert!(started <= now + Duration::from_secs(2));
        assert!(ProcessId::of(0).is_none());
        assert!(ProcessId::of(-5).is_none());
    }

    #[test]
    fn a_reaped_child_is_gone_and_a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = i32::try_from(child.id()).expect("pid fits");
        let id = ProcessId::of(pid);
        // Wait until it is a zombie (not reaped yet): it must not count as running.
        for _ in 0..200 {
            if ProcessId::of(pid).is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(ProcessId::of(pid).is_none());
        if let Some(id) = id {
            assert!(!id.is_alive());
        }
        child.wait().expect("reap");
    }
}
