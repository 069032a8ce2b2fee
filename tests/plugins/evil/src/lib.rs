//! A component that exports `text` and `files` of `skypilot:utils` (not
//! `system`) and misbehaves on purpose. `base36-encode(command)` runs one
//! attack; `estimate-fd-for-directory(dir)` tries every way out of a granted
//! directory and reports what happened. Used by tests/all/plugins.rs.

use std::fmt::Write as _;

wit_bindgen::generate!({
    inline: r#"
        package test:evil;

        world evil {
            import skypilot:utils/host-facts@0.1.0;
            export skypilot:utils/text@0.1.0;
            export skypilot:utils/files@0.1.0;
        }
    "#,
    path: "../../../wit",
    world: "test:evil/evil",
    generate_all,
});

use exports::skypilot::utils::files::{self, DecodeErrors, GuestHasher, HashInfo};
use exports::skypilot::utils::text::{self, Number};
use skypilot::utils::host_facts;
use skypilot::utils::types::Error;

struct Evil;

export!(Evil);

fn value_error(message: impl Into<String>) -> Error {
    Error::ValueError(message.into())
}

/// Recursion the optimiser cannot turn into a loop.
#[allow(unconditional_recursion)]
#[inline(never)]
fn recurse(depth: u64, pad: &mut [u8; 1024]) -> u64 {
    pad[(depth % 1024) as usize] = depth as u8;
    let next = recurse(depth + 1, &mut std::hint::black_box([0u8; 1024]));
    next + u64::from(pad[0])
}

impl text::Guest for Evil {
    fn base36_encode(command: String) -> Result<String, Error> {
        match command.as_str() {
            "ok" => Ok("fine".into()),
            // Guest state that outlives a call only if its instance is reused.
            "count" => {
                static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                Ok((CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1).to_string())
            }
            "read-absolute" => std::fs::read_to_string("/etc/passwd").map_err(|e| value_error(e.to_string())),
            "read-dotdot" => std::fs::read_to_string("../../../../etc/passwd").map_err(|e| value_error(e.to_string())),
            "loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc-4gib" => {
                let mut blocks: Vec<Vec<u8>> = Vec::new();
                for _ in 0..4096 {
                    blocks.push(vec![1u8; 1 << 20]);
                }
                Ok(blocks.len().to_string())
            }
            "stack-overflow" => Ok(recurse(0, &mut [0u8; 1024]).to_string()),
            "panic" => panic!("the evil plugin panics on purpose"),
            "hammer-imports" => {
                let mut calls = 0u64;
                loop {
                    let _ = host_facts::pid_exists(1);
                    let _ = host_facts::tcp4_port_bindable(1);
                    calls += 2;
                    if calls == u64::MAX {
                        return Ok(calls.to_string());
                    }
                }
            }
            "huge-output" => Ok("x".repeat(100 << 20)),
            "env" => {
                let mut out = String::new();
                for (k, v) in std::env::vars() {
                    let _ = writeln!(out, "{k}={v}");
                }
                Ok(out)
            }
            other => Err(value_error(format!("unknown command {other}"))),
        }
    }

    fn format_float(_num: Number, _precision: i64) -> Result<String, Error> {
        Err(value_error("not implemented by the evil plugin"))
    }

    fn truncate_long_string(s: String, _max_length: i64, _truncate_middle: bool) -> String {
        s
    }
}

/// Every escape attempt from the granted directory `dir`; a line per attempt,
/// `LEAK` when something outside the policy was reached or changed.
fn escape_report(dir: &str) -> String {
    let mut report = String::new();
    let mut note = |name: &str, leaked: bool, detail: String| {
        let _ = writeln!(report, "{name}: {} ({detail})", if leaked { "LEAK" } else { "denied" });
    };
    for (name, path) in [
        ("absolute", "/etc/passwd".to_string()),
        ("dotdot", format!("{dir}/../../../../../../etc/passwd")),
        ("planted-symlink", format!("{dir}/planted")),
        ("planted-dir-symlink", format!("{dir}/planted-etc/passwd")),
    ] {
        match std::fs::read(&path) {
            Ok(bytes) => note(name, true, format!("read {} bytes", bytes.len())),
            Err(e) => note(name, false, e.to_string()),
        }
    }
    match std::fs::write(format!("{dir}/written-by-plugin.txt"), b"pwned") {
        Ok(()) => note("write-new-file", true, "created".into()),
        Err(e) => note("write-new-file", false, e.to_string()),
    }
    match std::fs::OpenOptions::new().append(true).open(format!("{dir}/victim.txt")) {
        Ok(_) => note("append-existing", true, "opened for writing".into()),
        Err(e) => note("append-existing", false, e.to_string()),
    }
    match std::fs::remove_file(format!("{dir}/victim.txt")) {
        Ok(()) => note("delete", true, "removed".into()),
        Err(e) => note("delete", false, e.to_string()),
    }
    match std::fs::create_dir(format!("{dir}/new-dir")) {
        Ok(()) => note("mkdir", true, "created".into()),
        Err(e) => note("mkdir", false, e.to_string()),
    }
    report
}

struct NoHasher;

impl GuestHasher for NoHasher {
    fn info(&self) -> HashInfo {
        HashInfo { name: "none".into(), digest_size: 0, block_size: 0 }
    }
    fn update(&self, _data: Vec<u8>) {}
    fn copy(&self) -> files::Hasher {
        files::Hasher::new(NoHasher)
    }
    fn hexdigest(&self, _length: Option<u32>) -> Result<String, Error> {
        Ok(String::new())
    }
}

impl files::Guest for Evil {
    type Hasher = NoHasher;

    fn read_last_n_lines(path: String, _n: i64, _chunk: i64, _errors: DecodeErrors) -> Result<Vec<String>, Error> {
        // Reads the granted file, then tries its neighbours.
        let mut out = vec![std::fs::read_to_string(&path).map_err(|e| value_error(e.to_string()))?];
        out.push(escape_report(path.rsplit_once('/').map(|(d, _)| d).unwrap_or(".")));
        Ok(out)
    }

    fn read_last_n_raw(_path: String, _n: i64, _chunk: i64) -> Result<Vec<Vec<u8>>, Error> {
        Err(value_error("not implemented by the evil plugin"))
    }

    fn hash_file(_path: String, _alg: String) -> Result<files::Hasher, Error> {
        Ok(files::Hasher::new(NoHasher))
    }

    fn estimate_fd_for_directory(path: String) -> Result<u64, Error> {
        Err(value_error(escape_report(&path)))
    }
}
