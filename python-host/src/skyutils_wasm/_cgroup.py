"""The cgroup limit files behind ``host-facts`` ``read-cgroup-file``: the
few files ``get_cpu_count`` and ``get_mem_size_gb`` read, at the root of the
policy's cgroup tree (``/sys/fs/cgroup`` by default), and nothing else.
"""

from __future__ import annotations

import os
import stat

#: ``cgroup-file`` cases and their paths relative to the cgroup root.
FILES = {
    "controllers": "cgroup.controllers",
    "cpu-max": "cpu.max",
    "memory-max": "memory.max",
    "cpu-cfs-quota-us": "cpu/cpu.cfs_quota_us",
    "cpu-cfs-period-us": "cpu/cpu.cfs_period_us",
    "memory-limit-in-bytes": "memory/memory.limit_in_bytes",
}

ABSENT = ("absent", None)
UNREADABLE = ("unreadable", None)
_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read(root: str | None, file: str) -> tuple[str, str | None]:
    """``file`` (a ``cgroup-file`` case) under ``root`` as a ``cgroup-read``
    case: ``("text", content)``, :data:`UNREADABLE` (a regular file that
    cannot be read or is not UTF-8) or :data:`ABSENT` (anything else, or no
    tree). Only a regular file (symlinks followed) is opened, so a FIFO in a
    test tree cannot block the call."""
    if root is None:
        return ABSENT
    path = os.path.join(root, FILES[file])
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return ABSENT
    except (OSError, ValueError):
        return ABSENT
    if file == "controllers":
        # Only its being a regular file matters (upstream's os.path.isfile):
        # never read, however big a test tree's file is.
        return ("text", "")
    try:
        fd = os.open(path, _FLAGS)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return ("text", b"".join(chunks).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return UNREADABLE
