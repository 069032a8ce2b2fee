//! The Rust host's integration tests, as one test binary with a module per
//! concern (as wasmtime's and ripgrep's `tests/all` are): one link of the
//! host instead of eight, and the shared helpers in [`common`] without
//! `#[allow(dead_code)]`.
//!
//! Every module runs in this one process, with the default test threads.
//! What is process-wide is serialised: the once-per-process low-descriptor
//! warning (`common::low_fd_warning_lock`). Nothing else is shared: no test
//! changes the environment, the working directory or the umask, and the
//! cache tests run the CLI in processes of their own. The memory-heavy
//! `limits` tests (a 146 MiB tail, an 8 GiB sparse hash) run beside the
//! others, as they ran beside each other in a binary of their own.
//!
//! `cargo test -p skyutils-host --test all -- conformance::` runs one module.

mod cache;
mod common;
mod concurrency;
mod conformance;
mod fuzz;
mod limits;
mod nonutf8;
mod plugins;
mod sandbox;
