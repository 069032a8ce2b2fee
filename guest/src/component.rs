//! Glue between the WIT world `skypilot:utils/utils` and the plain Rust
//! functions of this crate (built only for `wasm32`).

use std::cell::RefCell;

use crate::error::{Error, OsError};
use crate::files;
use crate::system::{CgroupController, CgroupLimit, Context, Facts, Limit};
use crate::text;

wit_bindgen::generate!({
    path: "../wit",
    world: "utils",
    // The WASI types in the `opened-files` exports are the ones `wasip2` (and std)
    // use, so a host-opened descriptor is read with `wasip2`'s calls.
    with: {
        "wasi:filesystem/types@0.2.12": wasip2::filesystem::types,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
    },
});

use exports::skypilot::utils::files as wit_files;
use exports::skypilot::utils::opened_files as wit_opened;
use exports::skypilot::utils::system as wit_system;
use exports::skypilot::utils::tails as wit_tails;
use exports::skypilot::utils::text as wit_text;
use skypilot::utils::host_facts;
use skypilot::utils::types as wit;

struct Component;

export!(Component);

fn os_error(os: OsError) -> wit::OsError {
    wit::OsError {
        message: os.message,
        errno: os.errno,
        strerror: os.strerror,
        filename: os.filename,
    }
}

impl From<Error> for wit::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Value(m) => wit::Error::ValueError(m),
            Error::Overflow(m) => wit::Error::OverflowError(m),
            Error::Type(m) => wit::Error::TypeError(m),
            Error::Assertion(m) => wit::Error::AssertionError(m),
            Error::Runtime { message, cause } => wit::Error::RuntimeError(wit::RuntimeFailure {
                message,
                cause: cause.map(os_error),
            }),
            Error::UnicodeDecode(m) => wit::Error::UnicodeDecodeError(m),
            Error::UnsupportedHash(m) => wit::Error::UnsupportedHash(m),
            Error::FileNotFound(os) => wit::Error::FileNotFound(os_error(os)),
            Error::PermissionDenied(os) => wit::Error::PermissionDenied(os_error(os)),
            Error::NotADirectory(os) => wit::Error::NotADirectory(os_error(os)),
            Error::IsADirectory(os) => wit::Error::IsADirectory(os_error(os)),
            Error::Os(os) => wit::Error::OsError(os_error(os)),
            Error::CapabilityDenied(m) => wit::Error::CapabilityDenied(m),
        }
    }
}

type WitResult<T> = Result<T, wit::Error>;

impl wit_text::Guest for Component {
    fn base36_encode(hex_str: String) -> WitResult<String> {
        Ok(text::base36_encode(&hex_str)?)
    }

    fn format_float(num: wit_text::Number, precision: i64) -> WitResult<String> {
        let num = match num {
            wit_text::Number::Int(i) => text::Number::Int(i),
            wit_text::Number::Float(x) => text::Number::Float(x),
        };
        Ok(text::format_float(num, precision)?)
    }

    fn truncate_long_string(s: String, max_length: i64, truncate_middle: bool) -> String {
        text::truncate_long_string(&s, max_length, truncate_middle)
    }
}

/// The `hasher` resource: a live hash behind a `RefCell` (methods take `&self`).
struct HasherResource(RefCell<files::Hasher>);

impl wit_files::GuestHasher for HasherResource {
    fn info(&self) -> wit_files::HashInfo {
        let info = self.0.borrow().info();
        wit_files::HashInfo {
            name: info.name.to_string(),
            digest_size: info.digest_size,
            block_size: info.block_size,
        }
    }

    fn update(&self, data: Vec<u8>) {
        self.0.borrow_mut().update(&data);
    }

    fn copy(&self) -> wit_files::Hasher {
        wit_files::Hasher::new(HasherResource(RefCell::new(self.0.borrow().clone())))
    }

    fn hexdigest(&self, length: Option<u32>) -> WitResult<String> {
        Ok(self.0.borrow().hexdigest(length)?)
    }
}

fn decode_errors(errors: wit_files::DecodeErrors) -> files::DecodeErrors {
    match errors {
        wit_files::DecodeErrors::Strict => files::DecodeErrors::Strict,
        wit_files::DecodeErrors::Replace => files::DecodeErrors::Replace,
        wit_files::DecodeErrors::Ignore => files::DecodeErrors::Ignore,
    }
}

fn hasher(hasher: files::Hasher) -> wit_files::Hasher {
    wit_files::Hasher::new(HasherResource(RefCell::new(hasher)))
}

impl wit_files::Guest for Component {
    type Hasher = HasherResource;

    fn read_last_n_lines(
        file_path: String,
        n: i64,
        chunk_size: i64,
        errors: wit_files::DecodeErrors,
    ) -> WitResult<Vec<String>> {
        let errors = decode_errors(errors);
        Ok(files::read_last_n_lines(&file_path, n, chunk_size, errors)?)
    }

    fn read_last_n_raw(file_path: String, n: i64, chunk_size: i64) -> WitResult<Vec<Vec<u8>>> {
        Ok(files::read_last_n_raw(&file_path, n, chunk_size)?)
    }

    fn hash_file(path: String, hash_alg: String) -> WitResult<wit_files::Hasher> {
        Ok(hasher(files::hash_file(&path, &hash_alg)?))
    }

    fn estimate_fd_for_directory(path: String) -> WitResult<u64> {
        Ok(files::estimate_fd_for_directory(&path)?)
    }
}

impl wit_opened::Guest for Component {
    fn read_last_n_lines_opened(
        file: files::Opened<'_>,
        file_path: String,
        n: i64,
        chunk_size: i64,
        errors: wit_opened::DecodeErrors,
    ) -> WitResult<Vec<String>> {
        let errors = decode_errors(errors);
        Ok(files::read_last_n_lines_opened(
            file, &file_path, n, chunk_size, errors,
        )?)
    }

    fn read_last_n_raw_opened(
        file: files::Opened<'_>,
        file_path: String,
        n: i64,
        chunk_size: i64,
    ) -> WitResult<Vec<Vec<u8>>> {
        Ok(files::read_last_n_raw_opened(
            file, &file_path, n, chunk_size,
        )?)
    }

    fn hash_file_opened(
        file: files::Opened<'_>,
        path: String,
        hash_alg: String,
    ) -> WitResult<wit_opened::Hasher> {
        Ok(hasher(files::hash_file_opened(file, &path, &hash_alg)?))
    }
}

/// A page bound from WIT (`u64` bytes, `u32` items) for this guest.
fn bounds(max_bytes: u64, max_items: u32) -> (usize, usize) {
    let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    (max_bytes, usize::try_from(max_items).unwrap_or(usize::MAX))
}

/// The `tail` resource: the rest of a tail behind a `RefCell`.
struct TailResource(RefCell<files::Tail>);

impl TailResource {
    fn page(&self, max_bytes: u64, max_items: u32) -> files::Page<Vec<u8>> {
        let (max_bytes, max_items) = bounds(max_bytes, max_items);
        self.0.borrow_mut().next_page(max_bytes, max_items)
    }
}

/// Items cut at character boundaries of decoded text are UTF-8; raw pieces
/// asked for as lines are decoded with `replace`.
fn text_page(page: files::Page<Vec<u8>>) -> wit_tails::Page {
    wit_tails::Page {
        items: page
            .items
            .into_iter()
            .map(|item| {
                String::from_utf8(item)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            })
            .collect(),
        continued: page.continued,
    }
}

/// Raw pieces as strings of their bytes' Latin-1 characters (see the WIT).
fn raw_page(page: files::Page<Vec<u8>>) -> wit_tails::RawPage {
    wit_tails::RawPage {
        items: page
            .items
            .iter()
            .map(|piece| piece.iter().map(|&b| char::from(b)).collect())
            .collect(),
        continued: page.continued,
    }
}

impl wit_tails::GuestTail for TailResource {
    fn remaining(&self) -> u64 {
        self.0.borrow().remaining()
    }

    fn next_lines(&self, max_bytes: u64, max_items: u32) -> wit_tails::Page {
        text_page(self.page(max_bytes, max_items))
    }

    fn next_raw(&self, max_bytes: u64, max_items: u32) -> wit_tails::RawPage {
        raw_page(self.page(max_bytes, max_items))
    }
}

/// The first page of `tail`, and the tail itself if lines remain.
fn first_page(
    mut tail: files::Tail,
    max_bytes: u64,
    max_items: u32,
) -> (files::Page<Vec<u8>>, Option<wit_tails::Tail>) {
    let (bytes, items) = bounds(max_bytes, max_items);
    let page = tail.next_page(bytes, items);
    let rest =
        (tail.remaining() > 0).then(|| wit_tails::Tail::new(TailResource(RefCell::new(tail))));
    (page, rest)
}

impl wit_tails::Guest for Component {
    type Tail = TailResource;

    fn read_last_n_lines(
        file_path: String,
        n: i64,
        chunk_size: i64,
        errors: wit_files::DecodeErrors,
        max_bytes: u64,
        max_items: u32,
    ) -> WitResult<(wit_tails::Page, Option<wit_tails::Tail>)> {
        let tail = files::Tail::read(&file_path, n, chunk_size)?;
        let tail = tail.decode_with(decode_errors(errors))?;
        let (page, rest) = first_page(tail, max_bytes, max_items);
        Ok((text_page(page), rest))
    }

    fn read_last_n_raw(
        file_path: String,
        n: i64,
        chunk_size: i64,
        max_bytes: u64,
        max_items: u32,
    ) -> WitResult<(wit_tails::RawPage, Option<wit_tails::Tail>)> {
        let tail = files::Tail::read(&file_path, n, chunk_size)?;
        let (page, rest) = first_page(tail, max_bytes, max_items);
        Ok((raw_page(page), rest))
    }
}

/// Host facts through the `host-facts` import.
struct ImportedFacts;

fn denied<T>(r: Result<T, String>) -> crate::Result<T> {
    r.map_err(Error::CapabilityDenied)
}

impl Facts for ImportedFacts {
    fn logical_cpu_count(&self) -> crate::Result<Option<u32>> {
        denied(host_facts::logical_cpu_count())
    }
    fn affinity_cpu_count(&self) -> crate::Result<Option<u32>> {
        denied(host_facts::affinity_cpu_count())
    }
    fn os_cpu_count(&self) -> crate::Result<Option<u32>> {
        denied(host_facts::os_cpu_count())
    }
    fn memory_total_bytes(&self) -> crate::Result<u64> {
        denied(host_facts::memory_total_bytes())
    }
    fn nofile_limit(&self) -> crate::Result<(Limit, Limit)> {
        let limit = |l| match l {
            host_facts::Limit::Finite(v) => Limit::Finite(v),
            host_facts::Limit::Unlimited => Limit::Unlimited,
        };
        let nofile = denied(host_facts::nofile_limit())?;
        Ok((limit(nofile.soft), limit(nofile.hard)))
    }
    fn pid_exists(&self, pid: u32) -> crate::Result<bool> {
        denied(host_facts::pid_exists(pid))
    }
    fn tcp4_port_bindable(&self, port: u16) -> crate::Result<bool> {
        denied(host_facts::tcp4_port_bindable(port))
    }
    fn read_cgroup_limit(&self, controller: CgroupController) -> crate::Result<CgroupLimit> {
        let controller = match controller {
            CgroupController::Cpu => host_facts::CgroupController::Cpu,
            CgroupController::Memory => host_facts::CgroupController::Memory,
        };
        let limit = denied(host_facts::read_cgroup_limit(controller))?;
        Ok(CgroupLimit {
            v2: limit.v2,
            files: limit.files,
        })
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn with_context<T>(f: impl FnOnce(&Context) -> T) -> T {
    let context = Context {
        facts: &ImportedFacts,
        env: &env_var,
    };
    f(&context)
}

impl wit_system::Guest for Component {
    fn get_cpu_count() -> WitResult<Option<f64>> {
        Ok(with_context(|c| c.get_cpu_count())?)
    }

    fn get_mem_size_gb() -> WitResult<f64> {
        Ok(with_context(|c| c.get_mem_size_gb())?)
    }

    fn get_parallel_threads(cloud_str: Option<String>) -> WitResult<i64> {
        Ok(with_context(|c| {
            c.get_parallel_threads(cloud_str.as_deref())
        })?)
    }

    fn get_max_workers_for_file_mounts(
        common_file_mounts: Vec<(String, String)>,
        cloud_str: Option<String>,
    ) -> WitResult<wit_system::Workers> {
        let (count, low_fd_warning) = with_context(|c| {
            c.get_max_workers_for_file_mounts(&common_file_mounts, cloud_str.as_deref())
        })?;
        Ok(wit_system::Workers {
            count,
            low_fd_warning,
        })
    }

    fn is_process_alive(pid: i64) -> WitResult<bool> {
        Ok(with_context(|c| c.is_process_alive(pid))?)
    }

    fn find_free_port(start_port: i64) -> WitResult<u32> {
        Ok(with_context(|c| c.find_free_port(start_port))?)
    }
}
