//! Sandbox behaviour of the Rust host: file grants, capabilities, the
//! environment filter, limits, and recovery after a trap.

mod common;

use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::time::Duration;

use skyutils::{CallError, Capability, Error, FileAccess, Number, Policy, Utils};

fn strict(dir: &std::path::Path) -> Utils {
    Utils::new(Policy {
        files: FileAccess::AllowDirs(vec![dir.to_path_buf()]),
        ..Policy::default()
    })
    .unwrap()
}

fn assert_denied(result: Result<impl std::fmt::Debug, Error>, path: &str) {
    match result {
        Err(Error::Call(CallError::CapabilityDenied(m))) => {
            assert!(
                m.contains(path) && m.contains("outside the allowed directories"),
                "{m}"
            )
        }
        other => panic!("expected a capability error for {path}, got {other:?}"),
    }
}

/// A tree with `allowed/` (granted) next to `secret.txt` (not granted).
fn tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("allowed")).unwrap();
    std::fs::write(tmp.path().join("allowed/log.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "top secret\n").unwrap();
    symlink("../secret.txt", tmp.path().join("allowed/escape")).unwrap();
    symlink("/etc", tmp.path().join("allowed/etc")).unwrap();
    tmp
}

#[test]
fn strict_mode_reads_inside_the_allowed_directory() {
    let tmp = tree();
    let utils = strict(&tmp.path().join("allowed"));
    let log = tmp.path().join("allowed/log.txt");
    assert_eq!(
        utils.read_last_n_lines(log.to_str().unwrap(), 2).unwrap(),
        vec!["b\n", "c"]
    );
    assert_eq!(
        utils
            .estimate_fd_for_directory(tmp.path().join("allowed").to_str().unwrap())
            .unwrap(),
        15
    );
}

#[test]
fn strict_mode_refuses_every_way_out() {
    let tmp = tree();
    let utils = strict(&tmp.path().join("allowed"));
    let base = tmp.path().to_str().unwrap();
    let absolute = format!("{base}/secret.txt");
    let dotdot = format!("{base}/allowed/../secret.txt");
    let through_link = format!("{base}/allowed/escape");
    let through_dir_link = format!("{base}/allowed/etc/passwd");
    for path in [
        "/etc/passwd",
        &absolute,
        &dotdot,
        &through_link,
        &through_dir_link,
    ] {
        assert_denied(utils.read_last_n_lines(path, 1), path);
        assert_denied(utils.hash_file(path, "sha256"), path);
    }
    assert_denied(utils.estimate_fd_for_directory("/etc"), "/etc");
    let mounts = vec![("/dst".to_string(), "/etc".to_string())];
    assert_denied(utils.get_max_workers_for_file_mounts(&mounts, None), "/etc");
}

#[test]
fn drop_in_mode_follows_symlinks_like_upstream() {
    let tmp = tree();
    let utils = Utils::new(Policy::default()).unwrap();
    let link = tmp.path().join("allowed/escape");
    // Upstream follows a symlink anywhere; so does the drop-in mode, which
    // grants the directory of the resolved target (read-only).
    assert_eq!(
        utils.read_last_n_lines(link.to_str().unwrap(), 5).unwrap(),
        vec!["top secret"]
    );
    let missing = tmp.path().join("allowed/nope.txt");
    match utils.read_last_n_lines(missing.to_str().unwrap(), 1) {
        Err(Error::Call(CallError::Assertion(m))) => {
            assert_eq!(m, format!("File not found: {}", missing.display()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_directory_replaced_between_calls_is_seen_afresh() {
    // An idle instance keeps its preopened directory handle; a directory
    // replaced at the same path must not be read through that old handle.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let log = dir.join("app.log");
    let log = log.to_str().unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("app.log"), "old 1\nold 2\n").unwrap();
    let utils = Utils::new(Policy::default()).unwrap();
    assert_eq!(utils.read_last_n_lines(log, 1).unwrap(), vec!["old 2"]);
    std::fs::rename(&dir, tmp.path().join("logs.1")).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("app.log"), "new\n").unwrap();
    assert_eq!(utils.read_last_n_lines(log, 1).unwrap(), vec!["new"]);
    std::fs::remove_dir_all(&dir).unwrap();
    // Upstream asserts the file exists.
    let gone = utils.read_last_n_lines(log, 1);
    assert!(
        matches!(&gone, Err(Error::Call(CallError::Assertion(m))) if m.starts_with("File not found")),
        "{gone:?}"
    );
}

#[test]
fn the_sandbox_is_read_only() {
    // The component has no write path; the grant itself is read-only, so the
    // file is unchanged after every call that touches it.
    let tmp = tree();
    let log = tmp.path().join("allowed/log.txt");
    let utils = Utils::new(Policy::default()).unwrap();
    let before = std::fs::read(&log).unwrap();
    utils.read_last_n_lines(log.to_str().unwrap(), 3).unwrap();
    utils.hash_file(log.to_str().unwrap(), "md5").unwrap();
    assert_eq!(std::fs::read(&log).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("allowed"))
            .unwrap()
            .count(),
        3
    );
}

#[test]
fn denied_capabilities_fail_clearly() {
    let policy = Policy {
        capabilities: vec![Capability::Memory],
        env_override: Some(vec![]),
        ..Policy::default()
    };
    let utils = Utils::new(policy).unwrap();
    let expect_denied = |result: Result<String, Error>, capability: &str| match result {
        Err(Error::Call(CallError::CapabilityDenied(m))) => {
            assert_eq!(
                m,
                format!("capability '{capability}' is not granted by the host policy")
            )
        }
        other => panic!("expected {capability} to be denied, got {other:?}"),
    };
    expect_denied(utils.get_cpu_count().map(|c| format!("{c:?}")), "cpu");
    expect_denied(
        utils.get_parallel_threads(None).map(|n| n.to_string()),
        "cpu",
    );
    expect_denied(
        utils.is_process_alive(1).map(|b| b.to_string()),
        "processes",
    );
    expect_denied(utils.find_free_port(8000).map(|p| p.to_string()), "network");
    expect_denied(
        utils
            .get_max_workers_for_file_mounts(&[], None)
            .map(|w| w.count.to_string()),
        "file-limits",
    );
    // The granted one still works, and pid 0 / negative pids never reach the host.
    assert!(utils.get_mem_size_gb().unwrap() > 0.0);
    assert!(!utils.is_process_alive(0).unwrap());
}

#[test]
fn only_allowed_environment_variables_reach_the_guest() {
    let env = vec![
        ("SKYPILOT_POD_CPU_CORE_LIMIT".to_string(), "7".to_string()),
        (
            "SKYPILOT_POD_MEMORY_GB_LIMIT".to_string(),
            "3.5".to_string(),
        ),
    ];
    let facts = Arc::new(common::FakeFacts::new(Some(&serde_json::json!({
        "logical_cpus": 3, "affinity_cpus": 3, "memory_total_bytes": 1073741824u64
    }))));
    let policy = Policy {
        env_override: Some(env.clone()),
        cgroup_root: None,
        ..Policy::default()
    };
    let utils = Utils::new(policy).unwrap().with_facts(facts.clone());
    assert_eq!(utils.get_cpu_count().unwrap(), Some(7.0));
    assert_eq!(utils.get_mem_size_gb().unwrap(), 3.5);

    // Allow only the memory variable: the CPU override becomes invisible.
    let policy = Policy {
        env_override: Some(env),
        env_allow: vec!["SKYPILOT_POD_MEMORY_GB_LIMIT".into()],
        cgroup_root: None,
        ..Policy::default()
    };
    let utils = Utils::new(policy).unwrap().with_facts(facts);
    assert_eq!(utils.get_cpu_count().unwrap(), Some(3.0));
    assert_eq!(utils.get_mem_size_gb().unwrap(), 3.5);
    let policy = Policy::default();
    assert!(!policy.env_allowed("HOME") && !policy.env_allowed("PATH"));
    assert!(policy.env_allowed("SKYPILOT_POD_CPU_CORE_LIMIT"));
}

#[test]
fn a_memory_trap_is_reported_and_the_next_call_works() {
    let utils = Utils::new(Policy {
        memory_limit: 64 << 20,
        ..Policy::default()
    })
    .unwrap();
    match utils.format_float(Number::Float(1.5), 200_000_000) {
        Err(e @ Error::MemoryLimit { limit, .. }) => {
            assert_eq!(limit, 64 << 20);
            let text = e.to_string();
            assert!(
                text.contains("memory limit of 67108864 bytes (the policy's memory_limit)"),
                "{text}"
            );
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert_eq!(utils.format_float(Number::Float(1.25), 1).unwrap(), "1.2");
    assert_eq!(utils.base36_encode("ff").unwrap(), "73");
}

#[test]
fn a_deadline_trap_is_reported_and_the_next_call_works() {
    let utils = Utils::new(Policy {
        deadline: Some(Duration::from_millis(1)),
        ..Policy::default()
    })
    .unwrap();
    match utils.format_float(Number::Float(0.1), 400_000_000) {
        Err(Error::Deadline(d)) => assert_eq!(d, Duration::from_millis(1)),
        other => panic!("expected the deadline, got {other:?}"),
    }
    assert_eq!(
        utils.truncate_long_string("hello world", 7, true).unwrap(),
        "he...ld"
    );
}

#[test]
fn a_guest_panic_is_a_clear_trap() {
    let utils = Utils::new(Policy::default()).unwrap();
    match utils.format_float(Number::Float(1.5), 2_147_483_647) {
        Err(Error::Trap(m)) => {
            assert!(m.contains("cannot format 2147483647 decimal places"), "{m}")
        }
        Err(Error::MemoryLimit { .. }) => {}
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(utils.format_float(Number::Int(-7), 3).unwrap(), "-7");
}

#[test]
fn hash_objects_expose_hashlib_metadata() {
    let tmp = tree();
    let utils = Utils::new(Policy::default()).unwrap();
    let log = tmp.path().join("allowed/log.txt");
    let sha = utils.hash_file(log.to_str().unwrap(), "SHA-256").unwrap();
    assert_eq!(
        (
            sha.name.as_str(),
            sha.digest_size,
            sha.block_size,
            sha.digest.len()
        ),
        ("sha256", 32, 64, 32)
    );
    let shake = utils
        .hash_file_xof(log.to_str().unwrap(), "shake_128", 10)
        .unwrap();
    assert_eq!(
        (shake.name.as_str(), shake.digest_size, shake.digest.len()),
        ("shake_128", 0, 10)
    );
    match utils.hash_file(log.to_str().unwrap(), "shake_128") {
        Err(Error::Call(CallError::Type(m))) => assert!(m.contains("'length'")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn replacing_the_facts_drops_idle_instances() {
    let me = std::process::id();
    let utils = Utils::new(Policy::default()).unwrap();
    assert!(utils.is_process_alive(i64::from(me)).unwrap());
    // An idle instance now holds this machine's facts; the new source must
    // answer the next call, not that instance.
    let no_pids = serde_json::json!({ "pids_alive": [] });
    let utils = utils.with_facts(Arc::new(common::FakeFacts::new(Some(&no_pids))));
    assert!(!utils.is_process_alive(i64::from(me)).unwrap());
}
