//! The compiled-component cache: every damaged, foreign or exposed entry is
//! ignored, and the next start (a new `skyutils` process with
//! `SKYUTILS_CACHE_DIR` set) answers right. Damaged entries in a trusted
//! directory are compiled again and replaced; entries in a directory that is
//! not the user's own are never read, and nothing is written there. The
//! planted entries are a valid artifact of the evil test plugin (its own
//! digest included), so loading one would visibly change the answer: the
//! control test shows it does in a trusted directory.

use std::os::unix::fs::{chown, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 16] = b"skyutils-cache1\n";
const HEADER: usize = 48;

fn skyutils(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skyutils"))
        .args(args)
        .env("SKYUTILS_CACHE_DIR", cache)
        .output()
        .unwrap()
}

/// `base36-encode ff` in a new process: its stdout (and whether it exited 0).
fn base36_ff(cache: &Path) -> (bool, String) {
    let out = skyutils(cache, &["base36-encode", "ff"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    found
}

/// A fresh owner-only cache directory holding the packaged component's
/// entry; returns the entry's path.
fn warm(dir: &Path) -> PathBuf {
    assert_eq!(base36_ff(dir), (true, "73".into()));
    let found = entries(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Asserts that `path` is a well-formed, owner-only entry whose digest
/// matches its artifact.
fn assert_valid(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > HEADER && bytes.starts_with(MAGIC));
    assert_eq!(
        Sha256::digest(&bytes[HEADER..]).as_slice(),
        &bytes[MAGIC.len()..HEADER]
    );
    assert_eq!(mode(path), 0o600);
}

/// The entry `damage` leaves is ignored; the next process answers right
/// and replaces it with a valid one.
fn recovers_from(damage: impl FnOnce(&mut Vec<u8>)) {
    let tmp = tempfile::tempdir().unwrap();
    let entry = warm(tmp.path());
    let mut bytes = std::fs::read(&entry).unwrap();
    damage(&mut bytes);
    std::fs::write(&entry, &bytes).unwrap();
    assert_eq!(base36_ff(tmp.path()), (true, "73".into()));
    assert_ne!(std::fs::read(&entry).unwrap(), bytes, "not replaced");
    assert_valid(&entry);
    assert_eq!(entries(tmp.path()), vec![entry]);
}

#[test]
fn new_cache_directory_and_entry_are_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b");
    let entry = warm(&dir);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&tmp.path().join("a")), 0o700);
    assert_valid(&entry);
    // The warm start loads it (and leaves it as it is).
    let before = std::fs::metadata(&entry).unwrap().modified().unwrap();
    assert_eq!(base36_ff(&dir), (true, "73".into()));
    assert_eq!(
        std::fs::metadata(&entry).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn flipped_bytes_in_the_code_are_detected() {
    recovers_from(|bytes| {
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b ^= 0xff;
        }
    });
}

#[test]
fn truncated_entry_is_recompiled() {
    recovers_from(|bytes| bytes.truncate(bytes.len() / 2));
}

#[test]
fn entry_shorter_than_its_header_is_recompiled() {
    recovers_from(|bytes| bytes.truncate(20));
}

#[test]
fn wrong_digest_is_recompiled() {
    recovers_from(|bytes| bytes[MAGIC.len() + 7] ^= 0x01);
}

#[test]
fn bare_artifact_without_header_is_recompiled() {
    recovers_from(|bytes| {
        bytes.drain(..HEADER);
    });
}

fn plugin_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/wasm32-wasip2/release/evil_plugin.wasm");
    assert!(
        path.is_file(),
        "{} missing (run `make plugins`)",
        path.display()
    );
    path
}

/// A valid entry (digest included) of the evil plugin, and the name the
/// packaged component's entry has: planting the first under the second
/// name swaps the component if the plant is loaded.
fn plant() -> (Vec<u8>, String) {
    let plugin_cache = tempfile::tempdir().unwrap();
    let plugin = plugin_path();
    let out = skyutils(
        plugin_cache.path(),
        &[
            "--component",
            plugin.to_str().unwrap(),
            "base36-encode",
            "ok",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "fine");
    let found = entries(plugin_cache.path());
    assert_eq!(found.len(), 1, "{found:?}");
    let evil = std::fs::read(&found[0]).unwrap();
    let packaged = tempfile::tempdir().unwrap();
    let name = warm(packaged.path())
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    (evil, name)
}

/// A cache directory of mode `dir_mode` holding the plant, as the packaged
/// component's entry, with mode `file_mode`: (directory, entry path, plant).
fn planted(dir_mode: u32, file_mode: u32) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let (evil, name) = plant();
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), dir_mode);
    let path = tmp.path().join(&name);
    std::fs::write(&path, &evil).unwrap();
    set_mode(&path, file_mode);
    (tmp, path, evil)
}

#[test]
fn control_a_planted_entry_in_a_trusted_directory_is_loaded() {
    // What the plant does when the directory is the user's own: the evil
    // plugin answers instead of the packaged component.
    let (tmp, _path, _evil) = planted(0o700, 0o600);
    let out = skyutils(tmp.path(), &["base36-encode", "ff"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "plant not loaded");
    assert!(stderr.contains("unknown command ff"), "{stderr}");
}

#[test]
fn entry_in_a_world_writable_directory_is_not_loaded() {
    let (tmp, path, evil) = planted(0o777, 0o600);
    assert_eq!(base36_ff(tmp.path()), (true, "73".into()));
    // Compiled in memory: the directory is left alone.
    assert_eq!(std::fs::read(&path).unwrap(), evil);
    assert_eq!(entries(tmp.path()), vec![path]);
}

#[test]
fn group_writable_entry_is_not_loaded_and_is_replaced() {
    let (tmp, path, evil) = planted(0o700, 0o660);
    assert_eq!(base36_ff(tmp.path()), (true, "73".into()));
    assert_ne!(std::fs::read(&path).unwrap(), evil);
    assert_valid(&path);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn foreign_owned_entry_and_directory_are_not_loaded() {
    if !is_root() {
        // Only root can make a file owned by another user; the trust check
        // itself is shared with the group-writable case above.
        return;
    }
    let (evil, name) = plant();
    // A foreign-owned entry in the user's own directory: replaced.
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o700);
    let path = tmp.path().join(&name);
    std::fs::write(&path, &evil).unwrap();
    set_mode(&path, 0o600);
    chown(&path, Some(65534), Some(65534)).unwrap();
    assert_eq!(base36_ff(tmp.path()), (true, "73".into()));
    assert_ne!(std::fs::read(&path).unwrap(), evil);
    assert_valid(&path);
    // A directory owned by another user (owner-only): never read or written.
    let foreign = tempfile::tempdir().unwrap();
    set_mode(foreign.path(), 0o700);
    let path = foreign.path().join(&name);
    std::fs::write(&path, &evil).unwrap();
    set_mode(&path, 0o600);
    chown(foreign.path(), Some(65534), Some(65534)).unwrap();
    assert_eq!(base36_ff(foreign.path()), (true, "73".into()));
    assert_eq!(std::fs::read(&path).unwrap(), evil);
    assert_eq!(entries(foreign.path()), vec![path]);
}

#[test]
fn symlinked_entry_is_not_followed() {
    let (evil, name) = plant();
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o700);
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::write(&elsewhere, &evil).unwrap();
    set_mode(&elsewhere, 0o600);
    let path = tmp.path().join(&name);
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    assert_eq!(base36_ff(tmp.path()), (true, "73".into()));
    assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
    assert_valid(&path);
    assert_eq!(std::fs::read(&elsewhere).unwrap(), evil);
}
