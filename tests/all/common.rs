//! Shared pieces of the integration tests: reading the spec vectors, building
//! their fixture trees, a fake `HostFacts` fed from a vector, and the lock
//! for the process-wide low-descriptor warning.

use std::collections::HashSet;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use serde_json::Value;
use skyutils::{HostFacts, Limit};

/// All vectors of `tests/vectors/vectors.json`.
pub fn vectors() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/vectors.json");
    let text = std::fs::read_to_string(&path).expect("tests/vectors/vectors.json");
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

pub fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

/// The bytes of a fixture value (`base64` / `generate`).
pub fn file_bytes(spec: &Value) -> Vec<u8> {
    if let Some(b) = spec.get("base64") {
        return b64(b.as_str().unwrap());
    }
    let g = &spec["generate"];
    match g["kind"].as_str().unwrap() {
        "pattern" => {
            let mut out = Vec::new();
            for seg in g["segments"].as_array().unwrap() {
                let bytes = b64(seg["base64"].as_str().unwrap());
                for _ in 0..seg["repeat"].as_u64().unwrap() {
                    out.extend_from_slice(&bytes);
                }
            }
            out
        }
        "lcg" => lcg(
            g["seed"].as_u64().unwrap(),
            g["size"].as_u64().unwrap() as usize,
        ),
        other => panic!("unknown generator {other}"),
    }
}

/// VECTORS.md §6: Knuth's MMIX LCG, most significant byte of each state.
pub fn lcg(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed;
    (0..size)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// Creates a fixture tree (`files` of a vector, or `cgroup.files`) in `root`.
pub fn build_tree(root: &Path, files: &serde_json::Map<String, Value>) {
    let mut modes: Vec<(PathBuf, u32)> = Vec::new();
    for (rel, spec) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if let Some(s) = spec.as_str() {
            std::fs::write(&path, s.as_bytes()).unwrap();
        } else if spec.get("dir").is_some() {
            std::fs::create_dir_all(&path).unwrap();
        } else if let Some(n) = spec.get("dir_entries") {
            std::fs::create_dir_all(&path).unwrap();
            for i in 0..n.as_u64().unwrap() {
                std::fs::write(path.join(format!("f{i:05}")), b"").unwrap();
            }
        } else if let Some(target) = spec.get("symlink") {
            symlink(target.as_str().unwrap(), &path).unwrap();
        } else {
            std::fs::write(&path, file_bytes(spec)).unwrap();
        }
        if let Some(mode) = spec.get("mode") {
            modes.push((
                path,
                u32::from_str_radix(mode.as_str().unwrap(), 8).unwrap(),
            ));
        }
    }
    modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, mode) in modes {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Replaces `{tmp}` in every string (and object key) of `v`.
pub fn subst(v: &Value, tmp: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{tmp}", tmp)),
        Value::Array(a) => Value::Array(a.iter().map(|x| subst(x, tmp)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.replace("{tmp}", tmp), subst(x, tmp)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A `$pattern` string or a plain one.
pub fn string(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    let mut out = String::new();
    for part in v["$pattern"].as_array().expect("string or $pattern") {
        out.push_str(
            &part[0]
                .as_str()
                .unwrap()
                .repeat(part[1].as_u64().unwrap() as usize),
        );
    }
    out
}

/// A double from `{"$float": repr}` / `{"$f64_bits": hex}` or a JSON number.
pub fn float(v: &Value) -> f64 {
    if let Some(bits) = v.get("$f64_bits") {
        return f64::from_bits(u64::from_str_radix(bits.as_str().unwrap(), 16).unwrap());
    }
    if let Some(r) = v.get("$float") {
        return r.as_str().unwrap().parse().unwrap();
    }
    v.as_f64().unwrap()
}

/// An integer from a JSON number or `{"$int": decimal}` (must fit i64).
pub fn int(v: &Value) -> i64 {
    if let Some(s) = v.get("$int") {
        return s.as_str().unwrap().parse().unwrap();
    }
    v.as_i64().unwrap()
}

/// Host facts exactly as a vector lists them; an unlisted fact is an error,
/// so no vector can depend on this machine.
pub struct FakeFacts {
    host: Value,
}

impl FakeFacts {
    pub fn new(host: Option<&Value>) -> Self {
        FakeFacts {
            host: host.cloned().unwrap_or(Value::Null),
        }
    }

    fn fact(&self, key: &str) -> Result<&Value, String> {
        self.host
            .get(key)
            .ok_or_else(|| format!("host fact {key} not provided by the vector"))
    }

    fn count(&self, key: &str) -> Result<Option<u32>, String> {
        Ok(self.fact(key)?.as_u64().map(|n| n as u32))
    }

    fn in_list(&self, key: &str, value: u64) -> Result<bool, String> {
        Ok(self
            .fact(key)?
            .as_array()
            .unwrap()
            .iter()
            .any(|item| match item.as_array() {
                Some(range) => {
                    (range[0].as_u64().unwrap()..=range[1].as_u64().unwrap()).contains(&value)
                }
                None => item.as_u64() == Some(value),
            }))
    }
}

fn limit(v: &Value) -> Limit {
    match v.as_u64() {
        Some(n) => Limit::Finite(n),
        None => Limit::Unlimited,
    }
}

impl HostFacts for FakeFacts {
    fn logical_cpu_count(&self) -> Result<Option<u32>, String> {
        self.count("logical_cpus")
    }
    fn affinity_cpu_count(&self) -> Result<Option<u32>, String> {
        self.count("affinity_cpus")
    }
    fn os_cpu_count(&self) -> Result<Option<u32>, String> {
        self.count("os_cpu_count")
    }
    fn memory_total_bytes(&self) -> Result<u64, String> {
        Ok(self.fact("memory_total_bytes")?.as_u64().unwrap())
    }
    fn nofile_limit(&self) -> Result<(Limit, Limit), String> {
        Ok((
            limit(self.fact("nofile_soft")?),
            limit(self.fact("nofile_hard")?),
        ))
    }
    fn pid_exists(&self, pid: u32) -> Result<bool, String> {
        self.in_list("pids_alive", u64::from(pid))
    }
    fn tcp4_port_bindable(&self, port: u16) -> Result<bool, String> {
        Ok(!self.in_list("ports_in_use", u64::from(port))?)
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The `requires` tags of a vector.
pub fn requires(v: &Value) -> HashSet<String> {
    v.get("requires")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Held by every test that calls `get_max_workers_for_file_mounts` where
/// the low-descriptor warning can appear: the host warns once per process
/// (`skyutils::reset_low_fd_warning` re-arms it), and all the modules share
/// this process, so a test between its reset and its call must not lose
/// the warning to another test's call.
pub fn low_fd_warning_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}
