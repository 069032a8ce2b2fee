//! Builds the guest component (`guest/`, for `wasm32-wasip2`) with a nested
//! cargo in its own target directory and hands it to `include_bytes!`, and
//! passes the wasmtime version pinned in `Cargo.lock` to the compile cache's
//! key (`SKYUTILS_WASMTIME_VERSION`).
//!
//! This is the one way the component is built: `make component` builds the
//! host and copies the component this script left in `target/guest` for the
//! Python package. `SKYUTILS_GUEST_WASM=path` embeds a prebuilt component
//! instead of building one.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    for input in [
        "common/src",
        "common/Cargo.toml",
        "guest/src",
        "guest/Cargo.toml",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=SKYUTILS_GUEST_WASM");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("read Cargo.lock");
    let wasmtime = locked_version(&lock, "wasmtime").expect("wasmtime is in Cargo.lock");
    println!("cargo:rustc-env=SKYUTILS_WASMTIME_VERSION={wasmtime}");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("skyutils_guest.wasm");

    // A prebuilt component can be supplied instead of built.
    let wasm = if let Some(path) = std::env::var_os("SKYUTILS_GUEST_WASM") {
        PathBuf::from(path)
    } else {
        let target_dir = root.join("target/guest");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .args([
                "build",
                "--locked",
                "-p",
                "skyutils-guest",
                "--target",
                "wasm32-wasip2",
                "--profile",
                "wasm",
            ])
            .arg("--target-dir")
            .arg(&target_dir);
        // The outer cargo's settings (profile, target, flags, jobserver) must
        // not leak into the nested build.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if (key.starts_with("CARGO_") && key != "CARGO_HOME")
                || key.starts_with("RUSTC")
                || key == "RUSTFLAGS"
                || key == "RUSTDOCFLAGS"
                || key == "TARGET"
                || key == "HOST"
                || key == "PROFILE"
                || key == "OUT_DIR"
                || key == "OPT_LEVEL"
                || key == "DEBUG"
                || key == "NUM_JOBS"
                || key == "MAKEFLAGS"
                || key == "MFLAGS"
                || key == "CARGO_MAKEFLAGS"
            {
                cmd.env_remove(key.as_ref());
            }
        }
        let hint = "its own messages are under `--- stderr`; the component needs the \
                    `wasm32-wasip2` target (`make setup` or `rustup target add wasm32-wasip2` adds it)";
        match cmd.status() {
            Ok(status) if status.success() => {}
            Ok(status) => fail(&format!(
                "building the guest component failed ({status}); {hint}"
            )),
            Err(e) => fail(&format!(
                "cannot run cargo to build the guest component: {e}; {hint}"
            )),
        }
        target_dir.join("wasm32-wasip2/wasm/skyutils_guest.wasm")
    };
    if let Err(e) = std::fs::copy(&wasm, &out) {
        fail(&format!(
            "cannot read the guest component {}: {e}",
            wasm.display()
        ));
    }
}

/// Stops the build with `message` as cargo's error (after the nested
/// build's own output, which cargo shows for a failed script).
fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(1)
}

/// The version of package `name` in a `Cargo.lock` (its `[[package]]`
/// entries are `name = "..."` followed by `version = "..."`).
fn locked_version<'a>(lock: &'a str, name: &str) -> Option<&'a str> {
    let entry = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    lines.find(|l| l.trim() == entry)?;
    let version = lines.next()?.trim().strip_prefix("version = \"")?;
    version.strip_suffix('"')
}
