//! Cross-host conformance: every vector of `tests/vectors/vectors.json` that
//! is not Python-only runs through the real component in the Rust host, with
//! the vector's environment, fake host facts, fake cgroup tree and fixture
//! files applied.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use skyutils::{DecodeErrors, Error, FileAccess, Number, Policy, Utils};

use crate::common::{self, build_tree, float, int, string, subst, FakeFacts};

const ENV_VARS: [&str; 4] = [
    "SKYPILOT_POD_CPU_CORE_LIMIT",
    "SKYPILOT_POD_MEMORY_GB_LIMIT",
    "SKYPILOT_POD_MEMORY_BYTES_LIMIT",
    "SKYPILOT_DEBUG",
];

/// Positional argument `i`, else keyword `name`.
fn arg<'a>(
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
    i: usize,
    name: &str,
) -> Option<&'a Value> {
    args.get(i).or_else(|| kwargs.get(name))
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| if v.is_null() { None } else { Some(string(v)) })
}

fn raised(e: Error) -> Value {
    match e {
        Error::Call(c) => json!({"raises": c.python_class(), "message": c.message()}),
        other => json!({"raises": "HostError", "message": other.to_string()}),
    }
}

/// Integral f64 as a JSON integer (or `$int` when beyond 2^53).
fn int_value(x: f64) -> Value {
    let text = format!("{x:.0}");
    if x.abs() <= 9007199254740991.0 {
        json!(x as i64)
    } else {
        json!({"$int": text})
    }
}

/// Runs one vector's call and returns its outcome in the `expect` format.
fn outcome(utils: &Utils, v: &Value, tmp: &str) -> Value {
    let args = subst(&v["args"], tmp);
    let kwargs = subst(&v["kwargs"], tmp);
    let (args, kwargs) = (
        args.as_array().unwrap().as_slice(),
        kwargs.as_object().unwrap(),
    );
    let a = |i, name| arg(args, kwargs, i, name);
    let result: Result<Value, Error> = match v["function"].as_str().unwrap() {
        "read_last_n_lines" => {
            let errors = match a(4, "errors").and_then(Value::as_str).unwrap_or("replace") {
                "strict" => DecodeErrors::Strict,
                "ignore" => DecodeErrors::Ignore,
                "replace" => DecodeErrors::Replace,
                other => panic!("errors={other} is Python-only"),
            };
            if let Some(enc) = a(3, "encoding") {
                assert_eq!(
                    enc.as_str(),
                    Some("utf-8"),
                    "non-UTF-8 encodings are Python-only"
                );
            }
            let chunk = a(2, "chunk_size").map(int).unwrap_or(8192);
            utils
                .read_last_n_lines_with(
                    string(a(0, "file_path").unwrap()),
                    int(a(1, "n").unwrap()),
                    chunk,
                    errors,
                )
                .map(|lines| json!(lines))
        }
        "hash_file" => {
            let path = string(a(0, "path").unwrap());
            let alg = string(a(1, "hash_alg").unwrap());
            let xof = v["expect"].get("xof_length").and_then(Value::as_u64);
            let hashed = match xof {
                Some(len) => utils.hash_file_xof(&path, &alg, len as u32),
                None => utils.hash_file(&path, &alg),
            };
            return match hashed {
                Ok(h) => {
                    let mut out = json!({"hexdigest": h.hexdigest(), "name": h.name,
                        "digest_size": h.digest_size, "block_size": h.block_size});
                    if let Some(len) = xof {
                        out["xof_length"] = json!(len);
                    }
                    out
                }
                Err(e) => raised(e),
            };
        }
        "find_free_port" => utils
            .find_free_port(int(a(0, "start_port").unwrap()))
            .map(|p| json!(p)),
        "base36_encode" => utils
            .base36_encode(&string(a(0, "hex_str").unwrap()))
            .map(|s| json!(s)),
        "format_float" => {
            let num = a(0, "num").unwrap();
            let num = if num.is_i64() || num.get("$int").is_some() {
                Number::Int(int(num))
            } else {
                Number::Float(float(num))
            };
            let precision = a(1, "precision").map(int).unwrap_or(1);
            utils.format_float(num, precision).map(|s| json!(s))
        }
        "truncate_long_string" => {
            let s = string(a(0, "s").unwrap());
            let max_length = a(1, "max_length").map(int).unwrap_or(35);
            let middle = a(2, "truncate_middle")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            utils
                .truncate_long_string(&s, max_length, middle)
                .map(|s| json!(s))
        }
        "get_cpu_count" => utils
            .get_cpu_count()
            .map(|c| c.map(int_value).unwrap_or(Value::Null)),
        "get_mem_size_gb" => {
            return match utils.get_mem_size_gb() {
                Ok(x) => json!({"return_float_bits": x.to_bits()}),
                Err(e) => raised(e),
            }
        }
        "get_parallel_threads" => utils
            .get_parallel_threads(opt_str(a(0, "cloud_str")).as_deref())
            .map(|n| json!(n)),
        "get_max_workers_for_file_mounts" => {
            let mounts: Vec<(String, String)> = a(0, "common_file_mounts")
                .unwrap()
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), string(v)))
                .collect();
            let _warning = common::low_fd_warning_lock();
            skyutils::reset_low_fd_warning();
            return match utils
                .get_max_workers_for_file_mounts(&mounts, opt_str(a(1, "cloud_str")).as_deref())
            {
                Ok(w) => json!({"return": w.count, "warning": w.warning}),
                Err(e) => raised(e),
            };
        }
        "is_process_alive" => utils
            .is_process_alive(int(a(0, "pid").unwrap()))
            .map(|b| json!(b)),
        "estimate_fd_for_directory" => utils
            .estimate_fd_for_directory(string(a(0, "path").unwrap()))
            .map(|n| json!(n)),
        other => panic!("unknown function {other}"),
    };
    match result {
        Ok(value) => json!({"return": value}),
        Err(e) => raised(e),
    }
}

/// The expected outcome in the form `outcome` produces.
fn expected(v: &Value, tmp: &str) -> Value {
    let e = subst(&v["expect"], tmp);
    if let Some(r) = e.get("repr") {
        let x: f64 = r.as_str().unwrap().parse().expect("float repr");
        return json!({"return_float_bits": x.to_bits()});
    }
    if let Some(ret) = e.get("return") {
        if v["function"] == "get_cpu_count" {
            let normalized = match ret.get("$int") {
                Some(s) if s.as_str().unwrap().len() <= 15 => {
                    json!(s.as_str().unwrap().parse::<i64>().unwrap())
                }
                _ => ret.clone(),
            };
            return json!({"return": normalized});
        }
        if let Some(Value::String(s)) = ret.get("$pattern").map(|_| Value::String(string(ret))) {
            return json!({"return": s});
        }
        if let Some(items) = ret.as_array() {
            let items: Vec<Value> = items.iter().map(|x| json!(string(x))).collect();
            return json!({"return": items});
        }
    }
    e
}

/// A vector runs in this process unless it needs an unprivileged user for a
/// real permission check, which the CLI does under `setpriv` (see below).
fn needs_unprivileged(v: &Value) -> bool {
    common::requires(v).contains("non_root") && v.get("files").is_some()
}

fn policy_for(v: &Value, cgroup_root: Option<&Path>) -> Policy {
    let env: Vec<(String, String)> = v
        .get("env")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Policy {
        files: FileAccess::PerCall,
        env_allow: ENV_VARS.iter().map(|s| s.to_string()).collect(),
        env_override: Some(env),
        cgroup_root: cgroup_root.map(Path::to_path_buf),
        ..Policy::default()
    }
}

fn run_in_process(v: &Value) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().to_str().unwrap().to_string();
    if let Some(files) = v.get("files").and_then(Value::as_object) {
        build_tree(tmp.path(), files);
    }
    let cgroup = tempfile::tempdir().unwrap();
    let cgroup_root = v.get("cgroup").map(|c| {
        build_tree(cgroup.path(), c["files"].as_object().unwrap());
        cgroup.path()
    });
    let utils = Utils::new(policy_for(v, cgroup_root))
        .unwrap()
        .with_facts(Arc::new(FakeFacts::new(v.get("host"))));
    let got = outcome(&utils, v, &tmp_path);
    let want = expected(v, &tmp_path);
    if got == want {
        Ok(())
    } else {
        Err(format!("{}\n    want {want}\n    got  {got}", v["id"]))
    }
}

#[test]
fn every_component_vector_passes() {
    let vectors = common::vectors();
    let selected: Vec<&Value> = vectors
        .iter()
        .filter(|v| {
            !v.get("python_only")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .filter(|v| !(common::is_root() && needs_unprivileged(v)))
        .collect();
    let failures: Vec<String> = selected
        .iter()
        .filter_map(|v| run_in_process(v).err())
        .collect();
    report("in process", selected.len(), &failures);
    assert!(
        selected.len() >= 950,
        "only {} vectors selected",
        selected.len()
    );
}

/// The CLI's arguments for a vector (only the functions of unprivileged vectors).
fn cli_args(v: &Value, tmp: &str) -> Vec<String> {
    let args = subst(&v["args"], tmp);
    let a = args.as_array().unwrap();
    let s = |i: usize| string(&a[i]);
    let mut out: Vec<String> = match v["function"].as_str().unwrap() {
        "read_last_n_lines" => vec![
            "read-last-n-lines".into(),
            s(0),
            "-n".into(),
            a[1].to_string(),
        ],
        "hash_file" => vec!["hash-file".into(), s(0), "--alg".into(), s(1)],
        "estimate_fd_for_directory" => vec!["estimate-fd".into(), s(0)],
        "get_max_workers_for_file_mounts" => {
            let mut out = vec!["max-workers-for-file-mounts".to_string()];
            for (dst, src) in a[0].as_object().unwrap() {
                out.push("--mount".into());
                out.push(format!("{dst}={}", string(src)));
            }
            out
        }
        other => panic!("no CLI mapping for {other}"),
    };
    out.push("--json".into());
    out
}

/// Vectors whose expected result depends on real permission checks run the
/// `skyutils` CLI as uid/gid 65534 on real fixture files.
#[test]
fn unprivileged_vectors_pass_through_the_cli() {
    if !common::is_root() {
        // Not root: the in-process test above already ran these vectors.
        return;
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let setpriv =
        setpriv.expect("setpriv (util-linux) is needed to run the non_root vectors as root");
    // The unprivileged user's own cache directory (a shared, world-writable
    // one would be refused: every call would compile the component again).
    let cache = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(cache.path(), Some(65534), Some(65534)).unwrap();
    let vectors = common::vectors();
    let selected: Vec<&Value> = vectors.iter().filter(|v| needs_unprivileged(v)).collect();
    let mut failures = Vec::new();
    for v in &selected {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        build_tree(tmp.path(), v["files"].as_object().unwrap());
        let tmp_path = tmp.path().to_str().unwrap();
        let output = Command::new(setpriv)
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_skyutils"),
            ])
            .args(cli_args(v, tmp_path))
            .env("SKYUTILS_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        let got: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let want = subst(&v["expect"], tmp_path);
        let got = match got.get("error") {
            Some(class) => json!({"raises": class, "message": got["message"]}),
            None if v["function"] == "get_max_workers_for_file_mounts" => {
                json!({"return": got, "warning": want.get("warning")})
            }
            None => json!({"return": got}),
        };
        if got != want {
            failures.push(format!("{}\n    want {want}\n    got  {got}", v["id"]));
        }
        // Let root remove what the unprivileged fixtures locked.
        let _ = Command::new("chmod")
            .args(["-R", "u+rwx", tmp_path])
            .status();
    }
    report("unprivileged, CLI", selected.len(), &failures);
    assert_eq!(selected.len(), 7, "the non_root vectors with fixture files");
}

/// A path through a directory the caller may not search (`noperm/../f`)
/// fails as upstream's does: `realpath(3)` drops `noperm/..` after checking
/// only that `noperm` is a directory, so the grant asks the OS's `stat`
/// first. Run as uid 65534 (root may search anything).
#[test]
fn a_path_through_an_unsearchable_directory_fails_as_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(tmp.path().join("five.txt"), "l1\nl2\nl3\nl4\nl5\n").unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let noperm = tmp.path().join("noperm");
    std::fs::create_dir(&noperm).unwrap();
    std::fs::set_permissions(&noperm, std::fs::Permissions::from_mode(0o000)).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let root = common::is_root();
    if root {
        std::os::unix::fs::chown(cache.path(), Some(65534), Some(65534)).unwrap();
    }
    let dir = tmp.path().to_str().unwrap();
    let run = |args: &[String]| -> Value {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_skyutils"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_skyutils"))
        };
        let out = cmd
            .args(args)
            .arg("--json")
            .env("SKYUTILS_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let file = format!("{dir}/noperm/../five.txt");
    let sub = format!("{dir}/noperm/../sub");
    let cases = [
        (
            vec![
                "read-last-n-lines".into(),
                "-n".into(),
                "2".into(),
                file.clone(),
            ],
            json!({"error": "AssertionError", "message": format!("File not found: {file}")}),
        ),
        (
            vec!["hash-file".into(), file.clone()],
            json!({"error": "PermissionError", "message": format!("[Errno 13] Permission denied: '{file}'")}),
        ),
        (
            vec!["estimate-fd".into(), sub.clone()],
            json!({"error": "PermissionError", "message": format!("[Errno 13] Permission denied: '{sub}'")}),
        ),
    ];
    for (args, want) in cases {
        assert_eq!(run(&args), want, "{args:?}");
    }
    // The same file by a plain path still reads.
    let plain = vec![
        "read-last-n-lines".into(),
        "-n".into(),
        "2".into(),
        format!("{dir}/five.txt"),
    ];
    assert_eq!(run(&plain), json!(["l4\n", "l5"]));
    // A directory that may be searched but not read: its files read, by a
    // plain path or through `..`, and listing it fails as upstream's does.
    let search_only = tmp.path().join("search-only");
    std::fs::create_dir(&search_only).unwrap();
    std::fs::write(search_only.join("f.txt"), "a\nb\nc\n").unwrap();
    std::fs::set_permissions(&search_only, std::fs::Permissions::from_mode(0o311)).unwrap();
    let tail = |p: String| vec!["read-last-n-lines".into(), "-n".into(), "2".into(), p];
    assert_eq!(
        run(&tail(format!("{dir}/search-only/f.txt"))),
        json!(["b\n", "c"])
    );
    assert_eq!(
        run(&tail(format!("{dir}/sub/../search-only/f.txt"))),
        json!(["b\n", "c"])
    );
    let listed = format!("{dir}/search-only");
    assert_eq!(
        run(&["estimate-fd".into(), listed.clone()]),
        json!({"error": "PermissionError", "message": format!("[Errno 13] Permission denied: '{listed}'")})
    );
    std::fs::set_permissions(&search_only, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&noperm, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Prints a run's summary (`make test` shows it) and fails with every
/// failing vector.
fn report(run: &str, total: usize, failures: &[String]) {
    println!(
        "conformance ({run}): {} passed, {} failed",
        total - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
