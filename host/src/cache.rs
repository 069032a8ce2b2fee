//! The on-disk cache of compiled components.
//!
//! A compiled component is native code: loading a damaged artifact crashes
//! the process, and loading one planted by another user runs their code
//! outside the sandbox. So an entry is only ever loaded when
//!
//! * its directory and the file itself are owned by the current user and not
//!   writable by group or others (the directory is created `0700`, entries
//!   `0600`). Otherwise the component is compiled in memory, nothing is read
//!   from or written to that directory, and one `debug!` line is logged
//!   through the [`log`] facade (target `skyutils::cache`);
//! * the file carries its own SHA-256: an entry is one file, a 48-byte
//!   header ([`MAGIC`] and the SHA-256 of the artifact) followed by the
//!   artifact, written to a temporary file and renamed into place. A reader
//!   sees one complete write or another, never an artifact and a digest from
//!   different writes, and the digest is checked before the bytes are handed
//!   to wasmtime (the very bytes that were checked, read once through one
//!   descriptor).
//!
//! A truncated, damaged, wrong-digest or foreign-owned entry in a trusted
//! directory is compiled again and replaced.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::hash::{Hash, Hasher as _};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The first bytes of every cache entry (format version 1); the SHA-256 of
/// the artifact (32 raw bytes) follows, then the artifact.
pub const MAGIC: &[u8; 16] = b"skyutils-cache1\n";

/// Length of the header before the artifact.
const HEADER: usize = MAGIC.len() + 32;

/// Where precompiled components are kept: `$SKYUTILS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/skyutils`, else `~/.cache/skyutils`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SKYUTILS_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("skyutils"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/skyutils"))
}

/// The cache key: the entry format, the wasmtime version, every engine
/// setting that affects compiled code and the component's bytes.
fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let mut key = Sha256::new();
    key.update(MAGIC);
    key.update(concat!("wasmtime-", env!("SKYUTILS_WASMTIME_VERSION"), "\0").as_bytes());
    key.update(settings.finish().to_le_bytes());
    key.update(wasm);
    hex::encode(&key.finalize()[..16])
}

/// Why a cache directory or entry with this metadata may not be used
/// (`None`: it is owned by the current user and not group/other-writable).
#[cfg(unix)]
fn untrusted(meta: &Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Some(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "writable by group or others (mode {:04o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Elsewhere (Windows) ownership and permissions are ACLs this module does
/// not read, so nothing on disk is trusted: the component is compiled in
/// memory.
#[cfg(not(unix))]
fn untrusted(_meta: &Metadata) -> Option<String> {
    Some("its owner cannot be checked on this platform".into())
}

/// Options opening an existing file read-only without following a symlink
/// and without blocking (a FIFO planted at an entry's path would otherwise
/// block the open; it is then refused as not a regular file).
fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    options
}

/// Options creating a new owner-only (`0600`) file, not through a symlink.
fn create_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// A recursive directory builder creating owner-only (`0700`) directories.
fn dir_builder() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

/// The state of the cache directory.
enum Dir {
    /// Owned by us, not writable by anyone else: entries may be used.
    Trusted,
    /// Not there (yet).
    Absent,
    /// There, but not to be used (the reason).
    Untrusted(String),
}

fn dir_state(dir: &Path) -> Dir {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Dir::Absent,
        Err(e) => Dir::Untrusted(format!("unusable ({e})")),
        Ok(meta) if !meta.is_dir() => Dir::Untrusted("not a directory".into()),
        Ok(meta) => untrusted(&meta).map_or(Dir::Trusted, Dir::Untrusted),
    }
}

/// The verified entry at `path` (header included; its directory already
/// trusted), or why it cannot be used. The file is opened once, without
/// following a symlink, and checked and read through that descriptor.
fn read_entry(path: &Path) -> Result<Vec<u8>, String> {
    let mut file = match open_options().open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("absent".into()),
        Err(e) => return Err(format!("unreadable ({e})")),
    };
    let meta = file.metadata().map_err(|e| format!("unreadable ({e})"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if let Some(why) = untrusted(&meta) {
        return Err(why);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("unreadable ({e})"))?;
    if bytes.len() < HEADER || !bytes.starts_with(MAGIC) {
        return Err("truncated or not a cache entry".into());
    }
    if Sha256::digest(&bytes[HEADER..]).as_slice() != &bytes[MAGIC.len()..HEADER] {
        return Err("damaged (digest mismatch)".into());
    }
    Ok(bytes)
}

/// Writes `MAGIC + sha256(artifact) + artifact` to a new `0600` file in
/// `dir` and renames it over `path`, so concurrent processes never see a
/// partial entry.
fn write_entry(dir: &Path, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".skyutils-{}-{n}-{nanos}.tmp", std::process::id()));
    let write = |mut file: File| -> std::io::Result<()> {
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(artifact))?;
        file.write_all(artifact)
    };
    let file = create_options().open(&tmp)?;
    write(file)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// The component: deserialized from a verified entry in a trusted cache
/// directory, else compiled (and stored there when the directory is trusted
/// or can be created).
pub(crate) fn load_component(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
    let Some(dir) = cache_dir() else {
        return Component::new(engine, wasm);
    };
    let path = dir.join(format!("skyutils-{}.cwasm", cache_key(engine, wasm)));
    match dir_state(&dir) {
        Dir::Trusted => {
            let stale = match read_entry(&path) {
                // SAFETY: the bytes are exactly those this module wrote from
                // `Component::serialize` (their SHA-256 matches the one stored
                // with them), in a file and directory only the current user
                // can write; wasmtime also checks its version and settings.
                Ok(entry) => match unsafe { Component::deserialize(engine, &entry[HEADER..]) } {
                    Ok(component) => return Ok(component),
                    Err(_) => "rejected by wasmtime".to_string(),
                },
                Err(why) => why,
            };
            if stale != "absent" {
                log::debug!(
                    "not loading {}: {stale}; compiling it again",
                    path.display()
                );
            }
        }
        Dir::Absent => {
            let component = Component::new(engine, wasm)?;
            // Owner-only from the start (also any missing parents).
            if let Err(e) = dir_builder().create(&dir) {
                log::debug!("cache directory {} cannot be created: {e}", dir.display());
                return Ok(component);
            }
            match dir_state(&dir) {
                Dir::Trusted => store(&dir, &path, &component),
                Dir::Untrusted(why) => refuse(&dir, &why),
                Dir::Absent => {}
            }
            return Ok(component);
        }
        Dir::Untrusted(why) => {
            refuse(&dir, &why);
            return Component::new(engine, wasm);
        }
    }
    let component = Component::new(engine, wasm)?;
    store(&dir, &path, &component);
    Ok(component)
}

fn refuse(dir: &Path, why: &str) {
    log::debug!(
        "not using cache directory {}: {why}; compiling in memory",
        dir.display()
    );
}

fn store(dir: &Path, path: &Path, component: &Component) {
    // A cache that cannot be written only costs speed.
    if let Ok(bytes) = component.serialize() {
        let _ = write_entry(dir, path, &bytes);
    }
}
