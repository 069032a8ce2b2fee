//! Turns the paths a call names into WASI grants: which host directory is
//! pre-opened (read-only), at which guest path, and which path the guest
//! opens.
//!
//! A plain absolute path to an existing file or directory that is not a
//! symlink is granted as written: its directory is pre-opened by that path,
//! which the kernel walks as upstream's `open` does ([`plain_grant`]). Any
//! other path is resolved first (symlink-free and absolute), so a symlinked
//! log works exactly as upstream. Messages the guest reports are mapped back
//! to the path as the caller wrote it.
//!
//! Host paths are bytes (`OsStr`), WASI paths are UTF-8 strings. A
//! pre-opened directory whose host path is not UTF-8 appears in the guest
//! under a label of its own (see [`guest_label`]); names *below* it are the
//! real entry names, so they must be UTF-8 for the guest to open them. A file
//! whose own name is not UTF-8 cannot be named to the guest at all: its grant
//! says so ([`PathGrant::unnamed`]), and the caller opens the file itself
//! and lends the guest the descriptor, or answers itself.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use skyutils_common::error::{EACCES, ENOTDIR};
use skyutils_common::pyrepr::{repr, repr_fsdecoded};
use skyutils_common::{Error as CallError, OsError};

use crate::policy::FileAccess;

/// Where guest labels of non-UTF-8 host directories live.
const LABEL_ROOT: &str = "/.skyutils-host-path";

/// The guest's view of one caller path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGrant {
    /// The path as the caller wrote it (used in messages).
    pub display: PathBuf,
    /// The path the guest opens.
    pub guest: String,
    /// The host directory to pre-open and the guest path it appears at.
    pub preopen: Option<(PathBuf, String)>,
    /// A file that exists but whose name is not UTF-8, so the guest cannot
    /// open it by name (its resolved host path). Such a grant pre-opens
    /// nothing, and its `guest` is only a stand-in for the path in messages
    /// (the label of the resolved path, which [`display_error`] maps back).
    pub unnamed: Option<PathBuf>,
}

/// The guest path at which host directory `dir` is pre-opened: the path
/// itself when it is UTF-8, else a label under [`LABEL_ROOT`] made of the
/// path's bytes in hex (unique per path, and no UTF-8 path is relabelled).
pub fn guest_label(dir: &Path) -> String {
    guest_text(dir).unwrap_or_else(|| hex_label(dir))
}

/// The label under [`LABEL_ROOT`] of host directory `dir`: its path's bytes
/// in hex.
fn hex_label(dir: &Path) -> String {
    let bytes = dir.as_os_str().as_encoded_bytes();
    let mut label = format!("{LABEL_ROOT}/").into_bytes();
    let start = label.len();
    label.resize(start + 2 * bytes.len(), 0);
    hex::encode_to_slice(bytes, &mut label[start..]).expect("sized for the hex digits");
    String::from_utf8(label).expect("ASCII")
}

/// A guest path that no preopen covers, so it does not exist there (for
/// names that do not exist and cannot be spelled in UTF-8).
fn missing_label(p: &Path) -> String {
    format!(
        "{LABEL_ROOT}-missing/{}",
        hex::encode(p.as_os_str().as_encoded_bytes())
    )
}

/// A host path as WASI spells it, if it can: UTF-8 with `/` separators. On
/// Windows `C:\x\y` (or its verbatim form `\\?\C:\x\y`) becomes `/C:/x/y`.
fn guest_text(p: &Path) -> Option<String> {
    let s = p.to_str()?;
    if cfg!(windows) {
        let s = s.strip_prefix(r"\\?\").unwrap_or(s).replace('\\', "/");
        return Some(match s.starts_with('/') || !p.is_absolute() {
            true => s,
            false => format!("/{s}"),
        });
    }
    Some(s.to_string())
}

/// `base` joined with the UTF-8 `rest` (`None` when `rest` is not UTF-8).
fn join(base: &str, rest: &Path) -> Option<String> {
    let rest = guest_text(rest)?;
    Some(match (base.ends_with('/'), rest.is_empty()) {
        (_, true) => base.to_string(),
        (true, false) => format!("{base}{rest}"),
        (false, false) => format!("{base}/{rest}"),
    })
}

/// Resolves `path` under `access`. In `AllowDirs` mode a path that resolves
/// outside every allowed directory, or whose resolved form is not UTF-8, is
/// refused with a capability error naming it.
pub fn grant(path: &Path, access: &FileAccess) -> Result<PathGrant, CallError> {
    let unchanged = || PathGrant {
        display: path.to_path_buf(),
        guest: guest_label(path),
        preopen: None,
        unnamed: None,
    };
    if path.as_os_str().is_empty() {
        return Ok(unchanged());
    }
    #[cfg(unix)]
    if let (FileAccess::PerCall, Some(plain)) = (access, plain_grant(path)) {
        return Ok(plain);
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        // `getcwd` names a working directory in another mount namespace
        // from that namespace's root: a different directory here.
        match (std::env::current_dir(), std::fs::metadata(".")) {
            (Ok(cwd), Ok(here)) if is_named_by(&here, &cwd) => cwd.join(path),
            _ => path.to_path_buf(),
        }
    };
    let (resolved, missing_child) = resolve(&absolute);
    // A path that exists but has no name here (see [`is_named_by`]; a pipe
    // or a deleted file behind `/proc/self/fd`): no guest path reaches it.
    let nameless =
        (resolved.is_none() || missing_child.is_some()) && std::fs::metadata(path).is_ok();
    if nameless {
        if let FileAccess::AllowDirs(allowed) = access {
            return Err(CallError::CapabilityDenied(format!(
                "{}: outside the allowed directories ({})",
                repr_fsdecoded(path.as_os_str().as_encoded_bytes()),
                allowed
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if (resolved.is_none() || missing_child.is_some())
        && matches!(access, FileAccess::PerCall)
        && (nameless || too_long(path))
    {
        // The OS refuses the path itself (ENAMETOOLONG), which no guest
        // path can reproduce, or the file has no name: the host opens the
        // caller's path, as upstream.
        return Ok(PathGrant {
            unnamed: Some(path.to_path_buf()),
            ..unchanged()
        });
    }
    let Some((resolved, is_dir)) = resolved else {
        return Ok(unchanged());
    };
    // A final `/.` (which `Path::components` drops) also needs a directory:
    // `f.txt/.` is `ENOTDIR`, as `f.txt/` is.
    let bytes = path.as_os_str().as_encoded_bytes();
    let trailing_slash = bytes.ends_with(b"/") || bytes.ends_with(b"/.");
    let slash = trailing_slash && (!is_dir || missing_child.is_some());
    if let FileAccess::AllowDirs(allowed) = access {
        let shown = || repr_fsdecoded(path.as_os_str().as_encoded_bytes());
        let inside = allowed.iter().any(|dir| {
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            resolved.starts_with(&dir)
        });
        if !inside {
            return Err(CallError::CapabilityDenied(format!(
                "{}: outside the allowed directories ({})",
                shown(),
                allowed
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut full = resolved.clone();
        full.extend(missing_child.iter());
        let Some(mut guest) = guest_text(&full) else {
            return Err(CallError::CapabilityDenied(format!(
                "{}: not valid UTF-8, which the strict directory policy cannot grant",
                shown()
            )));
        };
        if slash && !guest.ends_with('/') {
            guest.push('/');
        }
        return Ok(PathGrant {
            display: path.to_path_buf(),
            guest,
            preopen: None,
            unnamed: None,
        });
    }
    // The directory the call needs: the path itself, or its parent. One this
    // process cannot read is reached through its parent instead, so the guest
    // sees the real error (a preopen would fail or hide it).
    let needed = if is_dir {
        resolved.clone()
    } else {
        parent(&resolved)
    };
    let root = match readable(&needed) {
        false => parent(&needed),
        true => needed,
    };
    let label = guest_label(&root);
    let inside = resolved.strip_prefix(&root).unwrap_or(Path::new(""));
    let Some(mut guest) = join(&label, inside) else {
        // The file's own name is not UTF-8 (or an unreadable directory's):
        // the host opens the caller's path itself, so the OS resolves what
        // follows it (`/..`, `/x`, a trailing slash) exactly as upstream's
        // `open` would.
        return Ok(PathGrant {
            display: path.to_path_buf(),
            guest: guest_label(&resolved),
            preopen: None,
            unnamed: Some(path.to_path_buf()),
        });
    };
    let mut preopen = Some((root, label));
    if let Some(rest) = &missing_child {
        // A missing child of an existing directory can only be observed as
        // "does not exist": nothing needs to be granted for that.
        let first = rest.components().next();
        let first_exists = match first.filter(|_| is_dir) {
            Some(first) => !matches!(
                resolved.join(first).symlink_metadata(),
                Err(e) if e.kind() == ErrorKind::NotFound
            ),
            None => true,
        };
        if !first_exists {
            preopen = None;
        }
        guest = match join(&guest, rest) {
            Some(guest) => guest,
            // An entry the guest cannot name that exists (a file with a
            // trailing slash or `/.`): the host opens the caller's path.
            None if first_exists => {
                return Ok(PathGrant {
                    display: path.to_path_buf(),
                    guest: guest_label(&resolved.join(rest)),
                    preopen: None,
                    unnamed: Some(path.to_path_buf()),
                })
            }
            // Names that do not exist and are not UTF-8: any path that no
            // preopen covers reports the same "not found".
            None => {
                preopen = None;
                missing_label(rest)
            }
        };
    }
    if slash && !guest.ends_with('/') {
        guest.push('/');
    }
    Ok(PathGrant {
        display: path.to_path_buf(),
        guest,
        preopen,
        unnamed: None,
    })
}

/// The grant of a path to a file or directory that is not a symlink, named
/// by an absolute UTF-8 path whose last component is a name (not `.` or
/// `..`, no trailing slash), in a directory that can be pre-opened for it
/// (see [`readable`]): the guest opens that name under a preopen of the
/// directory as the caller wrote it. The kernel walks the directory part
/// (symlinks, `..`) when the preopen is opened, as upstream's `open` walks
/// it, so nothing needs resolving: one `lstat` instead of [`resolve`]'s five
/// calls and a `/proc` readlink. A directory part that is not plain (`..`,
/// `.`, `//`) appears in the guest under a label ([`hex_label`]). `None`:
/// [`grant`] resolves the path.
#[cfg(unix)]
fn plain_grant(path: &Path) -> Option<PathGrant> {
    let text = path.to_str().filter(|t| t.starts_with('/'))?;
    let (dir, name) = text.rsplit_once('/')?;
    if matches!(name, "" | "." | "..") {
        return None;
    }
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        return None;
    }
    let (root, name) = match (meta.is_dir(), dir) {
        (true, _) => (text, None),
        (false, "") => ("/", Some(name)),
        (false, dir) => (dir, Some(name)),
    };
    // On Linux wasmtime-wasi opens a preopen `O_PATH`, which needs only the
    // search permission the `lstat` just had: a file's directory needs no
    // more. One the guest lists must be readable.
    if name.is_none() || !cfg!(target_os = "linux") {
        readable(Path::new(root)).then_some(())?;
    }
    let plain = root == "/" || root[1..].split('/').all(|c| !matches!(c, "" | "." | ".."));
    let label = match plain {
        true => root.to_string(),
        false => hex_label(Path::new(root)),
    };
    Some(PathGrant {
        display: path.to_path_buf(),
        guest: match name {
            Some(name) => join(&label, Path::new(name))?,
            None => label.clone(),
        },
        preopen: Some((PathBuf::from(root), label)),
        unnamed: None,
    })
}

/// Whether this process may read directory `dir`, which a preopen needs:
/// the guest lists a preopen by reading it, so one this process cannot read
/// would list as empty or fail otherwise than upstream. `faccessat` with
/// the effective ids makes `open`'s check without opening (Unix); Windows
/// opens it.
fn readable(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::R_OK, libc::AT_EACCESS) == 0 }
    }
    #[cfg(not(unix))]
    {
        std::fs::File::open(dir).is_ok()
    }
}

impl PathGrant {
    /// For a function that lists a directory, the error upstream raises for
    /// an [unnamed](PathGrant::unnamed) path, which the host has to report
    /// itself: the OS error of `stat` on the caller's path, else
    /// `NotADirectoryError` for a file and `PermissionError` for a directory
    /// this process cannot read (the only directory left unnamed).
    pub fn unnamed_listing_error(&self) -> Option<CallError> {
        let path = self.unnamed.as_deref()?;
        let errno = match std::fs::metadata(path) {
            Err(e) => e.raw_os_error().unwrap_or(ENOTDIR),
            Ok(meta) if meta.is_dir() => EACCES,
            Ok(_) => ENOTDIR,
        };
        Some(display_error(
            CallError::from_errno(errno, Some(&self.guest)),
            self,
        ))
    }

    /// The grant of a file mount's source, which the guest tests with
    /// `os.path.isdir` and lists: an unnamed file becomes
    /// [`PathGrant::as_not_a_directory`]; an unnamed directory this process
    /// cannot read raises upstream's `PermissionError` here.
    pub fn for_mount(self) -> Result<PathGrant, CallError> {
        if self.unnamed.is_none() {
            return Ok(self);
        }
        // Upstream lists the source only if `os.path.isdir` says so.
        let is_dir = self
            .unnamed
            .as_deref()
            .is_some_and(|p| std::fs::metadata(p).is_ok_and(|m| m.is_dir()));
        match self.unnamed_listing_error() {
            Some(err) if is_dir => Err(err),
            _ => Ok(self.as_not_a_directory()),
        }
    }

    /// The grant a directory test (`os.path.isdir`) needs for an unnamed
    /// file: none, at a guest path that does not exist (it is not a
    /// directory either way).
    fn as_not_a_directory(&self) -> PathGrant {
        PathGrant {
            guest: missing_label(&self.display),
            preopen: None,
            unnamed: None,
            ..self.clone()
        }
    }
}

/// `s` with every `repr_form.0` replaced by `repr_form.1` and every other
/// `plain.0` by `plain.1`, in one left-to-right pass (a replacement may
/// contain the text replaced, e.g. a path shown with a trailing slash).
fn replace_paths(s: &str, repr_form: (&str, &str), plain: (&str, &str)) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let at_repr = rest.find(repr_form.0).map(|i| (i, repr_form));
        let at_plain = (!plain.0.is_empty())
            .then(|| rest.find(plain.0).map(|i| (i, plain)))
            .flatten();
        // The earliest match; the `repr` form wins a tie (it contains the path).
        let next = match (at_repr, at_plain) {
            (Some(r), Some(p)) => Some(if p.0 < r.0 { p } else { r }),
            (r, p) => r.or(p),
        };
        let Some((i, (from, to))) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        out.push_str(to);
        rest = &rest[i + from.len()..];
    }
}

fn parent(p: &Path) -> PathBuf {
    p.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Whether the OS refuses `path` as too long (`ENAMETOOLONG`).
fn too_long(path: &Path) -> bool {
    matches!(
        std::fs::metadata(path),
        Err(e) if e.raw_os_error() == Some(skyutils_common::error::ENAMETOOLONG)
    )
}

/// `path` canonicalized, if the OS resolves it, and whether it is a
/// directory. `realpath(3)` (behind `canonicalize`) drops `name/..` after
/// checking only that `name` is a directory, not that it may be searched,
/// so the OS's own `stat` decides first (`noperm/../f` is a
/// `PermissionError`, as upstream).
fn real_path(path: &Path) -> Option<(PathBuf, bool)> {
    #[cfg(target_os = "linux")]
    if let Some(found) = real_path_by_fd(path) {
        return Some(found);
    }
    let meta = std::fs::metadata(path).ok()?;
    let real = path.canonicalize().ok()?;
    is_named_by(&meta, &real).then_some((real, meta.is_dir()))
}

/// Whether `name` names the file `meta` describes. A file this process's
/// root does not reach (in a lazily unmounted directory, or another mount
/// namespace's, through `/proc/PID/root` or a descriptor) is named from its
/// own mount's root, and `/proc`'s links read that way too: the name is
/// some other file here, or none, and must not be granted.
fn is_named_by(meta: &std::fs::Metadata, name: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(name).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (meta, name);
        true
    }
}

/// [`real_path`] in five system calls whatever the depth (`canonicalize`
/// makes one per component): the kernel resolves `path` into an `O_PATH`
/// descriptor (search permission checked on the way, as by `stat`), whose
/// name `/proc/self/fd` gives. `None` (use `canonicalize`) when `/proc` is
/// not there or the name is not a plain absolute path (a file deleted
/// meanwhile reads `... (deleted)`).
#[cfg(target_os = "linux")]
fn real_path_by_fd(path: &Path) -> Option<(PathBuf, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let name = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let plain = name.is_absolute() && !name.as_os_str().as_encoded_bytes().ends_with(b" (deleted)");
    (plain && is_named_by(&meta, &name)).then_some((name, meta.is_dir()))
}

/// The canonical form of the longest prefix of `path` that resolves (and
/// whether it is a directory), and the components after it (none when all
/// of `path` resolves).
fn resolve(path: &Path) -> (Option<(PathBuf, bool)>, Option<PathBuf>) {
    if let Some(full) = real_path(path) {
        return (Some(full), None);
    }
    let components: Vec<Component> = path.components().collect();
    for split in (1..components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        if let Some(real) = real_path(&prefix) {
            let rest: PathBuf = components[split..].iter().collect();
            return (Some(real), Some(rest));
        }
    }
    (None, None)
}

/// Maps the guest path back to the caller's path inside an error: `repr`
/// forms become the `repr` Python shows of the caller's path, plain
/// occurrences its text (undecodable bytes as U+FFFD: a Rust `String`
/// cannot hold Python's lone surrogates).
pub fn display_error(err: CallError, grant: &PathGrant) -> CallError {
    let to_os: &OsStr = grant.display.as_os_str();
    if to_os.to_str() == Some(grant.guest.as_str()) {
        return err;
    }
    let from = grant.guest.as_str();
    let to = to_os.to_string_lossy();
    let to_repr = repr_fsdecoded(to_os.as_encoded_bytes());
    let from_repr = repr(from);
    let text = |s: String| replace_paths(&s, (&from_repr, &to_repr), (from, &to));
    let os = |o: OsError| OsError {
        message: text(o.message),
        errno: o.errno,
        strerror: o.strerror,
        filename: o
            .filename
            .map(|f| if f == from { to.to_string() } else { f }),
    };
    match err.into_os() {
        Ok((kind, o)) => CallError::os(kind, os(o)),
        Err(CallError::Assertion(m)) => CallError::Assertion(text(m)),
        Err(CallError::Runtime { message, cause }) => CallError::Runtime {
            message: text(message),
            cause: cause.map(os),
        },
        Err(other) => other,
    }
}

/// [`display_error`] for a call on several grants (`get_max_workers_for_file_mounts`'s
/// sources): only the grant the error is about (the first whose guest path
/// is the error's file name) maps it, so another source's path that is a
/// prefix of, or the same directory as, the failing one never rewrites it.
/// An error that names no grant's guest path goes through every grant.
pub fn display_error_among(err: CallError, grants: &[PathGrant]) -> CallError {
    let filename = err.as_os().and_then(|(_, os)| os.filename.as_deref());
    match filename.and_then(|f| grants.iter().find(|g| g.guest == f)) {
        Some(g) => display_error(err, g),
        None => grants.iter().fold(err, display_error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn per_call(path: &Path) -> PathGrant {
        grant(path, &FileAccess::PerCall).unwrap()
    }

    fn preopen_of(dir: &Path) -> Option<(PathBuf, String)> {
        Some((dir.to_path_buf(), guest_label(dir)))
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_descriptor_s_name_is_the_canonical_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.log"), "x").unwrap();
        std::os::unix::fs::symlink("a/b", root.join("link")).unwrap();
        std::os::unix::fs::symlink("f.log", root.join("a/b/rel")).unwrap();
        std::os::unix::fs::symlink(root.join("loop"), root.join("loop")).unwrap();
        std::fs::write(root.join("a/b/\u{e9}t\u{e9} \n x"), "x").unwrap();
        for p in [
            "a/b/f.log",
            "link/f.log",
            "link/rel",
            "link/../b/./f.log",
            "a/b",
            "link",
            "a/b/\u{e9}t\u{e9} \n x",
        ] {
            let path = root.join(p);
            let expected = (path.canonicalize().unwrap(), path.is_dir());
            assert_eq!(real_path_by_fd(&path), Some(expected.clone()), "{p}");
            assert_eq!(real_path(&path), Some(expected), "{p}");
        }
        for p in ["missing", "a/b/f.log/x", "loop"] {
            assert_eq!(real_path(&root.join(p)), None, "{p}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn files_without_a_name_are_opened_by_the_host() {
        use std::os::unix::io::AsRawFd;
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("gone.log");
        std::fs::write(&gone, "x\n").unwrap();
        let open = std::fs::File::open(&gone).unwrap();
        std::fs::remove_file(&gone).unwrap();
        let (read, write) = std::os::unix::net::UnixStream::pair().unwrap();
        for fd in [open.as_raw_fd(), read.as_raw_fd(), write.as_raw_fd()] {
            let path = PathBuf::from(format!("/proc/self/fd/{fd}"));
            let g = per_call(&path);
            assert_eq!(
                (g.unnamed.as_deref(), g.preopen),
                (Some(path.as_path()), None)
            );
            let strict = FileAccess::AllowDirs(vec![PathBuf::from("/")]);
            let refused = grant(&path, &strict).unwrap_err();
            assert_eq!(refused.python_class(), "PermissionError", "{path:?}");
        }
    }

    #[test]
    fn grants_exactly_the_directory_a_path_needs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/f.txt"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("d/f.txt"), root.join("link")).unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();

        let file = per_call(&root.join("d/f.txt"));
        assert_eq!(
            (file.guest, file.preopen),
            (s(&root.join("d/f.txt")), preopen_of(&root.join("d")))
        );
        let dir = per_call(&root.join("d"));
        assert_eq!(dir.preopen, preopen_of(&root.join("d")));
        // A symlink is resolved: the guest opens the target, messages show the link.
        let link = per_call(&root.join("link"));
        assert_eq!(
            (link.guest, link.preopen, link.display),
            (
                s(&root.join("d/f.txt")),
                preopen_of(&root.join("d")),
                root.join("link")
            )
        );
        // A missing child of a directory needs nothing; a path below a file
        // needs the file's directory (to report "Not a directory").
        assert_eq!(per_call(&root.join("d/nope")).preopen, None);
        let below_file = per_call(Path::new(&format!("{}/x", s(&root.join("d/f.txt")))));
        assert_eq!(below_file.preopen, preopen_of(&root.join("d")));
        assert_eq!(per_call(Path::new("")).preopen, None);
    }

    #[test]
    fn a_plain_path_is_granted_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/f.txt"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("d"), root.join("dirlink")).unwrap();
        // Symlinked directories on the way are the kernel's to walk.
        let through = root.join("dirlink/f.txt");
        let g = per_call(&through);
        let s = |p: &Path| p.to_str().unwrap().to_string();
        assert_eq!(
            (g.guest.as_str(), g.preopen, g.unnamed),
            (
                s(&through).as_str(),
                Some((root.join("dirlink"), s(&root.join("dirlink")))),
                None
            )
        );
        // A final symlink is resolved, `dirlink` as any other.
        let dir = per_call(&root.join("dirlink"));
        assert_eq!(dir.guest, s(&root.join("d")));
        // `..` on the way: the directory as written, under a label.
        let dotted = Path::new(&format!("{}/d/../d/f.txt", s(&root))).to_path_buf();
        let g = per_call(&dotted);
        let host_dir = PathBuf::from(format!("{}/d/../d", s(&root)));
        let label = hex_label(&host_dir);
        assert_eq!(
            (g.guest, g.preopen),
            (format!("{label}/f.txt"), Some((host_dir, label)))
        );
    }

    #[test]
    fn non_utf8_directories_get_labels_and_unnamable_files_say_so() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let odd = root.join(OsStr::from_bytes(b"caf\xe9"));
        std::fs::create_dir(&odd).unwrap();
        std::fs::write(odd.join("a.log"), "x").unwrap();
        std::fs::write(odd.join(OsStr::from_bytes(b"\xff.log")), "x").unwrap();

        let dir = per_call(&odd);
        let label = guest_label(&odd);
        assert!(label.starts_with(LABEL_ROOT), "{label}");
        assert_eq!(
            (dir.guest.as_str(), dir.preopen),
            (label.as_str(), preopen_of(&odd))
        );
        let file = per_call(&odd.join("a.log"));
        assert_eq!(file.guest, format!("{label}/a.log"));
        assert_eq!(file.unnamed, None);
        let unnamable = per_call(&odd.join(OsStr::from_bytes(b"\xff.log")));
        let host = odd.join(OsStr::from_bytes(b"\xff.log"));
        assert_eq!(
            (unnamable.unnamed, unnamable.preopen, unnamable.guest),
            (Some(host.clone()), None, guest_label(&host))
        );
        let missing = per_call(&odd.join(OsStr::from_bytes(b"\xfe.log")));
        assert_eq!((missing.preopen, missing.unnamed), (None, None));

        let strict = FileAccess::AllowDirs(vec![root.clone()]);
        let refused = grant(&odd.join("a.log"), &strict).unwrap_err();
        assert_eq!(refused.python_class(), "PermissionError");
        assert!(
            refused.message().contains("caf\\udce9"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn errors_show_the_callers_path() {
        let g = PathGrant {
            display: "my'link".into(),
            guest: "/real/path".into(),
            preopen: None,
            unnamed: None,
        };
        let err = CallError::from_errno(21, Some("/real/path"));
        let shown = display_error(
            CallError::Runtime {
                message: format!(
                    "Failed to read last 1 lines from /real/path: {}",
                    err.message()
                ),
                cause: None,
            },
            &g,
        );
        assert_eq!(
            shown.message(),
            "Failed to read last 1 lines from my'link: [Errno 21] Is a directory: \"my'link\""
        );
        let slash = PathGrant {
            display: "/d/".into(),
            guest: "/d".into(),
            ..g.clone()
        };
        let shown = display_error(CallError::from_errno(21, Some("/d")), &slash);
        assert_eq!(shown.message(), "[Errno 21] Is a directory: '/d/'");
        let odd = PathGrant {
            display: PathBuf::from(OsStr::from_bytes(b"caf\xe9")),
            ..g
        };
        let shown = display_error(CallError::from_errno(2, Some("/real/path")), &odd);
        assert_eq!(
            shown.message(),
            "[Errno 2] No such file or directory: 'caf\\udce9'"
        );
    }

    #[test]
    fn an_error_among_several_grants_names_the_failing_source() {
        let grant = |display: &str, guest: &str| PathGrant {
            display: display.into(),
            guest: guest.into(),
            preopen: None,
            unnamed: None,
        };
        let denied = || CallError::from_errno(13, Some("/t/p/s311"));
        // Another source whose guest path is a prefix of the failing one's.
        let prefix = [grant("/t/p/../p/", "/t/p"), grant("/t/p/s311", "/t/p/s311")];
        assert_eq!(
            display_error_among(denied(), &prefix).message(),
            "[Errno 13] Permission denied: '/t/p/s311'"
        );
        // A later source naming the same directory otherwise.
        let same = [
            grant("/t/p/./s311", "/t/p/s311"),
            grant("/t/p/s311/i/../", "/t/p/s311"),
        ];
        assert_eq!(
            display_error_among(denied(), &same).message(),
            "[Errno 13] Permission denied: '/t/p/./s311'"
        );
    }

    #[test]
    fn a_file_followed_by_slash_dot_is_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::write(root.join("f.txt"), "x").unwrap();
        let s = root.to_str().unwrap();
        for tail in ["f.txt/.", "f.txt/./.", "f.txt/"] {
            let g = per_call(Path::new(&format!("{s}/{tail}")));
            assert_eq!(g.guest, format!("{s}/f.txt/"), "{tail}");
        }
        // A directory followed by `/.` is still that directory.
        let g = per_call(Path::new(&format!("{s}/.")));
        assert_eq!(g.guest, s);
    }
}
