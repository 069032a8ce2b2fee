//! The raw OS facts behind the `host-facts` import, and their native
//! implementation for Linux, macOS and Windows.
//!
//! Each OS module has two layers: a trait of that OS's *raw* answers (the
//! return values and error codes of its system calls, implemented for real
//! only when compiling for that OS) and a generic `Facts` that turns those
//! answers into [`HostFacts`]. The second layer is plain code, so every OS's
//! logic is unit-tested on any host with fake raw answers.
//!
//! What each fact is on each OS (psutil's semantics where SkyPilot runs
//! there):
//!
//! | fact | Linux | macOS | Windows |
//! |---|---|---|---|
//! | logical CPUs | `sysconf(_SC_NPROCESSORS_ONLN)` | `sysctl hw.logicalcpu` | `GetActiveProcessorCount(ALL_PROCESSOR_GROUPS)` |
//! | affinity CPUs | `sched_getaffinity` | none (no API) | none (`os.sched_getaffinity` is absent) |
//! | `os.cpu_count()` | `sysconf(_SC_NPROCESSORS_ONLN)` | `sysconf(_SC_NPROCESSORS_ONLN)` | `GetActiveProcessorCount(ALL_PROCESSOR_GROUPS)` |
//! | total memory | `MemTotal` of `/proc/meminfo` | `sysctl hw.memsize` | `GlobalMemoryStatusEx().ullTotalPhys` |
//! | `RLIMIT_NOFILE` | `getrlimit` | `getrlimit` | unlimited (no such limit) |
//! | pid exists | `/proc/<pid>`, else `kill(pid, 0)` | `kill(pid, 0)` | `OpenProcess` |

use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

pub use skyutils_common::Limit;

pub(crate) mod cgroup;
#[cfg(any(target_os = "linux", test))]
mod linux;
#[cfg(any(target_os = "macos", test))]
mod macos;
#[cfg(any(unix, test))]
mod unix;
#[cfg(any(windows, test))]
mod windows;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
compile_error!("skyutils-host's NativeFacts supports Linux, macOS and Windows");

#[cfg(target_os = "linux")]
const NATIVE: linux::Facts<linux::Syscalls> = linux::Facts(linux::Syscalls);
#[cfg(target_os = "macos")]
const NATIVE: macos::Facts<macos::Syscalls> = macos::Facts(macos::Syscalls);
#[cfg(windows)]
const NATIVE: windows::Facts<windows::Syscalls> = windows::Facts(windows::Syscalls);

/// A source of host facts. An `Err` says the fact is unavailable (the guest
/// sees a capability error); [`NativeFacts`] fails only where psutil raises.
pub trait HostFacts: Send + Sync {
    /// Logical CPUs (`psutil.cpu_count()`); `None` when undeterminable.
    fn logical_cpu_count(&self) -> Result<Option<u32>, String>;
    /// CPUs in the affinity mask; `None` when the platform has no affinity API.
    fn affinity_cpu_count(&self) -> Result<Option<u32>, String>;
    /// `os.cpu_count()`: online CPUs.
    fn os_cpu_count(&self) -> Result<Option<u32>, String>;
    /// Total physical memory in bytes.
    fn memory_total_bytes(&self) -> Result<u64, String>;
    /// `RLIMIT_NOFILE` as `(soft, hard)`.
    fn nofile_limit(&self) -> Result<(Limit, Limit), String>;
    /// Whether `pid` has a process-table entry (zombies and thread ids count).
    fn pid_exists(&self, pid: u32) -> Result<bool, String>;
    /// Whether a fresh IPv4 TCP socket can bind `0.0.0.0:port`.
    fn tcp4_port_bindable(&self, port: u16) -> Result<bool, String>;
}

/// The facts of the machine this process runs on (Linux, macOS or Windows;
/// see the module documentation for where each comes from).
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeFacts;

impl HostFacts for NativeFacts {
    fn logical_cpu_count(&self) -> Result<Option<u32>, String> {
        NATIVE.logical_cpu_count()
    }

    fn affinity_cpu_count(&self) -> Result<Option<u32>, String> {
        NATIVE.affinity_cpu_count()
    }

    fn os_cpu_count(&self) -> Result<Option<u32>, String> {
        NATIVE.os_cpu_count()
    }

    fn memory_total_bytes(&self) -> Result<u64, String> {
        NATIVE.memory_total_bytes()
    }

    fn nofile_limit(&self) -> Result<(Limit, Limit), String> {
        NATIVE.nofile_limit()
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, String> {
        NATIVE.pid_exists(pid)
    }

    fn tcp4_port_bindable(&self, port: u16) -> Result<bool, String> {
        NATIVE.tcp4_port_bindable(port)
    }
}

/// A CPU count as an OS reports it (`<= 0` or too large: unknown).
fn cpu_count(n: impl TryInto<u32>) -> Option<u32> {
    n.try_into().ok().filter(|&n| n > 0)
}

/// Whether a fresh IPv4 TCP socket (no `SO_REUSEADDR`) binds `0.0.0.0:port`
/// (the same on every OS).
fn tcp4_port_bindable(port: u16) -> bool {
    let Ok(socket) = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)) else {
        return false;
    };
    let address = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    socket.bind(&address.into()).is_ok()
}

/// `Utils` on `facts`, with no environment and no cgroup tree: what the
/// component answers from a host's facts alone (the per-OS tests).
#[cfg(test)]
fn utils_on(facts: impl HostFacts + 'static) -> crate::Utils {
    let policy = crate::Policy {
        env_override: Some(vec![]),
        cgroup_root: Some("/nonexistent-cgroup".into()),
        ..crate::Policy::default()
    };
    crate::Utils::new(policy)
        .unwrap()
        .with_facts(std::sync::Arc::new(facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counts_outside_one_to_u32_max_are_unknown() {
        assert_eq!(cpu_count(8i64), Some(8));
        assert_eq!(cpu_count(8u32), Some(8));
        assert_eq!(cpu_count(0i32), None);
        assert_eq!(cpu_count(-1i64), None);
        assert_eq!(cpu_count(i64::from(u32::MAX) + 1), None);
    }

    #[test]
    fn native_facts_answer_on_this_host() {
        let facts = NativeFacts;
        let logical = facts.logical_cpu_count().unwrap().unwrap();
        assert!(logical >= 1);
        if let Some(affinity) = facts.affinity_cpu_count().unwrap() {
            assert!((1..=logical).contains(&affinity));
        }
        assert!(facts.memory_total_bytes().unwrap() > 0);
        assert!(facts.pid_exists(std::process::id()).unwrap());
        assert!(!facts.pid_exists(0).unwrap());
    }

    #[test]
    fn a_missing_or_empty_cgroup_tree_means_no_limit() {
        let facts = NativeFacts;
        let logical = facts.logical_cpu_count().unwrap().unwrap();
        let cpus = facts
            .affinity_cpu_count()
            .unwrap()
            .map_or(logical, |a| a.min(logical));
        let gib = facts.memory_total_bytes().unwrap() as f64 / f64::from(1u32 << 30);
        let empty = tempfile::tempdir().unwrap();
        let roots = [
            Some(empty.path().join("missing")),
            Some(empty.path().to_path_buf()),
            None,
        ];
        for root in roots {
            let policy = crate::Policy {
                env_override: Some(vec![]),
                cgroup_root: root.clone(),
                ..crate::Policy::default()
            };
            let utils = crate::Utils::new(policy).unwrap();
            assert_eq!(
                utils.get_cpu_count().unwrap(),
                Some(f64::from(cpus)),
                "{root:?}"
            );
            assert_eq!(utils.get_mem_size_gb().unwrap(), gib, "{root:?}");
        }
    }
}
