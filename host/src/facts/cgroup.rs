//! The cgroup limit files behind `read-cgroup-limit`: the few files
//! `get_cpu_count` and `get_mem_size_gb` read, at the root of the policy's
//! cgroup tree (`/sys/fs/cgroup` by default), and nothing else.

use std::io::Read;
use std::path::Path;

use crate::bindings::host_facts::{CgroupController, CgroupLimit};

/// A controller's limit files of one cgroup version, relative to the root,
/// in the order the WIT's `cgroup-controller` lists them.
fn files(controller: CgroupController, v2: bool) -> &'static [&'static str] {
    match (controller, v2) {
        (CgroupController::Cpu, true) => &["cpu.max"],
        (CgroupController::Cpu, false) => &["cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"],
        (CgroupController::Memory, true) => &["memory.max"],
        (CgroupController::Memory, false) => &["memory/memory.limit_in_bytes"],
    }
}

/// Reads `controller`'s limit files under `root` (`None`: no cgroup tree,
/// v1 with every file absent). The version is upstream's test, a regular
/// `cgroup.controllers` (only stat'ed, never read).
pub(crate) fn read(root: Option<&Path>, controller: CgroupController) -> CgroupLimit {
    let v2 = root.is_some_and(|root| root.join("cgroup.controllers").is_file());
    let files = files(controller, v2)
        .iter()
        .map(|relative| root.and_then(|root| read_text(&root.join(relative))))
        .collect();
    CgroupLimit { v2, files }
}

/// A regular file's whole content (symlinks followed), or `None` when it is
/// anything else, cannot be read or is not UTF-8. It is opened without
/// waiting (a FIFO planted in a test tree never blocks the call) and checked
/// on the open descriptor, so nothing swapped in after a check is read.
fn read_text(path: &Path) -> Option<String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let mut file = options.open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for dir in ["cpu", "memory"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        root
    }

    #[test]
    fn v1_reads_only_regular_utf8_files() {
        let root = tree();
        std::fs::write(root.path().join("cpu/cpu.cfs_quota_us"), "200000\n").unwrap();
        std::fs::create_dir(root.path().join("cpu/cpu.cfs_period_us")).unwrap();
        std::fs::write(root.path().join("memory/memory.limit_in_bytes"), b"\xff\n").unwrap();
        // v2 files are not what a v1 tree is asked for.
        std::fs::write(root.path().join("cpu.max"), "max 100000\n").unwrap();
        let cpu = read(Some(root.path()), CgroupController::Cpu);
        assert!(!cpu.v2);
        assert_eq!(cpu.files, [Some("200000\n".to_string()), None]);
        let memory = read(Some(root.path()), CgroupController::Memory);
        assert_eq!(memory.files, [None]);
    }

    #[test]
    fn v2_is_a_regular_controllers_file_never_read() {
        let root = tree();
        std::fs::write(root.path().join("cpu.max"), "50000 100000\n").unwrap();
        // A huge cgroup.controllers is only stat'ed.
        let big = std::fs::File::create(root.path().join("cgroup.controllers")).unwrap();
        big.set_len(256 << 20).unwrap();
        let cpu = read(Some(root.path()), CgroupController::Cpu);
        assert!(cpu.v2);
        assert_eq!(cpu.files, [Some("50000 100000\n".to_string())]);
        assert_eq!(
            read(Some(root.path()), CgroupController::Memory).files,
            [None]
        );
    }

    #[test]
    fn a_directory_named_controllers_is_v1_and_no_tree_is_v1_without_files() {
        let root = tree();
        std::fs::create_dir(root.path().join("cgroup.controllers")).unwrap();
        assert!(!read(Some(root.path()), CgroupController::Cpu).v2);
        let none = read(None, CgroupController::Cpu);
        assert!(!none.v2);
        assert_eq!(none.files, [None, None]);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_not_waited_on() {
        let root = tree();
        let fifo = root.path().join("memory/memory.limit_in_bytes");
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read(Some(root.path()), CgroupController::Memory).files,
            [None]
        );
    }
}
