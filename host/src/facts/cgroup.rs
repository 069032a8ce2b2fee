//! The cgroup limit files behind `read-cgroup-file`: the few files
//! `get_cpu_count` and `get_mem_size_gb` read, at the root of the policy's
//! cgroup tree (`/sys/fs/cgroup` by default), and nothing else.

use std::path::Path;

use crate::bindings::host_facts::{CgroupFile, CgroupRead};

/// `file`'s path relative to the cgroup root.
fn relative_path(file: CgroupFile) -> &'static str {
    match file {
        CgroupFile::Controllers => "cgroup.controllers",
        CgroupFile::CpuMax => "cpu.max",
        CgroupFile::MemoryMax => "memory.max",
        CgroupFile::CpuCfsQuotaUs => "cpu/cpu.cfs_quota_us",
        CgroupFile::CpuCfsPeriodUs => "cpu/cpu.cfs_period_us",
        CgroupFile::MemoryLimitInBytes => "memory/memory.limit_in_bytes",
    }
}

/// Reads `file` under `root` (`None`: no cgroup tree, every file absent);
/// `controllers` is only stat'ed (its text is empty).
/// Only a regular file (symlinks followed) is opened, so a FIFO planted in
/// a test tree cannot block the call.
pub(crate) fn read(root: Option<&Path>, file: CgroupFile) -> CgroupRead {
    let Some(root) = root else {
        return CgroupRead::Absent;
    };
    let path = root.join(relative_path(file));
    if !path.is_file() {
        return CgroupRead::Absent;
    }
    if matches!(file, CgroupFile::Controllers) {
        // Only its being a regular file matters (upstream's
        // `os.path.isfile`): never read, however big a test tree's file is.
        return CgroupRead::Text(String::new());
    }
    match std::fs::read(&path).map(String::from_utf8) {
        Ok(Ok(text)) => CgroupRead::Text(text),
        _ => CgroupRead::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_regular_files_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("cpu")).unwrap();
        std::fs::write(root.path().join("cpu/cpu.cfs_quota_us"), "200000\n").unwrap();
        std::fs::write(root.path().join("memory.max"), b"\xff\n").unwrap();
        std::fs::create_dir(root.path().join("cpu.max")).unwrap();
        let read = |file| read(Some(root.path()), file);
        assert!(matches!(read(CgroupFile::CpuCfsQuotaUs), CgroupRead::Text(t) if t == "200000\n"));
        assert!(matches!(
            read(CgroupFile::MemoryMax),
            CgroupRead::Unreadable
        ));
        assert!(matches!(read(CgroupFile::CpuMax), CgroupRead::Absent));
        assert!(matches!(read(CgroupFile::Controllers), CgroupRead::Absent));
        // cgroup.controllers is never read: a huge or unreadable one is v2.
        let big = std::fs::File::create(root.path().join("cgroup.controllers")).unwrap();
        big.set_len(256 << 20).unwrap();
        assert!(matches!(read(CgroupFile::Controllers), CgroupRead::Text(t) if t.is_empty()));
        let none = super::read(None, CgroupFile::CpuCfsQuotaUs);
        assert!(matches!(none, CgroupRead::Absent));
    }
}
