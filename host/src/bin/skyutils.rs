//! `skyutils`: SkyPilot's twelve utility functions, run in the sandboxed
//! WebAssembly component.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use skyutils::{Capability, DecodeErrors, Error, FileAccess, Number, Policy, Utils};

#[derive(Parser)]
#[command(
    name = "skyutils",
    version,
    about = "SkyPilot's utility functions in a sandboxed WebAssembly component"
)]
struct Cli {
    /// Print the result (or the error) as one JSON value.
    #[arg(long, global = true)]
    json: bool,
    /// Run another component implementing the skypilot:utils world.
    #[arg(long, global = true, value_name = "PATH")]
    component: Option<PathBuf>,
    /// Strict file access: grant only these directories (repeatable).
    #[arg(long = "allow-dir", global = true, value_name = "DIR")]
    allow_dirs: Vec<PathBuf>,
    /// Deny a host capability (repeatable): cpu, memory, file-limits, processes, network.
    #[arg(long = "deny", global = true, value_name = "CAPABILITY", value_parser = parse_capability)]
    deny: Vec<Capability>,
    /// Wall-clock limit per call, e.g. 500ms, 2s, 1m [default: none; 30s with --component].
    #[arg(long, global = true, value_parser = parse_duration)]
    deadline: Option<Duration>,
    /// Linear-memory limit per call, e.g. 64MiB, 1GiB [default: 4GiB, the wasm32
    /// maximum; 512MiB with --component].
    #[arg(long, global = true, value_parser = parse_size)]
    memory: Option<usize>,
    /// Fuel budget per call (about one unit per wasm instruction) [default: unmetered].
    #[arg(long, global = true)]
    fuel: Option<u64>,
    /// Largest result a call may return, e.g. 1MiB [default: none; 64MiB with --component].
    #[arg(long, global = true, value_parser = parse_size)]
    max_output: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Errors {
    Strict,
    Replace,
    Ignore,
}

#[derive(Subcommand)]
enum Command {
    /// The last N lines of a file (read backwards from the end).
    ReadLastNLines {
        file: PathBuf,
        #[arg(short = 'n', default_value_t = 20, allow_negative_numbers = true)]
        n: i64,
        #[arg(long, default_value_t = 8192, allow_negative_numbers = true)]
        chunk_size: i64,
        #[arg(long, value_enum, default_value = "replace")]
        errors: Errors,
    },
    /// A file's digest (hex; --raw writes the raw bytes).
    HashFile {
        file: PathBuf,
        #[arg(long, default_value = "sha256")]
        alg: String,
        /// Digest length in bytes, required for shake_128/shake_256.
        #[arg(long)]
        length: Option<u32>,
        #[arg(long)]
        raw: bool,
    },
    /// A hex number in base 36.
    Base36Encode {
        #[arg(allow_hyphen_values = true)]
        hex: String,
    },
    /// A number in fixed notation.
    FormatFloat {
        #[arg(allow_hyphen_values = true)]
        num: String,
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        precision: i64,
    },
    /// A string shortened with "...".
    TruncateLongString {
        #[arg(allow_hyphen_values = true)]
        s: String,
        #[arg(long, default_value_t = 35, allow_negative_numbers = true)]
        max_length: i64,
        #[arg(long)]
        middle: bool,
    },
    /// The first bindable TCP port from START.
    FindFreePort {
        #[arg(allow_negative_numbers = true)]
        start: i64,
    },
    /// CPUs available (env override, affinity, cgroup quota).
    CpuCount,
    /// Memory available in GiB (env override, cgroup limit).
    MemSizeGb,
    /// Threads for parallel work.
    ParallelThreads {
        #[arg(long)]
        cloud: Option<String>,
    },
    /// Whether a process exists.
    IsProcessAlive {
        #[arg(allow_negative_numbers = true)]
        pid: i64,
    },
    /// Workers for syncing file mounts.
    MaxWorkersForFileMounts {
        /// DST=SRC (repeatable); SRC may be any path, UTF-8 or not.
        #[arg(long = "mount", value_name = "DST=SRC")]
        mounts: Vec<OsString>,
        #[arg(long)]
        cloud: Option<String>,
    },
    /// 5 x the number of entries of a directory.
    EstimateFd { dir: PathBuf },
    /// A summary of what the component sees on this machine.
    Sysinfo,
}

fn parse_capability(s: &str) -> Result<Capability, String> {
    Capability::from_name(s).ok_or_else(|| {
        let names: Vec<_> = Capability::ALL.iter().map(|c| c.name()).collect();
        format!("unknown capability '{s}' (one of: {})", names.join(", "))
    })
}

fn split_unit(s: &str) -> (&str, &str) {
    let at = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..at], s[at..].trim())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = split_unit(s);
    let value: f64 = num.parse().map_err(|_| format!("bad duration '{s}'"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in '{s}' (ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn parse_size(s: &str) -> Result<usize, String> {
    let (num, unit) = split_unit(s);
    let value: usize = num.parse().map_err(|_| format!("bad size '{s}'"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("bad size unit in '{s}' (B, KiB, MiB, GiB)")),
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("size '{s}' too large"))
}

/// A number argument as Python would see it: an int, or a float.
fn parse_number(s: &str) -> Result<Number, String> {
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Number::Int(i));
    }
    skyutils_common::pynum::parse_float(s)
        .map(Number::Float)
        .ok_or_else(|| format!("not a number: {s}"))
}

/// `DST=SRC` split at the first `=`: the destination is text, the source a
/// host path (bytes on Unix, so any file name works).
fn split_mount(m: &OsStr) -> Result<(String, PathBuf), Error> {
    let bytes = m.as_encoded_bytes();
    let bad = || {
        Error::Call(skyutils::CallError::Value(format!(
            "--mount expects DST=SRC, got {}",
            m.to_string_lossy()
        )))
    };
    let at = bytes.iter().position(|&b| b == b'=').ok_or_else(bad)?;
    let dst = std::str::from_utf8(&bytes[..at]).map_err(|_| bad())?;
    // SAFETY: both halves of an `OsStr` split at an ASCII byte are valid
    // encoded `OsStr` bytes (`as_encoded_bytes`' documented contract).
    let src = unsafe { OsStr::from_encoded_bytes_unchecked(&bytes[at + 1..]) };
    Ok((dst.to_string(), PathBuf::from(src)))
}

/// `int` text of an integral f64 (exact, any size).
fn int_text(x: f64) -> String {
    format!("{x:.0}")
}

/// What a command produced: plain text for people, a JSON value for `--json`.
struct Output {
    text: String,
    json: Value,
}

fn out(text: impl Into<String>, json: Value) -> Output {
    Output {
        text: text.into(),
        json,
    }
}

fn run(cli: &Cli, utils: &Utils) -> Result<Output, Error> {
    Ok(match &cli.command {
        Command::ReadLastNLines {
            file,
            n,
            chunk_size,
            errors,
        } => {
            let errors = match errors {
                Errors::Strict => DecodeErrors::Strict,
                Errors::Replace => DecodeErrors::Replace,
                Errors::Ignore => DecodeErrors::Ignore,
            };
            let lines = utils.read_last_n_lines_with(file, *n, *chunk_size, errors)?;
            // Every line but the last ends in '\n'; the last never does.
            out(lines.concat(), json!(lines))
        }
        Command::HashFile {
            file,
            alg,
            length,
            raw,
        } => {
            let hash = match length {
                Some(len) => utils.hash_file_xof(file, alg, *len)?,
                None => utils.hash_file(file, alg)?,
            };
            if *raw && !cli.json {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&hash.digest);
                return Ok(out(String::new(), Value::Null));
            }
            let hex = hash.hexdigest();
            out(format!("{hex}  {}", file.display()), json!(hex))
        }
        Command::Base36Encode { hex } => {
            let s = utils.base36_encode(hex)?;
            out(s.clone(), json!(s))
        }
        Command::FormatFloat { num, precision } => {
            let num = parse_number(num).map_err(|m| Error::Call(skyutils::CallError::Value(m)))?;
            let s = utils.format_float(num, *precision)?;
            out(s.clone(), json!(s))
        }
        Command::TruncateLongString {
            s,
            max_length,
            middle,
        } => {
            let r = utils.truncate_long_string(s, *max_length, *middle)?;
            out(r.clone(), json!(r))
        }
        Command::FindFreePort { start } => {
            let port = utils.find_free_port(*start)?;
            out(port.to_string(), json!(port))
        }
        Command::CpuCount => match utils.get_cpu_count()? {
            Some(n) => out(
                int_text(n),
                serde_json::from_str(&int_text(n)).unwrap_or(json!(n)),
            ),
            None => out("None", Value::Null),
        },
        Command::MemSizeGb => {
            let gb = utils.get_mem_size_gb()?;
            out(format!("{gb:?}"), json!(gb))
        }
        Command::ParallelThreads { cloud } => {
            let n = utils.get_parallel_threads(cloud.as_deref())?;
            out(n.to_string(), json!(n))
        }
        Command::IsProcessAlive { pid } => {
            let alive = utils.is_process_alive(*pid)?;
            out(if alive { "True" } else { "False" }, json!(alive))
        }
        Command::MaxWorkersForFileMounts { mounts, cloud } => {
            let mounts = mounts
                .iter()
                .map(|m| split_mount(m))
                .collect::<Result<Vec<_>, _>>()?;
            let workers = utils.get_max_workers_for_file_mounts(&mounts, cloud.as_deref())?;
            if let Some(w) = &workers.warning {
                eprintln!("WARNING: {w}");
            }
            out(workers.count.to_string(), json!(workers.count))
        }
        Command::EstimateFd { dir } => {
            let n = utils.estimate_fd_for_directory(dir)?;
            out(n.to_string(), json!(n))
        }
        Command::Sysinfo => {
            let cpus = utils.get_cpu_count()?;
            let mem = utils.get_mem_size_gb()?;
            let threads = utils.get_parallel_threads(None)?;
            let k8s = utils.get_parallel_threads(Some("kubernetes"))?;
            let workers = utils.get_max_workers_for_file_mounts::<&str, &str>(&[], None)?;
            let alive = utils.is_process_alive(i64::from(std::process::id()))?;
            let cpu_text = cpus.map(int_text).unwrap_or_else(|| "None".into());
            let text = format!(
                "cpu_count: {cpu_text}\nmem_size_gb: {mem:?}\nparallel_threads: {threads} (kubernetes: {k8s})\n\
                 max_workers_for_file_mounts: {}\nthis process alive: {alive}\ncomponent cache: {}",
                workers.count,
                skyutils::cache_dir().map(|d| d.display().to_string()).unwrap_or_else(|| "none".into())
            );
            out(
                text,
                json!({"cpu_count": cpus, "mem_size_gb": mem, "parallel_threads": threads,
                       "parallel_threads_kubernetes": k8s, "max_workers_for_file_mounts": workers.count}),
            )
        }
    })
}

/// Prints `line` to stdout; a reader that went away (`| head -1`) ends the
/// output quietly instead of a panic.
fn print_line(line: &dyn std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The packaged component runs as the drop-in (no limits upstream lacks);
    // another component gets the plugin bounds unless flags say otherwise.
    let base = match &cli.component {
        Some(_) => Policy::plugin(),
        None => Policy::default(),
    };
    let policy = Policy {
        files: if cli.allow_dirs.is_empty() {
            FileAccess::PerCall
        } else {
            FileAccess::AllowDirs(cli.allow_dirs.clone())
        },
        capabilities: Capability::ALL
            .into_iter()
            .filter(|c| !cli.deny.contains(c))
            .collect(),
        deadline: cli.deadline.or(base.deadline),
        memory_limit: cli.memory.unwrap_or(base.memory_limit),
        fuel: cli.fuel.or(base.fuel),
        max_output: cli.max_output.or(base.max_output),
        ..base
    };
    let utils = match &cli.component {
        Some(path) => std::fs::read(path)
            .map_err(|e| Error::Load(format!("{}: {e}", path.display())))
            .and_then(|wasm| Utils::with_component(&wasm, policy)),
        None => Utils::new(policy),
    };
    match utils.and_then(|u| run(&cli, &u)) {
        Ok(output) => {
            if cli.json {
                print_line(&output.json);
            } else if !output.text.is_empty() {
                print_line(&output.text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if cli.json {
                print_line(&json!({"error": e.kind(), "message": e.message()}));
            } else {
                eprintln!("skyutils: {}: {}", e.kind(), e.message());
            }
            ExitCode::FAILURE
        }
    }
}
