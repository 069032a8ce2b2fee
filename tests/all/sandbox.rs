//! Sandbox behaviour of the Rust host: file grants, capabilities, the
//! environment filter, limits, and recovery after a trap.

use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::time::Duration;

use skyutils::{CallError, Capability, Error, FileAccess, Number, Policy, Utils};

use crate::common;

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
            .get_max_workers_for_file_mounts::<&str, &str>(&[], None)
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

/// A tree with Latin-1 (non-UTF-8) names, as found on real Linux machines:
/// `caf\xe9/` holding `a.log`, `\xff.log` and `.hidden`, and `plain/` holding
/// `ok` and `\xfe`.
fn latin1_tree() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let odd = tmp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&odd).unwrap();
    std::fs::create_dir(&plain).unwrap();
    for name in [&b"a.log"[..], b"\xff.log", b".hidden"] {
        std::fs::write(odd.join(std::ffi::OsStr::from_bytes(name)), "1\n2\n3\n").unwrap();
    }
    for name in [&b"ok"[..], b"\xfe"] {
        std::fs::write(plain.join(std::ffi::OsStr::from_bytes(name)), "").unwrap();
    }
    (tmp, odd, plain)
}

#[test]
fn directories_with_non_utf8_names_and_entries_are_counted() {
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, odd, plain) = latin1_tree();
    let utils = Utils::new(Policy::default()).unwrap();
    // Upstream: 5 * len(os.listdir(path)).
    let listed = |d: &std::path::Path| 5 * std::fs::read_dir(d).unwrap().count() as u64;
    assert_eq!(
        utils.estimate_fd_for_directory(&plain).unwrap(),
        listed(&plain)
    );
    assert_eq!(utils.estimate_fd_for_directory(&odd).unwrap(), listed(&odd));
    assert_eq!(listed(&odd), 15);
    // A file inside the non-UTF-8 directory, named in UTF-8.
    assert_eq!(
        utils.read_last_n_lines(odd.join("a.log"), 2).unwrap(),
        vec!["2\n", "3"]
    );
    // A mount source whose own name is not UTF-8 is a directory (upstream
    // counts its entries): 3 entries -> fd_per_rsync 15 -> (160-100)//15 = 4
    // (uncounted it would be 60//5 = 12; 63 threads cap neither).
    let facts = Arc::new(common::FakeFacts::new(Some(&serde_json::json!({
        "nofile_soft": 160, "nofile_hard": 160, "os_cpu_count": 64
    }))));
    let utils = Utils::new(Policy::default()).unwrap().with_facts(facts);
    let _warning = common::low_fd_warning_lock();
    let mounts = [("/a", odd.as_path())];
    assert_eq!(
        utils
            .get_max_workers_for_file_mounts(&mounts, None)
            .unwrap()
            .count,
        4
    );
    // A file whose name is not UTF-8, as a mount source, is no directory.
    let file = odd.join(std::ffi::OsStr::from_bytes(b"\xff.log"));
    let mounts = [("/a", file.as_path())];
    assert_eq!(
        utils
            .get_max_workers_for_file_mounts(&mounts, None)
            .unwrap()
            .count,
        12
    );
}

#[test]
fn non_utf8_paths_in_errors_look_as_python_shows_them() {
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, odd, _plain) = latin1_tree();
    let utils = Utils::new(Policy::default()).unwrap();
    let file = odd.join(std::ffi::OsStr::from_bytes(b"\xff.log"));
    let shown = |p: &std::path::Path| {
        let s = p.to_str().map(str::to_string);
        s.unwrap_or_else(|| {
            // Python's repr of the surrogate-escaped str, without quotes.
            let bytes = p.as_os_str().as_bytes();
            bytes.utf8_chunks().fold(String::new(), |mut out, c| {
                out.push_str(c.valid());
                for b in c.invalid() {
                    out.push_str(&format!("\\udc{b:02x}"));
                }
                out
            })
        })
    };
    match utils.estimate_fd_for_directory(&file) {
        Err(Error::Call(e)) => assert_eq!(
            (e.python_class(), e.message().to_string()),
            (
                "NotADirectoryError",
                format!("[Errno 20] Not a directory: '{}'", shown(&file))
            )
        ),
        other => panic!("{other:?}"),
    }
    let missing = odd.join(std::ffi::OsStr::from_bytes(b"nope\xe9"));
    match utils.estimate_fd_for_directory(&missing) {
        Err(Error::Call(e)) => assert_eq!(
            e.message(),
            format!("[Errno 2] No such file or directory: '{}'", shown(&missing))
        ),
        other => panic!("{other:?}"),
    }
    // The strict policy refuses what it cannot name, with a clear error.
    let strict = strict(odd.parent().unwrap());
    match strict.read_last_n_lines(odd.join("a.log"), 1) {
        Err(Error::Call(CallError::CapabilityDenied(m))) => {
            assert!(
                m.contains("caf\\udce9") && m.contains("not valid UTF-8"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_cli_takes_non_utf8_arguments() {
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, odd, _plain) = latin1_tree();
    let cli = env!("CARGO_BIN_EXE_skyutils");
    let out = std::process::Command::new(cli)
        .arg("estimate-fd")
        .arg(&odd)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "15", "{out:?}");
    let mut mount = std::ffi::OsString::from("/dst=");
    mount.push(odd.as_os_str());
    let out = std::process::Command::new(cli)
        .args(["--json", "max-workers-for-file-mounts", "--mount"])
        .arg(&mount)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = std::process::Command::new(cli)
        .args(["read-last-n-lines", "-n", "1"])
        .arg(odd.join(std::ffi::OsStr::from_bytes(b"a.log")))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"3\n");
}

/// A path over PATH_MAX is refused by the OS (ENAMETOOLONG) whether or not
/// it exists; the drop-in must not turn that into "No such file".
#[test]
fn a_path_longer_than_path_max_is_refused_as_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("five.txt"), "l1\nl2\n").unwrap();
    let long = format!("{}{}/five.txt", tmp.path().display(), "/a".repeat(3000));
    let utils = Utils::new(Policy::default()).unwrap();
    let message = format!("[Errno 36] File name too long: '{long}'");
    let err = utils.hash_file(&long, "md5").unwrap_err();
    assert_eq!((err.kind(), err.message()), ("OSError", message.clone()));
    let err = utils.estimate_fd_for_directory(&long).unwrap_err();
    assert_eq!((err.kind(), err.message()), ("OSError", message));
    let err = utils.read_last_n_lines(&long, 1).unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        ("AssertionError", format!("File not found: {long}"))
    );
    let five = tmp.path().join("five.txt");
    assert_eq!(
        utils.read_last_n_lines(five.to_str().unwrap(), 1).unwrap(),
        vec!["l2"]
    );
}
