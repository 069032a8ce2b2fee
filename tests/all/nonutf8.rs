//! Files whose own name is not valid UTF-8 (issue 9, part 1): the host opens
//! them read-only and lends the guest the descriptor, so the file functions
//! return what upstream returns for them, errors included. Expected values
//! are computed here, independently of the component.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use md5::Md5;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use skyutils::{DecodeErrors, Error, FileAccess, Policy, Utils};

use crate::common;

fn utils() -> Utils {
    Utils::new(Policy::default()).unwrap()
}

/// `path` joined with the raw bytes `name`.
fn join(path: &Path, name: &[u8]) -> PathBuf {
    path.join(OsStr::from_bytes(name))
}

/// A temporary directory (canonical, so messages are predictable) with:
/// `\xff.log` and `caf\xe9.log` (lines with a CRLF and an invalid byte),
/// `d\xfe/` (a directory), `d\xfe/\xfd.log` and `d\xfe/ok.log`.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let content = b"first\nsecond\r\nbad \xff byte\nlast\n";
    std::fs::write(join(&root, b"\xff.log"), content).unwrap();
    std::fs::write(join(&root, b"caf\xe9.log"), content).unwrap();
    std::fs::create_dir(join(&root, b"d\xfe")).unwrap();
    std::fs::write(join(&root, b"d\xfe/\xfd.log"), b"one\ntwo").unwrap();
    std::fs::write(join(&root, b"d\xfe/ok.log"), b"three\nfour\n").unwrap();
    (tmp, root)
}

/// Python's `str` of a path: each undecodable byte as U+FFFD here (a Rust
/// `String` cannot hold the lone surrogate Python shows).
fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Python's `repr(os.fsdecode(path))` for the paths of these tests (no
/// quotes or backslashes in them): undecodable bytes as `\udcXX`.
fn repr(path: &Path) -> String {
    let mut out = String::from("'");
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\udc{b:02x}"));
        }
    }
    out.push('\'');
    out
}

fn failure<T: std::fmt::Debug>(result: Result<T, Error>) -> (&'static str, String) {
    let err = result.unwrap_err();
    (err.kind(), err.message())
}

#[test]
fn tails_of_files_with_non_utf8_names() {
    let (_tmp, root) = tree();
    let u = utils();
    for name in [&b"\xff.log"[..], b"caf\xe9.log"] {
        let path = join(&root, name);
        assert_eq!(
            u.read_last_n_lines(&path, 2).unwrap(),
            ["bad \u{fffd} byte\n", "last"]
        );
        assert_eq!(
            u.read_last_n_lines(&path, 10).unwrap(),
            ["first\n", "second\n", "bad \u{fffd} byte\n", "last"]
        );
        assert_eq!(
            u.read_last_n_lines_with(&path, 3, 1, DecodeErrors::Ignore)
                .unwrap(),
            ["second\n", "bad  byte\n", "last"]
        );
        assert_eq!(
            failure(u.read_last_n_lines_with(&path, 2, 8192, DecodeErrors::Strict)),
            (
                "UnicodeDecodeError",
                "'utf-8' codec can't decode byte 0xff in position 4: invalid start byte".into()
            )
        );
        assert_eq!(
            u.read_last_n_raw(&path, 3, 8192).unwrap(),
            [
                b"second\r".to_vec(),
                b"bad \xff byte".to_vec(),
                b"last".to_vec()
            ]
        );
        assert_eq!(u.read_last_n_lines(&path, 0).unwrap(), Vec::<String>::new());
        assert_eq!(
            failure(u.read_last_n_lines(&path, -1)),
            ("AssertionError", "n must be non-negative. Got -1".into())
        );
    }
    // Inside a directory whose name is not UTF-8 either, and a UTF-8 name
    // inside it (reached by name through the directory's label).
    let inner = join(&root, b"d\xfe/\xfd.log");
    assert_eq!(u.read_last_n_lines(&inner, 5).unwrap(), ["one\n", "two"]);
    let named = join(&root, b"d\xfe/ok.log");
    assert_eq!(u.read_last_n_lines(&named, 1).unwrap(), ["four"]);
    // A symlink with a UTF-8 name to such a file.
    let link = root.join("link.log");
    std::os::unix::fs::symlink(&inner, &link).unwrap();
    assert_eq!(u.read_last_n_lines(&link, 1).unwrap(), ["two"]);
}

#[test]
fn long_tails_are_read_backwards_in_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let path = join(&tmp.path().canonicalize().unwrap(), b"big\xff.log");
    // About 3.4 MiB: several of the guest's largest (1 MiB) read blocks.
    let lines: Vec<String> = (0..200_000).map(|i| format!("line {i:07}")).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let u = utils();
    for n in [1usize, 100, 150_000] {
        let want: Vec<String> = lines[lines.len() - n..]
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i + 1 < n {
                    format!("{l}\n")
                } else {
                    l.clone()
                }
            })
            .collect();
        assert_eq!(u.read_last_n_lines(&path, n as i64).unwrap(), want, "n={n}");
    }
}

#[test]
fn hashes_of_files_with_non_utf8_names() {
    let (_tmp, root) = tree();
    let u = utils();
    // Larger than the guest's 256 KiB read size, and not a multiple of it.
    let big: Vec<u8> = common::lcg(9, 700_001);
    let big_path = join(&root, b"d\xfe/big\x80.bin");
    std::fs::write(&big_path, &big).unwrap();
    let sha = u.hash_file(&big_path, "sha256").unwrap();
    assert_eq!(
        (sha.name.as_str(), sha.digest_size, sha.block_size),
        ("sha256", 32, 64)
    );
    assert_eq!(sha.digest, Sha256::digest(&big).to_vec());
    let md5 = u.hash_file(&big_path, "MD5").unwrap();
    assert_eq!(
        (md5.name.as_str(), md5.digest),
        ("md5", Md5::digest(&big).to_vec())
    );

    let hello = join(&root, b"hello\xe9.txt");
    std::fs::write(&hello, b"hello world\n").unwrap();
    let shake = u.hash_file_xof(&hello, "shake_128", 8).unwrap();
    assert_eq!(
        (shake.name.as_str(), shake.digest_size, shake.hexdigest()),
        ("shake_128", 0, "37d6c4dad1d36a34".to_string())
    );
    assert_eq!(
        u.hash_file(&hello, "md5").unwrap().hexdigest(),
        "6f5902ac237024bdd0c176cb93063dc4"
    );
    // A bad path wins over a bad name; a good path then reports the name.
    assert_eq!(
        failure(u.hash_file(&hello, "sha_256")),
        ("ValueError", "unsupported hash type sha_256".into())
    );
}

#[test]
fn errors_show_the_callers_path() {
    let (_tmp, root) = tree();
    let u = utils();
    // Directories this process can read are pre-opened under labels (only
    // an unreadable one would be lent as a descriptor).
    let dir = join(&root, b"d\xfe");
    let inner_dir = join(&root, b"d\xfe/sub\xfc");
    std::fs::create_dir(&inner_dir).unwrap();
    for d in [&dir, &inner_dir] {
        assert_eq!(
            failure(u.read_last_n_lines(d, 1)),
            (
                "RuntimeError",
                format!(
                    "Failed to read last 1 lines from {}: [Errno 21] Is a directory: {}",
                    lossy(d),
                    repr(d)
                )
            )
        );
        assert_eq!(u.read_last_n_lines(d, 0).unwrap(), Vec::<String>::new());
        assert_eq!(
            failure(u.hash_file(d, "nope")),
            (
                "IsADirectoryError",
                format!("[Errno 21] Is a directory: {}", repr(d))
            )
        );
    }
    // Through a symlink, messages show the link, as upstream does.
    let link = root.join("dirlink");
    std::os::unix::fs::symlink(&inner_dir, &link).unwrap();
    assert_eq!(
        failure(u.read_last_n_raw(&link, 2, 8192)),
        (
            "RuntimeError",
            format!(
                "Failed to read last 2 lines from {}: [Errno 21] Is a directory: '{}'",
                link.display(),
                link.display()
            )
        )
    );
    let missing = join(&root, b"gone\xff.log");
    assert_eq!(
        failure(u.read_last_n_lines(&missing, 1)),
        (
            "AssertionError",
            format!("File not found: {}", lossy(&missing))
        )
    );
    assert_eq!(
        failure(u.hash_file(&missing, "md5")),
        (
            "FileNotFoundError",
            format!("[Errno 2] No such file or directory: {}", repr(&missing))
        )
    );
}

#[test]
fn lent_descriptors_are_closed_after_each_call() {
    let (_tmp, root) = tree();
    let u = utils();
    let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let path = join(&root, b"\xff.log");
    u.read_last_n_lines(&path, 1).unwrap();
    let before = open_fds();
    for _ in 0..200 {
        u.read_last_n_lines(&path, 1).unwrap();
        u.hash_file(&path, "sha1").unwrap();
    }
    // 400 leaked descriptors would show; other tests' files come and go.
    let after = open_fds();
    assert!(after < before + 100, "{before} -> {after} open descriptors");
}

#[test]
fn strict_directory_policy_refuses_clearly() {
    let (_tmp, root) = tree();
    let strict = Utils::new(Policy {
        files: FileAccess::AllowDirs(vec![root.clone()]),
        ..Policy::default()
    })
    .unwrap();
    let path = join(&root, b"\xff.log");
    let (kind, message) = failure(strict.read_last_n_lines(&path, 1));
    assert_eq!(kind, "PermissionError");
    assert!(message.contains(&repr(&path)), "{message}");
    let (kind, message) = failure(strict.hash_file(&path, "md5"));
    assert_eq!(kind, "PermissionError");
    assert!(message.contains(&repr(&path)), "{message}");
}

fn cli(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skyutils"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

#[test]
fn the_cli_takes_non_utf8_file_arguments() {
    let (_tmp, root) = tree();
    let path = join(&root, b"\xff.log");
    let text = cli(&[
        "read-last-n-lines".as_ref(),
        "-n".as_ref(),
        "2".as_ref(),
        path.as_os_str(),
    ]);
    assert!(text.status.success(), "{text:?}");
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        "bad \u{fffd} byte\nlast\n"
    );
    let hash = cli(&[
        "--json".as_ref(),
        "hash-file".as_ref(),
        "--alg".as_ref(),
        "sha256".as_ref(),
        path.as_os_str(),
    ]);
    let content = std::fs::read(&path).unwrap();
    assert_eq!(json_of(&hash), json!(hex::encode(Sha256::digest(&content))));
    let dir = join(&root, b"d\xfe");
    let err = cli(&[
        "--json".as_ref(),
        "read-last-n-lines".as_ref(),
        "-n".as_ref(),
        "1".as_ref(),
        dir.as_os_str(),
    ]);
    assert!(!err.status.success());
    assert_eq!(
        json_of(&err),
        json!({
            "error": "RuntimeError",
            "message": format!(
                "Failed to read last 1 lines from {}: [Errno 21] Is a directory: {}",
                lossy(&dir),
                repr(&dir)
            ),
        })
    );
}

/// An unreadable file: the host's own open fails, and the guest reports
/// that errno as upstream's `open` would. Root reads anything, so as root
/// the CLI runs as uid/gid 65534 (`setpriv`), like tests/all/conformance.rs.
#[test]
fn an_unreadable_file_reports_permission_denied() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = join(&root, b"secret\xff.log");
    std::fs::write(&path, b"x\ny\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let tail_error = json!({
        "error": "RuntimeError",
        "message": format!(
            "Failed to read last 1 lines from {}: [Errno 13] Permission denied: {}",
            lossy(&path),
            repr(&path)
        ),
    });
    let hash_error = json!({
        "error": "PermissionError",
        "message": format!("[Errno 13] Permission denied: {}", repr(&path)),
    });
    if !common::is_root() {
        let u = utils();
        let as_json = |(kind, message): (&str, String)| json!({"error": kind, "message": message});
        assert_eq!(as_json(failure(u.read_last_n_lines(&path, 1))), tail_error);
        assert_eq!(u.read_last_n_lines(&path, 0).unwrap(), Vec::<String>::new());
        assert_eq!(as_json(failure(u.hash_file(&path, "md5"))), hash_error);
        return;
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("setpriv (util-linux) is needed to test an unreadable file as root");
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = |args: &[&str]| {
        let mut argv: Vec<OsString> = ["--reuid=65534", "--regid=65534", "--clear-groups"]
            .iter()
            .map(OsString::from)
            .collect();
        argv.push(env!("CARGO_BIN_EXE_skyutils").into());
        argv.push("--json".into());
        argv.extend(args.iter().map(OsString::from));
        argv.push(OsString::from_vec(path.as_os_str().as_bytes().to_vec()));
        let output = Command::new(setpriv)
            .args(&argv)
            .env("SKYUTILS_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        json_of(&output)
    };
    assert_eq!(run(&["read-last-n-lines", "-n", "1"]), tail_error);
    assert_eq!(run(&["read-last-n-lines", "-n", "0"]), json!([]));
    assert_eq!(run(&["hash-file", "--alg", "md5"]), hash_error);
}

/// What follows an unnamable file's name (`/x`, `/..`, a trailing slash,
/// `/.`) is resolved by the OS as upstream's `open`/`stat` resolve it: never
/// as the file itself. Expected per upstream: `os.path.exists` fails, so the
/// tails raise "File not found"; `open` and `os.listdir` fail with ENOTDIR.
#[test]
fn paths_through_an_unnamable_file_are_not_that_file() {
    let (_tmp, root) = tree();
    let u = utils();
    for rest in [&b"/x/y"[..], b"/../caf\xe9.log", b"/", b"/."] {
        let mut bytes = join(&root, b"\xff.log").into_os_string().into_vec();
        bytes.extend_from_slice(rest);
        let path = PathBuf::from(OsString::from_vec(bytes));
        assert_eq!(
            failure(u.read_last_n_lines(&path, 1)),
            (
                "AssertionError",
                format!("File not found: {}", lossy(&path))
            ),
            "{path:?}"
        );
        let not_a_dir = (
            "NotADirectoryError",
            format!("[Errno 20] Not a directory: {}", repr(&path)),
        );
        assert_eq!(failure(u.hash_file(&path, "md5")), not_a_dir, "{path:?}");
        assert_eq!(failure(u.estimate_fd_for_directory(&path)), not_a_dir);
        // `os.path.isdir` is false: the mount adds no descriptor term.
        let mounts = [("/a", path.as_path())];
        let _warning = common::low_fd_warning_lock();
        assert!(u.get_max_workers_for_file_mounts(&mounts, None).is_ok());
    }
}
