//! Windows: CPUs from `GetActiveProcessorCount` (as psutil and
//! `os.cpu_count()`), memory from `GlobalMemoryStatusEx`, processes from
//! `OpenProcess`. There is no affinity fact (`os.sched_getaffinity` is
//! absent, so upstream does not use one) and no `RLIMIT_NOFILE` (reported as
//! unlimited).

use super::{cpu_count, HostFacts, Limit};

/// Win32 error codes (`GetLastError()`) that `OpenProcess` answers with.
const ERROR_ACCESS_DENIED: u32 = 5;
const ERROR_INVALID_PARAMETER: u32 = 87;
#[cfg(windows)]
const _: () = assert!(
    ERROR_ACCESS_DENIED == windows_sys::Win32::Foundation::ERROR_ACCESS_DENIED
        && ERROR_INVALID_PARAMETER == windows_sys::Win32::Foundation::ERROR_INVALID_PARAMETER
);

/// Windows's raw answers (the real ones are [`Syscalls`]).
pub(super) trait Os: Send + Sync {
    /// `GetActiveProcessorCount(ALL_PROCESSOR_GROUPS)` (0 on failure).
    fn active_processor_count(&self) -> u32;
    /// `GlobalMemoryStatusEx`'s `ullTotalPhys`, or `GetLastError()`.
    fn total_phys(&self) -> Result<u64, u32>;
    /// `OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)` (the
    /// handle is closed again), or `GetLastError()`.
    fn open_process(&self, pid: u32) -> Result<(), u32>;
}

/// Windows's facts from its raw answers.
pub(super) struct Facts<S>(pub S);

/// The text of a Win32 error code.
fn win32_error(code: u32) -> String {
    // Win32 error codes are what `from_raw_os_error` takes on Windows.
    std::io::Error::from_raw_os_error(code as i32).to_string()
}

impl<S: Os> HostFacts for Facts<S> {
    fn logical_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(cpu_count(self.0.active_processor_count()))
    }

    fn affinity_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(None)
    }

    fn os_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(cpu_count(self.0.active_processor_count()))
    }

    fn memory_total_bytes(&self) -> Result<u64, String> {
        self.0.total_phys().map_err(win32_error)
    }

    fn nofile_limit(&self) -> Result<(Limit, Limit), String> {
        // Windows has no per-process descriptor limit of this kind.
        Ok((Limit::Unlimited, Limit::Unlimited))
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, String> {
        // pid 0 (System Idle Process) is never asked by the component; it
        // has no process-table entry in the sense of the other OSes.
        if pid == 0 {
            return Ok(false);
        }
        // psutil: an openable process exists (also one that has exited but
        // is still referenced, like a zombie), "access denied" means there is
        // a process to deny access to, "invalid parameter" means no process.
        match self.0.open_process(pid) {
            Ok(()) | Err(ERROR_ACCESS_DENIED) => Ok(true),
            Err(ERROR_INVALID_PARAMETER) => Ok(false),
            Err(code) => Err(format!("OpenProcess: {}", win32_error(code))),
        }
    }

    fn tcp4_port_bindable(&self, port: u16) -> Result<bool, String> {
        Ok(super::tcp4_port_bindable(port))
    }
}

/// The real system calls.
#[cfg(windows)]
pub(super) struct Syscalls;

#[cfg(windows)]
impl Os for Syscalls {
    fn active_processor_count(&self) -> u32 {
        use windows_sys::Win32::System::Threading::{
            GetActiveProcessorCount, ALL_PROCESSOR_GROUPS,
        };
        // SAFETY: no pointers; any group number is accepted.
        unsafe { GetActiveProcessorCount(ALL_PROCESSOR_GROUPS) }
    }

    fn total_phys(&self) -> Result<u64, u32> {
        use windows_sys::Win32::Foundation::GetLastError;
        use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
        let mut status = MEMORYSTATUSEX {
            dwLength: std::mem::size_of::<MEMORYSTATUSEX>() as u32,
            ..MEMORYSTATUSEX::default()
        };
        // SAFETY: `status` is a writable MEMORYSTATUSEX whose dwLength is set.
        if unsafe { GlobalMemoryStatusEx(&mut status) } == 0 {
            // SAFETY: no preconditions.
            return Err(unsafe { GetLastError() });
        }
        Ok(status.ullTotalPhys)
    }

    fn open_process(&self, pid: u32) -> Result<(), u32> {
        use windows_sys::Win32::Foundation::{CloseHandle, GetLastError};
        use windows_sys::Win32::System::Threading::{
            OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
        };
        // SAFETY: no pointers; a returned handle is closed below.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            // SAFETY: no preconditions.
            return Err(unsafe { GetLastError() });
        }
        // SAFETY: `handle` is a process handle this function owns.
        unsafe { CloseHandle(handle) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake raw answers.
    struct Fake {
        processors: u32,
        memory: Result<u64, u32>,
        /// pid -> OpenProcess's answer (others: ERROR_INVALID_PARAMETER).
        processes: Vec<(u32, Result<(), u32>)>,
    }

    impl Default for Fake {
        fn default() -> Self {
            Fake {
                processors: 12,
                memory: Ok(34_359_738_368),
                processes: vec![(4, Err(ERROR_ACCESS_DENIED)), (1234, Ok(()))],
            }
        }
    }

    impl Os for Fake {
        fn active_processor_count(&self) -> u32 {
            self.processors
        }
        fn total_phys(&self) -> Result<u64, u32> {
            self.memory
        }
        fn open_process(&self, pid: u32) -> Result<(), u32> {
            self.processes
                .iter()
                .find(|(p, _)| *p == pid)
                .map_or(Err(ERROR_INVALID_PARAMETER), |(_, r)| *r)
        }
    }

    #[test]
    fn cpus_are_the_active_processors_without_affinity() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.logical_cpu_count(), Ok(Some(12)));
        assert_eq!(facts.os_cpu_count(), Ok(Some(12)));
        assert_eq!(facts.affinity_cpu_count(), Ok(None));
        let failing = Facts(Fake {
            processors: 0,
            ..Fake::default()
        });
        assert_eq!(failing.logical_cpu_count(), Ok(None));
        assert_eq!(failing.os_cpu_count(), Ok(None));
    }

    #[test]
    fn memory_is_global_memory_status_total_phys() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.memory_total_bytes(), Ok(34_359_738_368));
        let failing = Facts(Fake {
            memory: Err(ERROR_INVALID_PARAMETER),
            ..Fake::default()
        });
        assert!(failing.memory_total_bytes().is_err());
    }

    #[test]
    fn nofile_is_unlimited() {
        let facts = Facts(Fake::default());
        assert_eq!(
            facts.nofile_limit(),
            Ok((Limit::Unlimited, Limit::Unlimited))
        );
    }

    #[test]
    fn pids_are_opened() {
        let facts = Facts(Fake::default());
        assert_eq!(facts.pid_exists(1234), Ok(true));
        assert_eq!(facts.pid_exists(4), Ok(true)); // access denied: it exists
        assert_eq!(facts.pid_exists(1235), Ok(false));
        assert_eq!(facts.pid_exists(0), Ok(false));
        let odd = Facts(Fake {
            processes: vec![(7, Err(8))], // ERROR_NOT_ENOUGH_MEMORY
            ..Fake::default()
        });
        assert!(odd.pid_exists(7).unwrap_err().starts_with("OpenProcess: "));
    }

    #[test]
    fn functions_through_the_component() {
        let utils = super::super::utils_on(Facts(Fake::default()));
        assert_eq!(utils.get_cpu_count().unwrap(), Some(12.0));
        assert_eq!(utils.get_mem_size_gb().unwrap(), 32.0);
        assert_eq!(utils.get_parallel_threads(None).unwrap(), 11);
        // No RLIMIT_NOFILE: no descriptor term and never the warning.
        let workers = utils
            .get_max_workers_for_file_mounts::<&str, &str>(&[], None)
            .unwrap();
        assert_eq!((workers.count, workers.warning), (11, None));
        assert!(utils.is_process_alive(1234).unwrap());
        assert!(utils.is_process_alive(4).unwrap());
        assert!(!utils.is_process_alive(99).unwrap());
    }
}
