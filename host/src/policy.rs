//! The sandbox policy: what a call may touch (directories, environment, host
//! capabilities) and its per-call limits. How an instance is configured from
//! it lives in `wasi_config`, how the limits are enforced in `limits`.

use std::path::PathBuf;
use std::time::Duration;

/// A host capability behind the `host-facts` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// CPU counts and affinity.
    Cpu,
    /// Total memory.
    Memory,
    /// `RLIMIT_NOFILE`.
    FileLimits,
    /// Whether a pid exists.
    Processes,
    /// Probing whether a TCP port can be bound.
    Network,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 5] = [
        Capability::Cpu,
        Capability::Memory,
        Capability::FileLimits,
        Capability::Processes,
        Capability::Network,
    ];

    /// The name used on the command line and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Cpu => "cpu",
            Capability::Memory => "memory",
            Capability::FileLimits => "file-limits",
            Capability::Processes => "processes",
            Capability::Network => "network",
        }
    }

    /// Parses [`Capability::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// How the guest's filesystem view is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAccess {
    /// Drop-in behaviour: each call gets read-only access to exactly the
    /// directory its path needs, after resolving symlinks (like upstream).
    PerCall,
    /// Only these directories (read-only); any path resolving outside them
    /// is refused with a capability error.
    AllowDirs(Vec<PathBuf>),
}

pub use crate::limits::WASM32_MAX_MEMORY;

/// The sandbox policy of a [`crate::Utils`].
///
/// [`Policy::default`] is the drop-in: like upstream, no deadline, no output
/// cap and memory up to the wasm32 maximum, so it completes every call
/// upstream completes that fits in a wasm32 guest. [`Policy::plugin`] adds
/// the bounds meant for components you did not build (and is what the CLI
/// uses with `--component`).
#[derive(Debug, Clone)]
pub struct Policy {
    /// How the guest's filesystem view is decided. Default:
    /// [`FileAccess::PerCall`].
    pub files: FileAccess,
    /// Environment variables the guest may see: exact names, or prefixes
    /// ending in `*`. Default: `SKYPILOT_POD_*`.
    pub env_allow: Vec<String>,
    /// When set, the guest's environment is exactly these variables (still
    /// filtered by `env_allow`) instead of this process's.
    pub env_override: Option<Vec<(String, String)>>,
    /// Granted host capabilities. Default: all.
    pub capabilities: Vec<Capability>,
    /// The cgroup tree whose limit files (`host-facts` `read-cgroup-limit`)
    /// the calls that read cgroups see (`get_cpu_count`, `get_mem_size_gb`);
    /// `None` hides cgroups (every file absent: "no limit").
    pub cgroup_root: Option<PathBuf>,
    /// Wall-clock limit per call (epoch interruption); `None`: no deadline.
    pub deadline: Option<Duration>,
    /// Linear-memory cap per instance, in bytes; at most (and by default)
    /// [`WASM32_MAX_MEMORY`].
    pub memory_limit: usize,
    /// Fuel budget per call (roughly wasm instructions); `None`: unmetered.
    pub fuel: Option<u64>,
    /// Largest result (strings and byte lists, summed) a call may return;
    /// `None`: no cap.
    pub max_output: Option<usize>,
    /// Whether idle instances are kept for later calls with the same WASI
    /// configuration
    /// (same preopens and environment). `false` runs every call in a fresh
    /// instance, so nothing a call leaves in guest memory outlives it, at
    /// tens of µs per call.
    pub reuse_instances: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            files: FileAccess::PerCall,
            env_allow: vec!["SKYPILOT_POD_*".to_string()],
            env_override: None,
            capabilities: Capability::ALL.to_vec(),
            cgroup_root: Some(PathBuf::from("/sys/fs/cgroup")),
            deadline: None,
            memory_limit: WASM32_MAX_MEMORY,
            fuel: None,
            max_output: None,
            reuse_instances: true,
        }
    }
}

impl Policy {
    /// The default policy with the bounds meant for untrusted components:
    /// a 30 s deadline, 512 MiB of linear memory and 64 MiB of output per
    /// call (no fuel budget).
    pub fn plugin() -> Self {
        Policy {
            deadline: Some(Duration::from_secs(30)),
            memory_limit: 512 << 20,
            max_output: Some(64 << 20),
            ..Policy::default()
        }
    }
}
