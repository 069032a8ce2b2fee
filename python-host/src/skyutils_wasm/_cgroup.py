"""The cgroup limit files behind ``host-facts`` ``read-cgroup-limit``: the
few files ``get_cpu_count`` and ``get_mem_size_gb`` read, at the root of the
policy's cgroup tree (``/sys/fs/cgroup`` by default), and nothing else.
"""

from __future__ import annotations

import functools
import os
import stat

#: A controller's limit files relative to the root: (v2, v1), in the order
#: of the WIT's ``cgroup-controller``.
FILES = {
    "cpu": (("cpu.max",), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")),
    "memory": (("memory.max",), ("memory/memory.limit_in_bytes",)),
}

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
    # A FIFO planted in a test tree opens without waiting for a writer.
    | getattr(os, "O_NONBLOCK", 0)
)


@functools.lru_cache(maxsize=8)
def _paths(root: str) -> tuple[str, dict[str, tuple[list[str], list[str]]]]:
    """``cgroup.controllers`` and each controller's (v2, v1) files under
    ``root``, joined once per root."""
    files = {
        c: ([os.path.join(root, f) for f in v2], [os.path.join(root, f) for f in v1])
        for c, (v2, v1) in FILES.items()
    }
    return os.path.join(root, "cgroup.controllers"), files


def read(root: str | None, controller: str) -> tuple[bool, list[str | None]]:
    """``controller``'s limit files under ``root`` as a ``cgroup-limit``:
    ``(v2, texts)``, v2 when ``cgroup.controllers`` is a regular file there
    (only stat'ed), each text None when its file is not a regular file,
    cannot be read or is not UTF-8. No tree (``root`` None): v1, all None."""
    if root is None:
        return False, [None] * len(FILES[controller][1])
    controllers, files = _paths(root)
    try:
        v2 = stat.S_ISREG(os.stat(controllers).st_mode)
    except (OSError, ValueError):
        v2 = False
    v2_files, v1_files = files[controller]
    return v2, [_read_text(f) for f in (v2_files if v2 else v1_files)]


def _read_text(path: str) -> str | None:
    """A regular file's whole content (symlinks followed), checked on the
    open descriptor so that nothing swapped in after a check is read."""
    try:
        fd = os.open(path, _FLAGS)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 1 << 16)
        if data and (chunk := os.read(fd, 1 << 16)):
            # Longer than one read: to the end, however the file reports
            # its size.
            chunks = [data, chunk]
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
