//! The `system` interface: CPU, memory, thread and worker policies, process
//! and port checks. Host facts (cgroup files included) come through
//! [`Facts`]; environment variables through [`Context`].

use crate::error::{Error, OsError, Result};
use crate::files::{estimate_fd_for_directory, is_dir};
use crate::pynum::{parse_float, parse_int, py_split, py_strip, truncate_float};

pub use skyutils_common::Limit;

/// A controller whose limit the cgroup tree can set (the `host-facts`
/// `cgroup-controller`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupController {
    /// v2 `cpu.max`; v1 `cpu/cpu.cfs_quota_us`, `cpu/cpu.cfs_period_us`.
    Cpu,
    /// v2 `memory.max`; v1 `memory/memory.limit_in_bytes`.
    Memory,
}

/// A controller's limit files at the root of the cgroup tree (the
/// `host-facts` `cgroup-limit`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupLimit {
    /// Whether the tree is cgroup v2 (`cgroup.controllers` is a regular file).
    pub v2: bool,
    /// The controller's files of that version, in [`CgroupController`]'s
    /// order: each one's content, or `None` when it is not a regular file,
    /// cannot be read or is not UTF-8.
    pub files: Vec<Option<String>>,
}

impl CgroupLimit {
    /// The content of file `i`, if it was read.
    fn file(&self, i: usize) -> Option<&str> {
        self.files.get(i).and_then(Option::as_deref)
    }
}

/// Raw OS facts the host supplies (the `host-facts` import). An `Err` is a
/// capability the host's policy refused.
pub trait Facts {
    /// psutil's `cpu_count(logical=True)`; `None` when unknown.
    fn logical_cpu_count(&self) -> Result<Option<u32>>;
    /// `len(os.sched_getaffinity(0))`; `None` where there is no such API.
    fn affinity_cpu_count(&self) -> Result<Option<u32>>;
    /// `os.cpu_count()`; `None` when unknown.
    fn os_cpu_count(&self) -> Result<Option<u32>>;
    /// Total physical memory in bytes (psutil's `virtual_memory().total`).
    fn memory_total_bytes(&self) -> Result<u64>;
    /// `(soft, hard)` `RLIMIT_NOFILE`.
    fn nofile_limit(&self) -> Result<(Limit, Limit)>;
    /// psutil's `pid_exists(pid)`.
    fn pid_exists(&self, pid: u32) -> Result<bool>;
    /// Whether a TCP socket can be bound to `port` on IPv4.
    fn tcp4_port_bindable(&self, port: u16) -> Result<bool>;
    /// A controller's cgroup limit files.
    fn read_cgroup_limit(&self, controller: CgroupController) -> Result<CgroupLimit>;
}

/// Where the functions read host facts and the environment.
pub struct Context<'a> {
    /// The host's raw facts.
    pub facts: &'a dyn Facts,
    /// Looks up an environment variable (`None` when unset).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

use skyutils_common::{CPU_LIMIT_VAR, MEMORY_BYTES_VAR, MEMORY_GB_VAR};
const NONE_COMPARE: &str = "'<' not supported between instances of 'int' and 'NoneType'";
const GIB: f64 = 1_073_741_824.0;

impl Context<'_> {
    /// The cgroup CPU limit (quota / period), if any.
    fn cgroup_cpu_limit(&self) -> Result<Option<f64>> {
        let limit = self.facts.read_cgroup_limit(CgroupController::Cpu)?;
        if limit.v2 {
            let Some(text) = limit.file(0) else {
                return Ok(None);
            };
            let tokens = py_split(text);
            let [quota, period] = tokens.as_slice() else {
                return Ok(None);
            };
            if *quota == "max" {
                return Ok(None);
            }
            let (Some(quota), Some(period)) = (parse_float(quota), parse_float(period)) else {
                return Ok(None);
            };
            // A zero period means "no limit" (deliberate divergence b).
            Ok((quota > 0.0 && period != 0.0).then(|| quota / period))
        } else {
            let read = |i| limit.file(i).and_then(|t| parse_float(py_strip(t)));
            let (Some(quota), Some(period)) = (read(0), read(1)) else {
                return Ok(None);
            };
            Ok((quota > 0.0 && period > 0.0).then(|| quota / period))
        }
    }

    /// The cgroup memory limit in bytes (saturated), if any.
    fn cgroup_memory_limit(&self) -> Result<Option<u128>> {
        let limit = self.facts.read_cgroup_limit(CgroupController::Memory)?;
        let Some(text) = limit.file(0) else {
            return Ok(None);
        };
        let text = py_strip(text);
        if text.is_empty() || text == "max" {
            return Ok(None);
        }
        Ok(parse_int(text)
            .filter(|v| v.is_positive())
            .map(|v| v.magnitude))
    }

    /// `get_cpu_count()`: an integral value (possibly beyond 64 bits), or
    /// `None` when the host cannot tell.
    pub fn get_cpu_count(&self) -> Result<Option<f64>> {
        if let Some(raw) = (self.env)(CPU_LIMIT_VAR) {
            let value = parse_float(&raw).filter(|v| !v.is_nan()).ok_or_else(|| {
                Error::Value(format!("Failed to parse the number of CPUs from {raw}"))
            })?;
            return truncate_float(value).map(Some);
        }
        let mut cpu = self.facts.logical_cpu_count()?.map(f64::from);
        if let Some(affinity) = self.facts.affinity_cpu_count()? {
            let logical = cpu.ok_or_else(|| Error::Type(NONE_COMPARE.into()))?;
            cpu = Some(logical.min(f64::from(affinity)));
        }
        if let Some(limit) = self.cgroup_cpu_limit()? {
            let limit = truncate_float(limit)?;
            let current = cpu.ok_or_else(|| Error::Type(NONE_COMPARE.into()))?;
            cpu = Some(current.min(limit));
        }
        Ok(cpu)
    }

    /// `get_mem_size_gb()` in GiB.
    pub fn get_mem_size_gb(&self) -> Result<f64> {
        if let Some(raw) = (self.env)(MEMORY_GB_VAR) {
            return parse_float(&raw).ok_or_else(|| {
                Error::Value(format!("Failed to parse the memory size from {raw} (GB)"))
            });
        }
        if let Some(raw) = (self.env)(MEMORY_BYTES_VAR) {
            return parse_float(&raw).map(|bytes| bytes / GIB).ok_or_else(|| {
                Error::Value(format!(
                    "Failed to parse the memory size from {raw} (bytes)"
                ))
            });
        }
        let total = self.facts.memory_total_bytes()?;
        let bytes = match self.cgroup_memory_limit()? {
            Some(limit) if limit < u128::from(total) => limit as u64,
            _ => total,
        };
        Ok(bytes as f64 / GIB)
    }

    /// `get_parallel_threads(cloud_str)`: `max(4, cpus - 1)`, times 4 on Kubernetes.
    pub fn get_parallel_threads(&self, cloud_str: Option<&str>) -> Result<i64> {
        let cpus = i64::from(self.facts.os_cpu_count()?.unwrap_or(1));
        let kubernetes = cloud_str.is_some_and(|c| c.to_lowercase() == "kubernetes");
        Ok((cpus - 1).max(4) * if kubernetes { 4 } else { 1 })
    }

    /// `get_max_workers_for_file_mounts`: the worker count, and the
    /// low-descriptor warning text when the soft limit is below 1024.
    pub fn get_max_workers_for_file_mounts(
        &self,
        mounts: &[(String, String)],
        cloud_str: Option<&str>,
    ) -> Result<(i64, Option<String>)> {
        let (soft, _hard) = self.facts.nofile_limit()?;
        let warning = match soft {
            Limit::Finite(limit) if limit < 1024 => Some(format!(
                "Open file descriptor limit ({limit}) is low. File sync to remote clusters may be \
                 slow. Consider increasing the limit using `ulimit -n <number>` or modifying system \
                 limits."
            )),
            _ => None,
        };
        let mut fd_per_rsync = 5u64;
        for (_destination, source) in mounts {
            if is_dir(source) {
                fd_per_rsync = fd_per_rsync.max(estimate_fd_for_directory(source)?);
            }
        }
        let threads = self.get_parallel_threads(cloud_str)?;
        let workers = match soft {
            Limit::Finite(limit) => {
                let per = (i128::from(limit) - 100).div_euclid(i128::from(fd_per_rsync));
                per.max(1).min(i128::from(threads)) as i64
            }
            // Deliberate divergence c: an unlimited soft limit does not constrain.
            Limit::Unlimited => threads,
        };
        Ok((workers, warning))
    }

    /// `is_process_alive(pid)` (skypilot 0.10.5).
    pub fn is_process_alive(&self, pid: i64) -> Result<bool> {
        if pid < 0 {
            return Err(Error::Value(format!(
                "pid must be a positive integer (got {pid})"
            )));
        }
        match u32::try_from(pid) {
            Ok(pid) if pid > 0 && pid <= i32::MAX as u32 => self.facts.pid_exists(pid),
            _ => Ok(false),
        }
    }

    /// `find_free_port(start_port)`: the first bindable port in
    /// `start_port..=65534`.
    pub fn find_free_port(&self, start_port: i64) -> Result<u32> {
        if start_port < 0 {
            return Err(Error::Overflow("bind(): port must be 0-65535.".into()));
        }
        for port in start_port.min(65535) as u16..65535 {
            if self.facts.tcp4_port_bindable(port)? {
                return Ok(u32::from(port));
            }
        }
        Err(Error::Os(OsError::plain("No free ports available.")))
    }
}
