//! Side-by-side timings of the component against the same Rust code called
//! natively (the guest crate built for the host) and against coreutils.
//! `make bench` runs this and regenerates BENCHMARKS.md from the results.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use md5::Digest as _;
use skyutils::{Number, Policy, Utils};
use skyutils_guest::{files, text};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, OptLevel, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const HEX32: &str = "6f1ed002ab5595859014ebf0951522d9";
const SENTENCE: &str =
    "The quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat k";

fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// A file of `size` bytes made by `fill`, created once and reused.
fn data_file(name: &str, size: u64, fill: impl Fn(&mut dyn Write, u64)) -> PathBuf {
    let path = data_dir().join(name);
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(size) {
        let tmp = path.with_extension("tmp");
        let mut out =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).unwrap());
        fill(&mut out, size);
        out.flush().unwrap();
        drop(out);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn binary_file(name: &str, size: u64) -> PathBuf {
    data_file(name, size, |out, size| {
        let mut x = 1u64;
        let block: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        for _ in 0..size / block.len() as u64 {
            out.write_all(&block).unwrap();
        }
    })
}

/// A log of 100-byte lines.
fn log_file(name: &str, size: u64) -> PathBuf {
    data_file(name, size, |out, size| {
        let mut block = Vec::with_capacity(1 << 20);
        let mut i = 0u64;
        while block.len() < (1 << 20) {
            let line = format!("2026-11-26T19:00:00 INFO replica-{} request {i:>12} served in {:>5} ms padding..\n", i % 3, i % 997);
            block.extend_from_slice(&line.as_bytes()[..100.min(line.len())]);
            if !block.ends_with(b"\n") {
                block.push(b'\n');
            }
            i += 1;
        }
        block.truncate(1 << 20);
        *block.last_mut().unwrap() = b'\n';
        for _ in 0..size / block.len() as u64 {
            out.write_all(&block).unwrap();
        }
    })
}

fn dir_10k() -> PathBuf {
    let dir = data_dir().join("dir10k");
    if std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) != 10_000 {
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..10_000 {
            std::fs::write(dir.join(format!("f{i:05}")), b"").unwrap();
        }
    }
    dir
}

fn utils() -> Utils {
    Utils::new(Policy::default()).unwrap()
}

fn pure_calls(c: &mut Criterion) {
    let u = utils();
    let mut g = c.benchmark_group("pure");
    g.bench_function("base36_encode/native", |b| {
        b.iter(|| text::base36_encode(black_box(HEX32)).unwrap())
    });
    g.bench_function("base36_encode/component", |b| {
        b.iter(|| u.base36_encode(black_box(HEX32)).unwrap())
    });
    g.bench_function("format_float/native", |b| {
        b.iter(|| text::format_float(text::Number::Float(black_box(1234.5678)), 2).unwrap())
    });
    g.bench_function("format_float/component", |b| {
        b.iter(|| {
            u.format_float(Number::Float(black_box(1234.5678)), 2)
                .unwrap()
        })
    });
    // A string in, the same string out, no work in the guest: the floor of
    // a string call through the component (lowering, realloc, lifting,
    // post-return).
    g.bench_function("string_echo/native", |b| {
        b.iter(|| text::truncate_long_string(black_box("abc"), 80, false))
    });
    g.bench_function("string_echo/component", |b| {
        b.iter(|| u.truncate_long_string(black_box("abc"), 80, false).unwrap())
    });
    g.bench_function("truncate_long_string/native", |b| {
        b.iter(|| text::truncate_long_string(black_box(SENTENCE), 35, false))
    });
    g.bench_function("truncate_long_string/component", |b| {
        b.iter(|| {
            u.truncate_long_string(black_box(SENTENCE), 35, false)
                .unwrap()
        })
    });
    g.finish();
}

/// Store data for instantiating the component directly: WASI only (the
/// `host-facts` import is defined as traps; instantiation never calls it).
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn instance_pre(engine: &Engine) -> InstancePre<Bare> {
    let component = Component::new(engine, skyutils::EMBEDDED_COMPONENT).unwrap();
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    // The world's own imports, as traps (`define_unknown_imports_as_traps`
    // looks WASI up by exact version, not the semver match instantiation uses).
    linker.instance("skypilot:utils/types@0.1.0").unwrap();
    let mut facts = linker.instance("skypilot:utils/host-facts@0.1.0").unwrap();
    for name in [
        "logical-cpu-count",
        "affinity-cpu-count",
        "os-cpu-count",
        "memory-total-bytes",
        "nofile-limit",
        "pid-exists",
        "tcp4-port-bindable",
        "read-cgroup-limit",
    ] {
        facts
            .func_new(name, |_, _, _, _| {
                Err(wasmtime::Error::msg(
                    "host facts are not linked in this benchmark",
                ))
            })
            .unwrap();
    }
    linker.instantiate_pre(&component).unwrap()
}

/// A new store (with an empty WASI context) and an instance in it, dropped
/// at the end: the whole per-instance cost.
fn instantiate_once(pre: &InstancePre<Bare>) {
    let state = Bare {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(pre.engine(), state);
    store.set_epoch_deadline(1 << 40);
    black_box(pre.instantiate(&mut store).unwrap());
}

fn instantiation(c: &mut Criterion) {
    let engine = skyutils::engine();
    let wasm = skyutils::EMBEDDED_COMPONENT;
    let artifact = Component::new(engine, wasm).unwrap().serialize().unwrap();
    // The same settings as skyutils' engine, minus the pooling allocator.
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.concurrency_support(false);
    config.cranelift_opt_level(OptLevel::Speed);
    let on_demand = Engine::new(&config).unwrap();
    let pooled_pre = instance_pre(engine);
    let on_demand_pre = instance_pre(&on_demand);
    let reused = utils();
    let fresh = Utils::new(Policy {
        reuse_instances: false,
        ..Policy::default()
    })
    .unwrap();
    let mut g = c.benchmark_group("instantiate");
    g.sample_size(10);
    g.bench_function("compile_from_wasm", |b| {
        b.iter(|| Component::new(engine, black_box(wasm)).unwrap())
    });
    g.bench_function("load_precompiled", |b| {
        // SAFETY: the artifact was serialized just above by the same engine.
        b.iter(|| unsafe { Component::deserialize(engine, black_box(&artifact)).unwrap() })
    });
    g.sample_size(100);
    g.bench_function("instance_pre/pooling", |b| {
        b.iter(|| instantiate_once(&pooled_pre))
    });
    g.bench_function("instance_pre/on_demand", |b| {
        b.iter(|| instantiate_once(&on_demand_pre))
    });
    // A call with host facts and an environment view: in a fresh instance
    // (what every such call cost before instances were reused), and on an
    // idle instance with the same view.
    g.bench_function("is_process_alive/fresh_instance", |b| {
        b.iter(|| fresh.is_process_alive(black_box(0)).unwrap())
    });
    g.bench_function("is_process_alive/reused_instance", |b| {
        b.iter(|| reused.is_process_alive(black_box(0)).unwrap())
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let file = binary_file("random-256MiB.bin", 256 << 20);
    let path = file.to_str().unwrap();
    let u = utils();
    let mut g = c.benchmark_group("hash_256MiB");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (alg, tool) in [("sha256", "sha256sum"), ("md5", "md5sum")] {
        g.bench_function(format!("{alg}/component"), |b| {
            b.iter(|| u.hash_file(path, alg).unwrap())
        });
        g.bench_function(format!("{alg}/native"), |b| {
            b.iter(|| {
                files::hash_file(path, alg)
                    .unwrap()
                    .hexdigest(None)
                    .unwrap()
            })
        });
        g.bench_function(format!("{alg}/{tool}"), |b| {
            b.iter(|| {
                assert!(Command::new(tool)
                    .arg(path)
                    .output()
                    .unwrap()
                    .status
                    .success())
            })
        });
    }
    // The RustCrypto crates directly, to separate file I/O from hashing.
    let data = std::fs::read(&file).unwrap();
    g.bench_function("sha256/crate_in_memory", |b| {
        b.iter(|| sha2::Sha256::digest(black_box(&data)))
    });
    g.bench_function("md5/crate_in_memory", |b| {
        b.iter(|| md5::Md5::digest(black_box(&data)))
    });
    g.finish();
}

fn tailing(c: &mut Criterion) {
    let small = log_file("log-100MiB.log", 100 << 20);
    let big = log_file("log-1GiB.log", 1 << 30);
    let u = utils();
    let mut g = c.benchmark_group("read_last_n_lines");
    for (label, file) in [("100MiB", &small), ("1GiB", &big)] {
        let path = file.to_str().unwrap();
        for n in [10, 1000] {
            g.bench_function(format!("{label}_n{n}/component"), |b| {
                b.iter(|| u.read_last_n_lines(path, n).unwrap())
            });
            g.bench_function(format!("{label}_n{n}/native"), |b| {
                b.iter(|| {
                    files::read_last_n_lines(path, n, 8192, files::DecodeErrors::Replace).unwrap()
                })
            });
        }
    }
    // The floor of a tail through the sandbox: the native tail plus the
    // system calls the sandbox adds to one call (the host's `lstat` of the
    // path and the `stat` that identifies the directory it pre-opens; the
    // guest's open, two stats, read and close are the native tail's own).
    #[cfg(target_os = "linux")]
    {
        let path = big.to_str().unwrap();
        let dir = big.parent().unwrap();
        g.bench_function("1GiB_n10/native_with_sandbox_syscalls", |b| {
            b.iter(|| {
                black_box(std::fs::symlink_metadata(path).unwrap());
                black_box(std::fs::metadata(dir).unwrap());
                files::read_last_n_lines(path, 10, 8192, files::DecodeErrors::Replace).unwrap()
            })
        });
    }
    // The guest's four WASI operations for this tail (`open-at`, `stat`, one
    // 8 KiB `read` at an offset, the close) called on wasmtime-wasi from
    // Rust, without wasm, and the same system calls made natively: what
    // wasmtime-wasi adds to each operation (its resource table, the
    // async-to-sync bridge, `open-at`'s own `statx`, the read's new buffer).
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        use wasmtime::component::Resource;
        use wasmtime_wasi::filesystem::WasiFilesystemView;
        use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as _;
        use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
            DescriptorFlags, HostDescriptor, OpenFlags, PathFlags,
        };
        let dir = big.parent().unwrap();
        let name = big.file_name().unwrap().to_str().unwrap();
        let mut wasi = WasiCtx::builder();
        wasi.allow_blocking_current_thread(true);
        wasi.preopened_dir(dir, "/d", wasmtime_wasi::FsPerms::ReadOnly)
            .unwrap();
        let mut state = Bare {
            wasi: wasi.build(),
            table: ResourceTable::new(),
        };
        let (preopen, _) = state.filesystem().get_directories().unwrap().remove(0);
        g.bench_function("1GiB_n10/wasi_operations", |b| {
            b.iter(|| {
                let mut fs = state.filesystem();
                let at = Resource::new_borrow(preopen.rep());
                let (path, read) = (PathFlags::SYMLINK_FOLLOW, DescriptorFlags::READ);
                let fd = fs
                    .open_at(at, path, name.to_string(), OpenFlags::empty(), read)
                    .unwrap();
                let size = fs.stat(Resource::new_borrow(fd.rep())).unwrap().size;
                let block = fs.read(Resource::new_borrow(fd.rep()), 8192, size - 8192);
                black_box(block.unwrap());
                HostDescriptor::drop(&mut fs, fd).unwrap();
            })
        });
        g.bench_function("1GiB_n10/native_operations", |b| {
            b.iter(|| {
                let file = std::fs::File::open(&big).unwrap();
                let size = file.metadata().unwrap().len();
                let mut block = vec![0u8; 8192];
                black_box(file.read_at(&mut block, size - 8192).unwrap());
                black_box(block);
            })
        });
    }
    g.finish();
}

fn directories(c: &mut Criterion) {
    let dir = dir_10k();
    let path = dir.to_str().unwrap();
    let u = utils();
    let mounts = vec![("/remote".to_string(), path.to_string())];
    let mut g = c.benchmark_group("dir_10k");
    g.bench_function("estimate_fd_for_directory/component", |b| {
        b.iter(|| u.estimate_fd_for_directory(path).unwrap())
    });
    g.bench_function("estimate_fd_for_directory/native", |b| {
        b.iter(|| files::estimate_fd_for_directory(path).unwrap())
    });
    // What wasmtime-wasi 48's `read-directory` does on the host before the
    // guest sees one entry: list the directory and stat every entry (for
    // its type). The component cannot be faster than this floor.
    g.bench_function(
        "estimate_fd_for_directory/native_listing_with_metadata",
        |b| {
            b.iter(|| {
                let mut n = 0usize;
                for entry in std::fs::read_dir(path).unwrap() {
                    black_box(entry.unwrap().metadata().unwrap().file_type());
                    n += 1;
                }
                n
            })
        },
    );
    g.bench_function("get_max_workers_for_file_mounts/component", |b| {
        b.iter(|| u.get_max_workers_for_file_mounts(&mounts, None).unwrap())
    });
    g.finish();
}

criterion_group!(
    benches,
    pure_calls,
    instantiation,
    hashing,
    tailing,
    directories
);
criterion_main!(benches);
