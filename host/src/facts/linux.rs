//! Linux: CPUs from `sysconf` and `sched_getaffinity`, memory from
//! `/proc/meminfo`, processes from `/proc/<pid>` (`kill(pid, 0)` where procfs
//! is not mounted).

use super::unix::{kill_says_exists, nofile};
use super::{cpu_count, HostFacts, Limit};

/// Linux's raw answers (the real ones are [`Syscalls`]).
pub(super) trait Os: Send + Sync {
    /// `RLIM_INFINITY`.
    const RLIM_INFINITY: u64;
    /// `sysconf(_SC_NPROCESSORS_ONLN)`.
    fn online_cpus(&self) -> i64;
    /// The number of CPUs in `sched_getaffinity(0)`'s mask, or the errno.
    fn affinity(&self) -> Result<u32, i32>;
    /// The text of `/proc/meminfo`.
    fn meminfo(&self) -> std::io::Result<String>;
    /// `getrlimit(RLIMIT_NOFILE)` as `(soft, hard)`, or the errno.
    fn nofile(&self) -> Result<(u64, u64), i32>;
    /// Whether `path` exists (`/proc/self`, `/proc/<pid>`).
    fn exists(&self, path: &str) -> bool;
    /// `kill(pid, 0)`: `Ok` when the signal could be sent, else the errno.
    fn kill0(&self, pid: i32) -> Result<(), i32>;
}

/// Linux's facts from its raw answers.
pub(super) struct Facts<S>(pub S);

/// `MemTotal` of `/proc/meminfo`'s text, in bytes.
fn meminfo_total(meminfo: &str) -> Result<u64, String> {
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .ok_or("MemTotal missing from /proc/meminfo")?;
    kib.checked_mul(1024)
        .ok_or_else(|| "MemTotal out of range in /proc/meminfo".to_string())
}

impl<S: Os> HostFacts for Facts<S> {
    fn logical_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(cpu_count(self.0.online_cpus()))
    }

    fn affinity_cpu_count(&self) -> Result<Option<u32>, String> {
        match self.0.affinity() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Ok(cpu_count(self.0.online_cpus())),
        }
    }

    fn os_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(cpu_count(self.0.online_cpus()))
    }

    fn memory_total_bytes(&self) -> Result<u64, String> {
        let text = self.0.meminfo().map_err(|e| e.to_string())?;
        meminfo_total(&text)
    }

    fn nofile_limit(&self) -> Result<(Limit, Limit), String> {
        nofile(self.0.nofile(), S::RLIM_INFINITY)
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, String> {
        if pid == 0 {
            return Ok(false);
        }
        // psutil's test: the kernel has /proc/<pid> (also for thread ids and
        // zombies); kill(pid, 0) where /proc is not mounted.
        if self.0.exists("/proc/self") {
            return Ok(self.0.exists(&format!("/proc/{pid}")));
        }
        let Ok(pid) = i32::try_from(pid) else {
            return Ok(false);
        };
        kill_says_exists(self.0.kill0(pid))
    }

    fn tcp4_port_bindable(&self, port: u16) -> Result<bool, String> {
        Ok(super::tcp4_port_bindable(port))
    }
}

/// The real system calls.
#[cfg(target_os = "linux")]
pub(super) struct Syscalls;

#[cfg(target_os = "linux")]
impl Os for Syscalls {
    const RLIM_INFINITY: u64 = libc::RLIM_INFINITY;

    fn online_cpus(&self) -> i64 {
        super::unix::online_cpus()
    }

    fn affinity(&self) -> Result<u32, i32> {
        // SAFETY: `set` is a plain bitmask owned by this frame; the kernel
        // writes at most `size_of::<cpu_set_t>()` bytes into it.
        let count = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Err(super::unix::errno());
            }
            libc::CPU_COUNT(&set)
        };
        u32::try_from(count).map_err(|_| libc::EINVAL)
    }

    fn meminfo(&self) -> std::io::Result<String> {
        std::fs::read_to_string("/proc/meminfo")
    }

    fn nofile(&self) -> Result<(u64, u64), i32> {
        super::unix::getrlimit_nofile()
    }

    fn exists(&self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }

    fn kill0(&self, pid: i32) -> Result<(), i32> {
        super::unix::kill0(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake raw answers.
    struct Fake {
        online: i64,
        affinity: Result<u32, i32>,
        meminfo: Option<&'static str>,
        nofile: Result<(u64, u64), i32>,
        /// Paths that exist.
        paths: Vec<&'static str>,
        /// Pids kill() reaches (others: ESRCH); 1 answers EPERM.
        pids: Vec<i32>,
    }

    impl Default for Fake {
        fn default() -> Self {
            Fake {
                online: 8,
                affinity: Ok(2),
                meminfo: Some("MemTotal:       24684092 kB\nMemFree: 1 kB\n"),
                nofile: Ok((1024, u64::MAX)),
                paths: vec!["/proc/self", "/proc/1", "/proc/42"],
                pids: vec![],
            }
        }
    }

    impl Os for Fake {
        const RLIM_INFINITY: u64 = u64::MAX;
        fn online_cpus(&self) -> i64 {
            self.online
        }
        fn affinity(&self) -> Result<u32, i32> {
            self.affinity
        }
        fn meminfo(&self) -> std::io::Result<String> {
            self.meminfo
                .map(str::to_string)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
        fn nofile(&self) -> Result<(u64, u64), i32> {
            self.nofile
        }
        fn exists(&self, path: &str) -> bool {
            self.paths.contains(&path)
        }
        fn kill0(&self, pid: i32) -> Result<(), i32> {
            match pid {
                1 => Err(1),
                p if self.pids.contains(&p) => Ok(()),
                _ => Err(3),
            }
        }
    }

    #[test]
    fn cpus_come_from_sysconf_and_the_affinity_mask() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.logical_cpu_count(), Ok(Some(8)));
        assert_eq!(facts.os_cpu_count(), Ok(Some(8)));
        assert_eq!(facts.affinity_cpu_count(), Ok(Some(2)));
        // A failing sched_getaffinity falls back to the online CPUs.
        let facts = Facts(Fake {
            affinity: Err(22),
            ..Fake::default()
        });
        assert_eq!(facts.affinity_cpu_count(), Ok(Some(8)));
        let facts = Facts(Fake {
            online: -1,
            ..Fake::default()
        });
        assert_eq!(facts.logical_cpu_count(), Ok(None));
        assert_eq!(facts.os_cpu_count(), Ok(None));
    }

    #[test]
    fn memory_is_memtotal_in_bytes() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.memory_total_bytes(), Ok(24684092 * 1024));
        let no_proc = Facts(Fake {
            meminfo: None,
            ..Fake::default()
        });
        assert!(no_proc.memory_total_bytes().is_err());
        let no_line = Facts(Fake {
            meminfo: Some("MemFree: 1 kB\n"),
            ..Fake::default()
        });
        assert_eq!(
            no_line.memory_total_bytes(),
            Err("MemTotal missing from /proc/meminfo".to_string())
        );
    }

    #[test]
    fn nofile_comes_from_getrlimit() {
        let facts = Facts(Fake::default());
        assert_eq!(
            facts.nofile_limit(),
            Ok((Limit::Finite(1024), Limit::Unlimited))
        );
        let failing = Facts(Fake {
            nofile: Err(1),
            ..Fake::default()
        });
        assert!(failing.nofile_limit().is_err());
    }

    #[test]
    fn pids_are_looked_up_in_proc_else_signalled() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.pid_exists(42), Ok(true));
        assert_eq!(facts.pid_exists(43), Ok(false));
        assert_eq!(facts.pid_exists(0), Ok(false));
        // Without procfs: kill(pid, 0), EPERM meaning "exists".
        let no_proc = Facts(Fake {
            paths: vec![],
            pids: vec![42],
            ..Fake::default()
        });
        assert_eq!(no_proc.pid_exists(42), Ok(true));
        assert_eq!(no_proc.pid_exists(1), Ok(true));
        assert_eq!(no_proc.pid_exists(43), Ok(false));
        assert_eq!(no_proc.pid_exists(u32::MAX), Ok(false));
    }
}
