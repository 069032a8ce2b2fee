//! macOS: logical CPUs and memory from `sysctl` (as psutil), online CPUs from
//! `sysconf` (as `os.cpu_count()`), no affinity API, `getrlimit` and
//! `kill(pid, 0)`.

use std::ffi::CStr;

use super::unix::{kill_says_exists, nofile, os_error};
use super::{cpu_count, HostFacts, Limit};

/// macOS's raw answers (the real ones are [`Syscalls`]).
pub(super) trait Os: Send + Sync {
    /// `RLIM_INFINITY`.
    const RLIM_INFINITY: u64;
    /// `sysctlbyname(name, buf, &len, NULL, 0)`: the value's length, or the
    /// errno.
    fn sysctl(&self, name: &CStr, buf: &mut [u8]) -> Result<usize, i32>;
    /// `sysconf(_SC_NPROCESSORS_ONLN)`.
    fn online_cpus(&self) -> i64;
    /// `getrlimit(RLIMIT_NOFILE)` as `(soft, hard)`, or the errno.
    fn nofile(&self) -> Result<(u64, u64), i32>;
    /// `kill(pid, 0)`: `Ok` when the signal could be sent, else the errno.
    fn kill0(&self, pid: i32) -> Result<(), i32>;
}

/// macOS's facts from its raw answers.
pub(super) struct Facts<S>(pub S);

/// An integer sysctl of exactly `N` bytes (native byte order).
fn sysctl_bytes<const N: usize>(os: &impl Os, name: &CStr) -> Result<[u8; N], String> {
    let mut buf = [0u8; N];
    let len = os.sysctl(name, &mut buf).map_err(os_error)?;
    if len != N {
        return Err(format!(
            "sysctl {} returned {len} bytes, expected {N}",
            name.to_string_lossy()
        ));
    }
    Ok(buf)
}

impl<S: Os> HostFacts for Facts<S> {
    fn logical_cpu_count(&self) -> Result<Option<u32>, String> {
        // psutil: `hw.logicalcpu` (a C int), None when sysctl fails.
        Ok(sysctl_bytes::<4>(&self.0, c"hw.logicalcpu")
            .ok()
            .and_then(|b| cpu_count(i32::from_ne_bytes(b))))
    }

    fn affinity_cpu_count(&self) -> Result<Option<u32>, String> {
        // macOS has no affinity API (`os.sched_getaffinity` is absent).
        Ok(None)
    }

    fn os_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(cpu_count(self.0.online_cpus()))
    }

    fn memory_total_bytes(&self) -> Result<u64, String> {
        // psutil: `hw.memsize` (a uint64_t); it raises when sysctl fails.
        sysctl_bytes::<8>(&self.0, c"hw.memsize").map(u64::from_ne_bytes)
    }

    fn nofile_limit(&self) -> Result<(Limit, Limit), String> {
        nofile(self.0.nofile(), S::RLIM_INFINITY)
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, String> {
        // kill(0, 0) would signal the process group: pid 0 is never asked
        // (psutil answers True for it; the component never asks).
        if pid == 0 {
            return Ok(false);
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
#[cfg(target_os = "macos")]
pub(super) struct Syscalls;

#[cfg(target_os = "macos")]
impl Os for Syscalls {
    const RLIM_INFINITY: u64 = libc::RLIM_INFINITY;

    fn sysctl(&self, name: &CStr, buf: &mut [u8]) -> Result<usize, i32> {
        let mut len = buf.len();
        // SAFETY: `name` is NUL-terminated; `buf` is writable for `len`
        // bytes and sysctlbyname writes at most `len` bytes, storing the
        // value's length back into `len`.
        let rc = unsafe {
            libc::sysctlbyname(
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc == 0 {
            Ok(len)
        } else {
            Err(super::unix::errno())
        }
    }

    fn online_cpus(&self) -> i64 {
        super::unix::online_cpus()
    }

    fn nofile(&self) -> Result<(u64, u64), i32> {
        super::unix::getrlimit_nofile()
    }

    fn kill0(&self, pid: i32) -> Result<(), i32> {
        super::unix::kill0(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake raw answers: sysctl values by name (raw bytes), or an errno.
    struct Fake {
        sysctls: Vec<(&'static CStr, Vec<u8>)>,
        online: i64,
        nofile: Result<(u64, u64), i32>,
        alive: Vec<i32>,
    }

    impl Default for Fake {
        fn default() -> Self {
            Fake {
                sysctls: vec![
                    (c"hw.logicalcpu", 10i32.to_ne_bytes().to_vec()),
                    (c"hw.memsize", 17_179_869_184u64.to_ne_bytes().to_vec()),
                ],
                online: 10,
                nofile: Ok((256, i64::MAX as u64)),
                alive: vec![1, 501],
            }
        }
    }

    impl Os for Fake {
        const RLIM_INFINITY: u64 = i64::MAX as u64;
        fn sysctl(&self, name: &CStr, buf: &mut [u8]) -> Result<usize, i32> {
            let (_, value) = self.sysctls.iter().find(|(n, _)| *n == name).ok_or(2)?;
            if value.len() > buf.len() {
                return Err(12); // ENOMEM, as sysctl does for a short buffer
            }
            buf[..value.len()].copy_from_slice(value);
            Ok(value.len())
        }
        fn online_cpus(&self) -> i64 {
            self.online
        }
        fn nofile(&self) -> Result<(u64, u64), i32> {
            self.nofile
        }
        fn kill0(&self, pid: i32) -> Result<(), i32> {
            match pid {
                1 => Err(1), // launchd: EPERM for a normal user
                p if self.alive.contains(&p) => Ok(()),
                _ => Err(3),
            }
        }
    }

    #[test]
    fn cpus_come_from_sysctl_and_sysconf_without_affinity() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.logical_cpu_count(), Ok(Some(10)));
        assert_eq!(facts.os_cpu_count(), Ok(Some(10)));
        assert_eq!(facts.affinity_cpu_count(), Ok(None));
        // A failing sysctl is "unknown", as psutil.cpu_count() says None.
        let facts = Facts(Fake {
            sysctls: vec![],
            online: 0,
            ..Fake::default()
        });
        assert_eq!(facts.logical_cpu_count(), Ok(None));
        assert_eq!(facts.os_cpu_count(), Ok(None));
    }

    #[test]
    fn memory_is_hw_memsize() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.memory_total_bytes(), Ok(17_179_869_184));
        let missing = Facts(Fake {
            sysctls: vec![],
            ..Fake::default()
        });
        assert!(missing.memory_total_bytes().is_err());
        let short = Facts(Fake {
            sysctls: vec![(c"hw.memsize", 7u32.to_ne_bytes().to_vec())],
            ..Fake::default()
        });
        assert_eq!(
            short.memory_total_bytes(),
            Err("sysctl hw.memsize returned 4 bytes, expected 8".to_string())
        );
    }

    #[test]
    fn nofile_uses_the_macos_infinity() {
        let facts = Facts(Fake::default());
        assert_eq!(
            facts.nofile_limit(),
            Ok((Limit::Finite(256), Limit::Unlimited))
        );
    }

    #[test]
    fn pids_are_signalled_with_zero() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.pid_exists(501), Ok(true));
        assert_eq!(facts.pid_exists(1), Ok(true));
        assert_eq!(facts.pid_exists(502), Ok(false));
        assert_eq!(facts.pid_exists(0), Ok(false));
        assert_eq!(facts.pid_exists(u32::MAX), Ok(false));
    }

    #[test]
    fn functions_through_the_component() {
        let utils = super::super::utils_on(Facts(Fake::default()));
        assert_eq!(utils.get_cpu_count().unwrap(), Some(10.0));
        assert_eq!(utils.get_mem_size_gb().unwrap(), 16.0);
        assert_eq!(utils.get_parallel_threads(None).unwrap(), 9);
        // The soft limit of 256: (256 - 100) // 5 workers, capped by the threads.
        let workers = utils
            .get_max_workers_for_file_mounts::<&str, &str>(&[], None)
            .unwrap();
        assert_eq!(workers.count, 9);
        assert!(utils.is_process_alive(501).unwrap());
        assert!(utils.is_process_alive(1).unwrap());
        assert!(!utils.is_process_alive(502).unwrap());
    }
}
