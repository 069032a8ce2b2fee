//! Turns the paths a call names into WASI grants: which host directory is
//! pre-opened (read-only) and which path the guest opens.
//!
//! The guest always opens the resolved (symlink-free, absolute) form of the
//! path, so a symlinked log works exactly as upstream; the messages it
//! reports are mapped back to the path as the caller wrote it.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use skyutils_guest::pyrepr::repr;
use skyutils_guest::{Error as CallError, OsError};

use crate::policy::FileAccess;

/// The guest's view of one caller path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGrant {
    /// The path as the caller wrote it (used in messages).
    pub display: String,
    /// The path the guest opens.
    pub guest: String,
    /// The host directory to pre-open (at the same guest path), if any.
    pub preopen: Option<PathBuf>,
}

/// Resolves `path` under `access`. In `AllowDirs` mode a path that resolves
/// outside every allowed directory is refused.
pub fn grant(path: &str, access: &FileAccess) -> Result<PathGrant, CallError> {
    let unchanged = |preopen| PathGrant {
        display: path.into(),
        guest: path.into(),
        preopen,
    };
    if path.is_empty() {
        return Ok(unchanged(None));
    }
    let absolute = match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => PathBuf::from(path),
    };
    let (resolved, missing_child) = resolve(&absolute);
    let Some(resolved) = resolved else {
        return Ok(unchanged(None));
    };
    let is_dir = resolved.is_dir();
    let mut guest = resolved.clone();
    if let Some(rest) = &missing_child {
        guest.push(rest);
    }
    let mut guest = guest.to_string_lossy().into_owned();
    if path.ends_with('/') && !guest.ends_with('/') && (!is_dir || missing_child.is_some()) {
        guest.push('/');
    }
    let needed = if is_dir {
        resolved.clone()
    } else {
        parent(&resolved)
    };
    if let FileAccess::AllowDirs(allowed) = access {
        let inside = allowed.iter().any(|dir| {
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            resolved.starts_with(&dir)
        });
        if !inside {
            return Err(CallError::CapabilityDenied(format!(
                "{}: outside the allowed directories ({})",
                repr(path),
                allowed
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        return Ok(PathGrant {
            display: path.into(),
            guest,
            preopen: None,
        });
    }
    // A missing child of an existing directory can only be observed as
    // "does not exist": nothing needs to be granted for that.
    let preopen = match missing_child
        .as_ref()
        .and_then(|rest| rest.components().next())
    {
        Some(first) if is_dir => match resolved.join(first).symlink_metadata() {
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            _ => Some(needed),
        },
        _ => Some(needed),
    };
    Ok(PathGrant {
        display: path.into(),
        guest,
        preopen,
    })
}

fn parent(p: &Path) -> PathBuf {
    p.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The canonical form of the longest prefix of `path` that resolves, and the
/// components after it (none when all of `path` resolves).
fn resolve(path: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    if let Ok(full) = path.canonicalize() {
        return (Some(full), None);
    }
    let components: Vec<Component> = path.components().collect();
    for split in (1..components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        match prefix.canonicalize() {
            Ok(real) => {
                let rest: PathBuf = components[split..].iter().collect();
                return (Some(real), Some(rest));
            }
            Err(_) => continue,
        }
    }
    (None, None)
}

/// Maps the guest path back to the caller's path inside an error.
pub fn display_error(err: CallError, grant: &PathGrant) -> CallError {
    if grant.guest == grant.display {
        return err;
    }
    let (from, to) = (grant.guest.as_str(), grant.display.as_str());
    let text = |s: String| s.replace(&repr(from), &repr(to)).replace(from, to);
    let os = |o: OsError| OsError {
        message: text(o.message),
        errno: o.errno,
        strerror: o.strerror,
        filename: o
            .filename
            .map(|f| if f == from { to.to_string() } else { f }),
    };
    match err {
        CallError::Assertion(m) => CallError::Assertion(text(m)),
        CallError::Runtime { message, cause } => CallError::Runtime {
            message: text(message),
            cause: cause.map(os),
        },
        CallError::FileNotFound(o) => CallError::FileNotFound(os(o)),
        CallError::PermissionDenied(o) => CallError::PermissionDenied(os(o)),
        CallError::NotADirectory(o) => CallError::NotADirectory(os(o)),
        CallError::IsADirectory(o) => CallError::IsADirectory(os(o)),
        CallError::Os(o) => CallError::Os(os(o)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_call(path: &str) -> PathGrant {
        grant(path, &FileAccess::PerCall).unwrap()
    }

    #[test]
    fn grants_exactly_the_directory_a_path_needs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/f.txt"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("d/f.txt"), root.join("link")).unwrap();
        let s = |p: &std::path::Path| p.to_str().unwrap().to_string();

        let file = per_call(&s(&root.join("d/f.txt")));
        assert_eq!(
            (file.guest.as_str(), file.preopen),
            (s(&root.join("d/f.txt")).as_str(), Some(root.join("d")))
        );
        let dir = per_call(&s(&root.join("d")));
        assert_eq!(dir.preopen, Some(root.join("d")));
        // A symlink is resolved: the guest opens the target, messages show the link.
        let link = per_call(&s(&root.join("link")));
        assert_eq!(
            (link.guest, link.preopen, link.display),
            (
                s(&root.join("d/f.txt")),
                Some(root.join("d")),
                s(&root.join("link"))
            )
        );
        // A missing child of a directory needs nothing; a path below a file
        // needs the file's directory (to report "Not a directory").
        assert_eq!(per_call(&s(&root.join("d/nope"))).preopen, None);
        let below_file = per_call(&format!("{}/x", s(&root.join("d/f.txt"))));
        assert_eq!(below_file.preopen, Some(root.join("d")));
        assert_eq!(per_call("").preopen, None);
    }

    #[test]
    fn errors_show_the_callers_path() {
        let g = PathGrant {
            display: "my'link".into(),
            guest: "/real/path".into(),
            preopen: None,
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
    }
}
