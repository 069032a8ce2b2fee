//! The raw OS facts behind the `host-facts` import, and their native Linux
//! implementation.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use socket2::{Domain, Protocol, Socket, Type};

pub use skyutils_guest::system::Limit;

/// A source of host facts. An `Err` says the fact is unavailable (the guest
/// sees a capability error); [`NativeFacts`] never fails.
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

/// The facts of the machine this process runs on (Linux).
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeFacts;

fn online_cpus() -> Option<u32> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).ok().filter(|&n| n > 0)
}

impl HostFacts for NativeFacts {
    fn logical_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(online_cpus())
    }

    fn affinity_cpu_count(&self) -> Result<Option<u32>, String> {
        // SAFETY: `set` is a plain bitmask owned by this frame; the kernel
        // writes at most `size_of::<cpu_set_t>()` bytes into it.
        let count = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Ok(online_cpus());
            }
            libc::CPU_COUNT(&set)
        };
        Ok(u32::try_from(count).ok())
    }

    fn os_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(online_cpus())
    }

    fn memory_total_bytes(&self) -> Result<u64, String> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|e| e.to_string())?;
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
        Ok(kib * 1024)
    }

    fn nofile_limit(&self) -> Result<(Limit, Limit), String> {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `rl` is a valid, writable rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        let limit = |v: libc::rlim_t| {
            if v == libc::RLIM_INFINITY {
                Limit::Unlimited
            } else {
                Limit::Finite(v)
            }
        };
        Ok((limit(rl.rlim_cur), limit(rl.rlim_max)))
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, String> {
        if pid == 0 {
            return Ok(false);
        }
        // psutil's test: the kernel has /proc/<pid> (also for thread ids and
        // zombies); fall back to kill(pid, 0) where /proc is not mounted.
        if Path::new("/proc/self").exists() {
            return Ok(Path::new(&format!("/proc/{pid}")).exists());
        }
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return Ok(false);
        };
        // SAFETY: signal 0 only checks for existence and permission.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        Ok(alive)
    }

    fn tcp4_port_bindable(&self, port: u16) -> Result<bool, String> {
        let Ok(socket) = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)) else {
            return Ok(false);
        };
        let address = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        Ok(socket.bind(&address.into()).is_ok())
    }
}
