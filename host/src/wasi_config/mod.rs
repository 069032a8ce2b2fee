//! What one instance may see of the host: its WASI configuration (read-only
//! preopens and environment, [`WasiConfig`]), decided per call from the
//! policy and the paths the call names ([`grants`]).
//!
//! An instance's configuration is fixed when it is created, and the guest's
//! libc caches its preopens and environment at start-up, so an idle instance
//! is reused only by a call whose [`WasiConfig`] equals the one it was built
//! with.

pub(crate) mod grants;

use std::path::{Path, PathBuf};

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::policy::{FileAccess, Policy};
use crate::Error;
use grants::{guest_label, PathGrant};

/// Whether a call's instance may read the cgroup files (`read-cgroup-limit`):
/// only `get_cpu_count` and `get_mem_size_gb` read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cgroups {
    /// No cgroup files.
    Hidden,
    /// The files under the policy's `cgroup_root`.
    Visible,
}

/// The WASI configuration of an instance: what it sees of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WasiConfig {
    /// The guest's environment.
    pub env: Vec<(String, String)>,
    /// Read-only pre-opened directories.
    pub preopens: Vec<Preopen>,
    /// Where `read-cgroup-limit` reads (not a preopen: a host fact).
    pub cgroup_root: Option<PathBuf>,
}

/// A host directory pre-opened read-only at a guest path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Preopen {
    host: PathBuf,
    guest: String,
    /// [`dir_id`]: a directory replaced at the same path is another configuration.
    id: (u64, u64),
}

/// The identity of the directory at `path`: (device, inode) on Unix,
/// (volume serial number, file index) on Windows; `None` if `path` is not a
/// directory this process can stat.
#[cfg(unix)]
fn dir_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
    Some((meta.dev(), meta.ino()))
}

/// The identity of the directory at `path`: (device, inode) on Unix,
/// (volume serial number, file index) on Windows; `None` if `path` is not a
/// directory this process can open.
#[cfg(windows)]
fn dir_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS;
    std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
    // A directory handle needs backup semantics.
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
        .ok()?;
    let info = winapi_util::file::information(&dir).ok()?;
    Some((info.volume_serial_number(), info.file_index()))
}

impl Preopen {
    /// `host` seen at `guest`, or `None` if `host` is not a directory this
    /// process can stat (the guest then does not see it at all).
    pub fn new(host: &Path, guest: &str) -> Option<Preopen> {
        Some(Preopen {
            host: host.to_path_buf(),
            guest: guest.to_string(),
            id: dir_id(host)?,
        })
    }
}

impl WasiConfig {
    /// The configuration a call with these grants gets under `policy`: the
    /// cgroup files if asked for, the allowed directories (strict mode) or
    /// the directories the grants need (per call), and the allowed
    /// environment as it is now (only the variables in `env_reads`, when
    /// the component is known to read no others).
    pub fn for_call(
        policy: &Policy,
        grants: &[PathGrant],
        cgroups: Cgroups,
        env_reads: Option<&[&str]>,
    ) -> Result<WasiConfig, Error> {
        let mut preopens = Vec::new();
        // No cgroup tree (e.g. not Linux) simply means "no cgroup limit".
        let cgroup_root = match cgroups {
            Cgroups::Visible => policy.cgroup_root.clone(),
            Cgroups::Hidden => None,
        };
        match &policy.files {
            FileAccess::AllowDirs(dirs) => {
                for dir in dirs {
                    let dir = dir.canonicalize().map_err(|e| {
                        Error::Policy(format!("allowed directory {}: {e}", dir.display()))
                    })?;
                    preopens.extend(Preopen::new(&dir, &guest_label(&dir)));
                }
            }
            FileAccess::PerCall => {
                for (dir, label) in grants.iter().filter_map(|g| g.preopen.as_ref()) {
                    preopens.extend(Preopen::new(dir, label));
                }
            }
        }
        Ok(WasiConfig {
            env: match env_reads {
                Some(names) => policy.guest_env_of(names),
                None => policy.guest_env(),
            },
            preopens,
            cgroup_root,
        })
    }

    /// The WASI context of this configuration, writing the guest's stderr
    /// to `stderr`.
    pub fn ctx(&self, stderr: MemoryOutputPipe) -> WasiCtx {
        let mut wasi = WasiCtx::builder();
        // Set before the preopens: their file operations then run inline.
        wasi.allow_blocking_current_thread(true);
        wasi.stderr(stderr);
        wasi.envs(&self.env);
        for p in &self.preopens {
            // A directory that vanished since the configuration was taken is absent.
            let _ = wasi.preopened_dir(&p.host, &p.guest, FsPerms::ReadOnly);
        }
        wasi.build()
    }
}

impl Policy {
    /// Whether the environment variable `name` may reach the guest.
    pub fn env_allowed(&self, name: &str) -> bool {
        self.env_allow
            .iter()
            .any(|rule| match rule.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == rule,
            })
    }

    /// The environment the guest sees (allowed names only; values that are
    /// not UTF-8 with U+FFFD for their undecodable bytes).
    pub fn guest_env(&self) -> Vec<(String, String)> {
        match &self.env_override {
            Some(vars) => vars
                .iter()
                .filter(|(k, _)| self.env_allowed(k))
                .cloned()
                .collect(),
            // A value that is not UTF-8 still reaches the guest (lossily),
            // so it fails to parse as upstream's does rather than vanish.
            None => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
                .filter(|(k, _)| self.env_allowed(k))
                .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
                .collect(),
        }
    }

    /// [`guest_env`](Self::guest_env) restricted to `names`: the same
    /// answers for a component that reads no other variable, from one
    /// lookup per name instead of a copy of the whole environment (which a
    /// Kubernetes pod's service variables make long).
    pub fn guest_env_of(&self, names: &[&str]) -> Vec<(String, String)> {
        let wanted = |k: &str| names.contains(&k) && self.env_allowed(k);
        match &self.env_override {
            Some(vars) => vars.iter().filter(|(k, _)| wanted(k)).cloned().collect(),
            None => names
                .iter()
                .filter(|k| self.env_allowed(k))
                .filter_map(|k| {
                    let v = std::env::var_os(k)?;
                    Some((k.to_string(), v.to_string_lossy().into_owned()))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_of_known_names_is_the_allowed_one_restricted_to_them() {
        let vars = [
            ("SKYPILOT_POD_CPU_CORE_LIMIT", "2"),
            ("SKYPILOT_POD_OTHER", "x"),
            ("HOME", "/h"),
        ];
        let policy = Policy {
            env_override: Some(vars.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()),
            ..Policy::default()
        };
        let names = skyutils_common::POD_ENV_VARS;
        let restricted: Vec<_> = policy
            .guest_env()
            .into_iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .collect();
        assert_eq!(policy.guest_env_of(&names), restricted);
        assert_eq!(
            restricted,
            [("SKYPILOT_POD_CPU_CORE_LIMIT".to_string(), "2".to_string())]
        );
    }
}
