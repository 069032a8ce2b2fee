//! Untrusted components: the test plugin in `tests/plugins/evil` misbehaves
//! on purpose; every attack must end in a clear error, nothing outside the
//! policy may be read or written, and the next call on the same `Utils` must
//! work. Build the plugin with `make plugins` (part of `make test`).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use skyutils::{CallError, Error, FileAccess, Policy, Utils};

fn plugin() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/wasm32-wasip2/release/evil_plugin.wasm");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make plugins`)", path.display()))
}

fn load(policy: Policy) -> Utils {
    Utils::with_component(&plugin(), policy).unwrap()
}

fn fast_policy() -> Policy {
    Policy {
        deadline: Some(Duration::from_millis(500)),
        memory_limit: 64 << 20,
        ..Policy::plugin()
    }
}

/// Runs `command`, checks the error, then checks the same `Utils` still works.
fn attack(utils: &Utils, command: &str, check: impl FnOnce(&Error) -> bool) {
    match utils.base36_encode(command) {
        Ok(out) => panic!("{command}: expected an error, got {} bytes", out.len()),
        Err(e) => assert!(check(&e), "{command}: unexpected error {e:?}"),
    }
    assert_eq!(
        utils.base36_encode("ok").unwrap(),
        "fine",
        "{command}: the next call must work"
    );
}

#[test]
fn reading_outside_without_a_grant_fails() {
    let utils = load(fast_policy());
    for command in ["read-absolute", "read-dotdot"] {
        attack(
            &utils,
            command,
            |e| matches!(e, Error::Call(CallError::Value(m)) if m.contains("No such file")),
        );
    }
}

#[test]
fn runaway_code_is_stopped() {
    let utils = load(fast_policy());
    attack(&utils, "loop", |e| matches!(e, Error::Deadline(_)));
    attack(&utils, "hammer-imports", |e| {
        matches!(e, Error::Deadline(_))
    });
    attack(
        &utils,
        "alloc-4gib",
        |e| matches!(e, Error::MemoryLimit { limit, .. } if *limit == 64 << 20),
    );
    attack(&utils, "stack-overflow", |e| matches!(e, Error::Trap(_)));
    attack(
        &utils,
        "panic",
        |e| matches!(e, Error::Trap(m) if m.contains("panics on purpose")),
    );
    let roomy = load(Policy {
        max_output: Some(1 << 20),
        ..Policy::plugin()
    });
    attack(
        &roomy,
        "huge-output",
        |e| matches!(e, Error::OutputTooLarge(n, l) if *n == 100 << 20 && *l == 1 << 20),
    );
}

#[test]
fn fuel_bounds_a_busy_loop() {
    let utils = load(Policy {
        fuel: Some(5_000_000),
        deadline: Some(Duration::from_secs(20)),
        ..Policy::plugin()
    });
    attack(&utils, "loop", |e| matches!(e, Error::OutOfFuel(5_000_000)));
}

#[test]
fn only_granted_environment_variables_are_visible() {
    let env = vec![
        ("SKYPILOT_POD_CPU_CORE_LIMIT".to_string(), "4".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "hunter2".to_string()),
    ];
    let utils = load(Policy {
        env_override: Some(env),
        ..fast_policy()
    });
    let seen = utils.truncate_long_string("unused", 1, false).unwrap();
    assert_eq!(seen, "unused");
    // The plugin's `env` command lists every variable it can see.
    match utils.base36_encode("env") {
        Ok(listing) => assert_eq!(listing, "SKYPILOT_POD_CPU_CORE_LIMIT=4\n"),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn calling_an_interface_the_plugin_lacks_is_a_clear_error() {
    let utils = load(fast_policy());
    match utils.get_cpu_count() {
        Err(Error::MissingExport(name)) => assert_eq!(name, "skypilot:utils/system@0.1.0"),
        other => panic!("{other:?}"),
    }
    assert_eq!(utils.base36_encode("ok").unwrap(), "fine");
}

/// A granted directory with bait: a victim file and symlinks pointing out.
fn granted_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("granted");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("log.txt"), "line\n").unwrap();
    std::fs::write(dir.join("victim.txt"), "keep me\n").unwrap();
    symlink("/etc/passwd", dir.join("planted")).unwrap();
    symlink("/etc", dir.join("planted-etc")).unwrap();
    (tmp, dir)
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::symlink_metadata(e.path())
                .ok()
                .filter(|m| m.is_file())
                .map(|_| std::fs::read(e.path()).unwrap())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    entries.sort();
    entries
}

fn assert_all_denied(report: &str) {
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 8, "{report}");
    for line in lines {
        assert!(
            line.contains(": denied ("),
            "escape attempt succeeded: {line}"
        );
    }
}

#[test]
fn nothing_escapes_a_granted_directory() {
    let (_tmp, dir) = granted_dir();
    let before = snapshot(&dir);
    let log = dir.join("log.txt");
    for files in [
        FileAccess::PerCall,
        FileAccess::AllowDirs(vec![dir.clone()]),
    ] {
        let utils = load(Policy {
            files,
            ..fast_policy()
        });
        // Reading the granted file works; every attempt beyond it fails.
        let out = utils.read_last_n_lines(log.to_str().unwrap(), 1).unwrap();
        assert_eq!(out[0], "line\n");
        assert_all_denied(&out[1]);
        match utils.estimate_fd_for_directory(dir.to_str().unwrap()) {
            Err(Error::Call(CallError::Value(report))) => assert_all_denied(&report),
            other => panic!("{other:?}"),
        }
        assert_eq!(snapshot(&dir), before, "the granted directory changed");
    }
}

#[test]
fn guest_state_survives_only_on_reused_instances() {
    // The plugin's `count` command bumps a static counter in guest memory.
    let count = |utils: &Utils| utils.base36_encode("count").unwrap();
    let reused = load(fast_policy());
    assert_eq!([count(&reused), count(&reused)], ["1", "2"]);
    // A trap discards its instance: the next call starts from scratch.
    assert!(matches!(reused.base36_encode("panic"), Err(Error::Trap(_))));
    assert_eq!(count(&reused), "1");
    let fresh = load(Policy {
        reuse_instances: false,
        ..fast_policy()
    });
    assert_eq!(
        [count(&fresh), count(&fresh), count(&fresh)],
        ["1", "1", "1"]
    );
}

#[test]
fn the_cli_gives_a_plugin_the_bounded_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/wasm32-wasip2/release/evil_plugin.wasm");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_skyutils"))
            .arg("--json")
            .arg("--component")
            .arg(&path)
            .args(extra)
            .args(["base36-encode", "huge-output"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    // Without limit flags a plugin gets Policy::plugin()'s 64 MiB output cap...
    let err = run(&[]);
    assert_eq!(err["error"], "OutputTooLarge", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .ends_with("limit of 67108864"),
        "{err}"
    );
    // ...and a flag replaces it.
    let err = run(&["--max-output", "1MiB"]);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .ends_with("limit of 1048576"),
        "{err}"
    );
    let bounds = Policy::plugin();
    assert_eq!(
        (bounds.deadline, bounds.memory_limit, bounds.max_output),
        (Some(Duration::from_secs(30)), 512 << 20, Some(64 << 20))
    );
    let drop_in = Policy::default();
    assert_eq!(
        (drop_in.deadline, drop_in.memory_limit, drop_in.max_output),
        (None, skyutils::WASM32_MAX_MEMORY, None)
    );
}
