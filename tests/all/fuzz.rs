//! Property tests: for random inputs every exported function returns the
//! same result (or error) through the component as the same logic natively,
//! and never traps. `PROPTEST_CASES` sets the budget (`make fuzz` raises it).

use std::sync::Arc;

use proptest::prelude::*;
use skyutils::{DecodeErrors, Error, Number, Policy, Utils};
use skyutils_guest::system::{CgroupController, CgroupLimit, Context, Facts, Limit};
use skyutils_guest::{files, text};

use crate::common;

fn utils() -> &'static Utils {
    static UTILS: std::sync::OnceLock<Utils> = std::sync::OnceLock::new();
    UTILS.get_or_init(|| {
        Utils::new(Policy {
            env_override: Some(vec![]),
            cgroup_root: None,
            ..Policy::default()
        })
        .unwrap()
    })
}

/// The component's result in the native crate's terms.
fn call<T>(r: Result<T, Error>) -> Result<T, skyutils_guest::Error> {
    r.map_err(|e| match e {
        Error::Call(c) => c,
        other => panic!("the component failed outside the function's semantics: {other}"),
    })
}

/// Text mixing the characters the parsers care about.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec!['0', '1', '9', 'a', 'f', 'F', 'x', 'X', '_', '-', '+', ' ', '.', 'e', 'g']),
            1 => prop::sample::select(vec!['\t', '\n', '\u{a0}', '\u{3000}', '\u{1c}', '١', '１', 'ｆ', 'é', '👍', '\'', '"', '\\', '\0']),
            1 => any::<char>(),
        ],
        0..40,
    )
    .prop_map(|c| c.into_iter().collect())
}

/// Cases per property: `PROPTEST_CASES`, else 256.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// An environment value: anything but NUL, which no OS environment can hold.
fn env_text() -> impl Strategy<Value = String> {
    tricky_text().prop_map(|s| s.replace('\0', ""))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn base36_encode_agrees(s in tricky_text()) {
        prop_assert_eq!(call(utils().base36_encode(&s)), text::base36_encode(&s));
    }

    #[test]
    fn base36_encode_agrees_on_hex(s in "[0-9a-fA-F]{1,80}") {
        prop_assert_eq!(call(utils().base36_encode(&s)), text::base36_encode(&s));
    }

    #[test]
    fn format_float_agrees(bits in any::<u64>(), int in any::<i64>(), precision in -3i64..2000, use_int in any::<bool>()) {
        let (wasm, native) = if use_int {
            (Number::Int(int), text::Number::Int(int))
        } else {
            (Number::Float(f64::from_bits(bits)), text::Number::Float(f64::from_bits(bits)))
        };
        prop_assert_eq!(call(utils().format_float(wasm, precision)), text::format_float(native, precision));
    }

    #[test]
    fn truncate_long_string_agrees(s in tricky_text(), max_length in -50i64..60, middle in any::<bool>()) {
        prop_assert_eq!(utils().truncate_long_string(&s, max_length, middle).unwrap(), text::truncate_long_string(&s, max_length, middle));
    }

    #[test]
    fn read_last_n_lines_agrees(content in prop::collection::vec(prop::sample::select(vec![b'a', b'\n', b'\r', 0xc3, 0xa9, 0xff, 0xe2, 0x82, 0xac]), 0..300),
                                n in -1i64..20, chunk in -1i64..40, strict in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.txt");
        std::fs::write(&path, &content).unwrap();
        let path = path.to_str().unwrap();
        let errors = if strict { DecodeErrors::Strict } else { DecodeErrors::Replace };
        let native_errors = if strict { files::DecodeErrors::Strict } else { files::DecodeErrors::Replace };
        prop_assert_eq!(call(utils().read_last_n_lines_with(path, n, chunk, errors)), files::read_last_n_lines(path, n, chunk, native_errors));
    }

    #[test]
    fn hash_file_agrees(content in prop::collection::vec(any::<u8>(), 0..2000), alg in prop::sample::select(vec!["md5", "SHA1", "sha224", "sha-256", "sha384", "sha512", "sha512_224", "sha3_256", "blake2b", "blake2s", "nope", "SHA3_256"])) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.bin");
        std::fs::write(&path, &content).unwrap();
        let path = path.to_str().unwrap();
        let native = files::hash_file(path, alg).and_then(|h| h.hexdigest(None));
        prop_assert_eq!(call(utils().hash_file(path, alg)).map(|h| h.hexdigest()), native);
    }

    #[test]
    fn env_driven_system_functions_agree(cpu in prop::option::of(env_text()), gb in prop::option::of(env_text()), bytes in prop::option::of(env_text()),
                                         logical in prop::option::of(1u32..512), total in any::<u64>()) {
        let mut env = Vec::new();
        for (k, v) in [("SKYPILOT_POD_CPU_CORE_LIMIT", &cpu), ("SKYPILOT_POD_MEMORY_GB_LIMIT", &gb), ("SKYPILOT_POD_MEMORY_BYTES_LIMIT", &bytes)] {
            if let Some(v) = v { env.push((k.to_string(), v.clone())); }
        }
        let facts = FixedFacts::simple(logical, total);
        let component = Utils::new(Policy { env_override: Some(env.clone()), cgroup_root: None, ..Policy::default() })
            .unwrap()
            .with_facts(Arc::new(facts));
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let native = Context { facts: &facts, env: &lookup };
        prop_assert_eq!(call(component.get_cpu_count()).map(|c| c.map(f64::to_bits)), native.get_cpu_count().map(|c| c.map(f64::to_bits)));
        prop_assert_eq!(call(component.get_mem_size_gb()).map(f64::to_bits), native.get_mem_size_gb().map(f64::to_bits));
    }
}

/// Fixed facts for both sides of the comparison.
#[derive(Clone, Copy)]
struct FixedFacts {
    logical: Option<u32>,
    total: u64,
    soft: Option<u64>,
    busy_modulo: u16,
}

impl FixedFacts {
    fn simple(logical: Option<u32>, total: u64) -> Self {
        FixedFacts {
            logical,
            total,
            soft: Some(1024),
            busy_modulo: 0,
        }
    }
    fn soft_limit(&self) -> Limit {
        self.soft.map_or(Limit::Unlimited, Limit::Finite)
    }
    fn bindable(&self, port: u16) -> bool {
        self.busy_modulo == 0 || !port.is_multiple_of(self.busy_modulo)
    }
}

fn component_with(facts: FixedFacts) -> Utils {
    Utils::new(Policy {
        env_override: Some(vec![]),
        cgroup_root: None,
        ..Policy::default()
    })
    .unwrap()
    .with_facts(Arc::new(facts))
}

fn native_with<'a>(facts: &'a FixedFacts, env: &'a dyn Fn(&str) -> Option<String>) -> Context<'a> {
    Context { facts, env }
}

fn no_env(_: &str) -> Option<String> {
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn find_free_port_agrees(start in prop_oneof![-10i64..100, 65500i64..66000, any::<i64>()], busy in 0u16..5) {
        let facts = FixedFacts { busy_modulo: busy, ..FixedFacts::simple(Some(2), 1) };
        prop_assert_eq!(call(component_with(facts).find_free_port(start)), native_with(&facts, &no_env).find_free_port(start));
    }

    #[test]
    fn parallel_threads_and_pids_agree(cloud in prop::option::of(prop_oneof![tricky_text(), Just("Kubernetes".to_string()), Just("\u{212a}ubernetes".to_string())]),
                                       cpus in prop::option::of(0u32..2000), pid in any::<i64>()) {
        let facts = FixedFacts::simple(cpus, 1);
        let (component, native) = (component_with(facts), native_with(&facts, &no_env));
        prop_assert_eq!(call(component.get_parallel_threads(cloud.as_deref())), native.get_parallel_threads(cloud.as_deref()));
        prop_assert_eq!(call(component.is_process_alive(pid)), native.is_process_alive(pid));
    }

    #[test]
    fn directory_functions_agree(sizes in prop::collection::vec(0usize..40, 1..4), soft in prop::option::of(0u64..5000),
                                 picks in prop::collection::vec(0usize..6, 0..5), cpus in 1u32..64) {
        let tmp = tempfile::tempdir().unwrap();
        let mut sources = vec![tmp.path().join("missing").to_str().unwrap().to_string(), "s3://bucket/x".to_string()];
        for (d, size) in sizes.iter().enumerate() {
            let dir = tmp.path().join(format!("d{d}"));
            std::fs::create_dir(&dir).unwrap();
            for i in 0..*size {
                std::fs::write(dir.join(format!("f{i}")), b"").unwrap();
            }
            sources.push(dir.to_str().unwrap().to_string());
        }
        std::fs::write(tmp.path().join("file.txt"), b"x").unwrap();
        sources.push(tmp.path().join("file.txt").to_str().unwrap().to_string());
        let facts = FixedFacts { soft, ..FixedFacts::simple(Some(cpus), 1) };
        let (component, native) = (component_with(facts), native_with(&facts, &no_env));
        for source in &sources {
            prop_assert_eq!(call(component.estimate_fd_for_directory(source)), files::estimate_fd_for_directory(source));
        }
        let mounts: Vec<(String, String)> = picks.iter().map(|&i| (format!("/dst{i}"), sources[i % sources.len()].clone())).collect();
        let _warning = common::low_fd_warning_lock();
        skyutils::reset_low_fd_warning();
        let got = call(component.get_max_workers_for_file_mounts(&mounts, None)).map(|w| (w.count, w.warning));
        prop_assert_eq!(got, native.get_max_workers_for_file_mounts(&mounts, None));
    }
}

impl Facts for FixedFacts {
    fn logical_cpu_count(&self) -> skyutils_guest::Result<Option<u32>> {
        Ok(self.logical)
    }
    fn affinity_cpu_count(&self) -> skyutils_guest::Result<Option<u32>> {
        Ok(self.logical.map(|l| l.min(4)))
    }
    fn os_cpu_count(&self) -> skyutils_guest::Result<Option<u32>> {
        Ok(self.logical)
    }
    fn memory_total_bytes(&self) -> skyutils_guest::Result<u64> {
        Ok(self.total)
    }
    fn nofile_limit(&self) -> skyutils_guest::Result<(Limit, Limit)> {
        Ok((self.soft_limit(), Limit::Unlimited))
    }
    fn pid_exists(&self, pid: u32) -> skyutils_guest::Result<bool> {
        Ok(pid == 1)
    }
    fn tcp4_port_bindable(&self, port: u16) -> skyutils_guest::Result<bool> {
        Ok(self.bindable(port))
    }
    fn read_cgroup_limit(&self, _: CgroupController) -> skyutils_guest::Result<CgroupLimit> {
        Ok(CgroupLimit::default()) // as the component sees it: no cgroup root
    }
}

impl skyutils::HostFacts for FixedFacts {
    fn logical_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(self.logical)
    }
    fn affinity_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(self.logical.map(|l| l.min(4)))
    }
    fn os_cpu_count(&self) -> Result<Option<u32>, String> {
        Ok(self.logical)
    }
    fn memory_total_bytes(&self) -> Result<u64, String> {
        Ok(self.total)
    }
    fn nofile_limit(&self) -> Result<(Limit, Limit), String> {
        Ok((self.soft_limit(), Limit::Unlimited))
    }
    fn pid_exists(&self, pid: u32) -> Result<bool, String> {
        Ok(pid == 1)
    }
    fn tcp4_port_bindable(&self, port: u16) -> Result<bool, String> {
        Ok(self.bindable(port))
    }
}
