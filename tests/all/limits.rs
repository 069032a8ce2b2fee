//! The drop-in has no limit upstream lacks: with the default policy (and the
//! CLI without limit flags) a tail bigger than wasmtime's 128 MiB hostcall
//! budget and a hash that runs past 30 s both complete. Explicit limits are
//! covered by tests/all/sandbox.rs and tests/all/plugins.rs.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use skyutils::{Error, Policy, Utils};

/// Line `i` of a ~146 MiB log of 2.1 M lines of 73 bytes (72 + `\n`).
fn line(i: usize) -> String {
    format!(
        "{i:09} the quick brown fox jumps over the lazy dog, again and again {}",
        i % 7
    )
}

fn write_log(path: &Path, count: usize) -> usize {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut total = 0;
    for i in 0..count {
        let l = line(i);
        total += l.len() + 1;
        writeln!(out, "{l}").unwrap();
    }
    out.flush().unwrap();
    total
}

#[test]
fn a_tail_over_128_mib_completes_with_the_default_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("big.log");
    let count = 2_100_000;
    let size = write_log(&log, count);
    assert!(size > 140 << 20, "{size}");
    let log = log.to_str().unwrap();

    // Rust API: all but the first 1,000 lines.
    let utils = Utils::new(Policy::default()).unwrap();
    let n = count - 1000;
    let lines = utils.read_last_n_lines(log, n as i64).unwrap();
    assert_eq!(lines.len(), n);
    assert_eq!(lines[0], format!("{}\n", line(1000)));
    assert_eq!(lines[n - 1], line(count - 1));
    let total: usize = lines.iter().map(String::len).sum();
    assert_eq!(
        total,
        size - 1000 * (line(0).len() + 1) - 1,
        "the last line has no \\n"
    );
    drop(lines);
    let raw = utils.read_last_n_raw(log, count as i64 + 5, 8192).unwrap();
    assert_eq!(raw.len(), count);
    assert_eq!(raw[count - 1], line(count - 1).into_bytes());
    drop(raw);

    // The CLI without limit flags prints the whole tail.
    let out = Command::new(env!("CARGO_BIN_EXE_skyutils"))
        .args(["read-last-n-lines", log, "-n", &count.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout.len(),
        size,
        "the file, with println's newline for the last"
    );
    assert!(out.stdout.starts_with(format!("{}\n", line(0)).as_bytes()));
    assert!(out
        .stdout
        .ends_with(format!("{}\n", line(count - 1)).as_bytes()));
}

/// SHA-256 of 8 GiB of zero bytes (`truncate -s 8G f; sha256sum f`).
const SHA256_8_GIB_OF_ZEROS: &str =
    "ebfb4ef19ae410f190327b5ebd312711263bc7579970e87d9c1e2d84e06b3c25";

#[test]
fn a_hash_running_past_30_seconds_completes_with_the_default_policy() {
    // The component hashes ~200-250 MiB/s on an idle machine here, so 8 GiB
    // takes over 30 s, the deadline the default policy used to have. A
    // sparse file costs no disk.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sparse.bin");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(8 << 30).unwrap();
    drop(file);
    let path = path.to_str().unwrap();
    let utils = Utils::new(Policy::default()).unwrap();
    let hash = utils.hash_file(path, "sha256").unwrap();
    assert_eq!(hash.hexdigest(), SHA256_8_GIB_OF_ZEROS);

    // No newline in 8 GiB: the last line cannot fit in a wasm32 guest.
    match utils.read_last_n_lines(path, 1) {
        Err(e @ Error::MemoryLimit { .. }) => {
            let text = e.to_string();
            assert!(
                matches!(e, Error::MemoryLimit { limit, requested: Some(r), .. }
                if limit == 1 << 32 && r == 8 << 30),
                "{e:?}"
            );
            assert!(text.contains("(the wasm32 maximum)"), "{text}");
            assert!(
                text.contains("the last lines of the file are 8589934592 bytes"),
                "{text}"
            );
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert_eq!(
        utils.read_last_n_lines(path, 0).unwrap(),
        Vec::<String>::new()
    );
}
