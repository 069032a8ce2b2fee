"""Raw host facts behind the component's ``host-facts`` import (and used by
the pure-Python backend): Linux implementation without psutil."""

from __future__ import annotations

import errno
import os
import resource
from typing import Optional, Protocol, Tuple

from . import _log


#: Whether procfs is mounted (checked once: it does not come and go).
_has_procfs: Optional[bool] = None

# (soft, hard); None means unlimited.
NofileLimit = Tuple[Optional[int], Optional[int]]


class HostFacts(Protocol):
    """A source of host facts. Raising makes the call fail loudly."""

    def logical_cpu_count(self) -> Optional[int]: ...

    def affinity_cpu_count(self) -> Optional[int]: ...

    def os_cpu_count(self) -> Optional[int]: ...

    def memory_total_bytes(self) -> int: ...

    def nofile_limit(self) -> NofileLimit: ...

    def pid_exists(self, pid: int) -> bool: ...

    def tcp4_port_bindable(self, port: int) -> bool: ...


def _online_cpus() -> Optional[int]:
    try:
        n = os.sysconf("SC_NPROCESSORS_ONLN")
    except (ValueError, OSError):
        return None
    return n if n > 0 else None


class NativeFacts:
    """The facts of the machine this process runs on."""

    def logical_cpu_count(self) -> Optional[int]:
        """Logical CPUs (``psutil.cpu_count()``)."""
        return _online_cpus()

    def affinity_cpu_count(self) -> Optional[int]:
        """CPUs in the affinity mask; None when the platform has no such API."""
        getaff = getattr(os, "sched_getaffinity", None)
        if getaff is None:
            return None
        try:
            return len(getaff(0))
        except OSError:
            return _online_cpus()

    def os_cpu_count(self) -> Optional[int]:
        """``os.cpu_count()``."""
        return os.cpu_count()

    def memory_total_bytes(self) -> int:
        """``MemTotal`` of /proc/meminfo in bytes."""
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
        raise OSError("MemTotal missing from /proc/meminfo")

    def nofile_limit(self) -> NofileLimit:
        """``RLIMIT_NOFILE`` (None = unlimited)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        inf = resource.RLIM_INFINITY
        return (None if soft == inf else soft, None if hard == inf else hard)

    def pid_exists(self, pid: int) -> bool:
        """Whether the kernel has a process-table entry for ``pid``."""
        global _has_procfs
        if pid <= 0:
            return False
        if _has_procfs is None:
            _has_procfs = os.path.exists("/proc/self")
        if _has_procfs:
            return os.path.exists(f"/proc/{pid}")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OSError as e:
            return e.errno == errno.EPERM
        return True

    def tcp4_port_bindable(self, port: int) -> bool:
        """Whether a fresh IPv4 TCP socket (no SO_REUSEADDR) binds 0.0.0.0:port."""
        import socket

        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("0.0.0.0", port))
        except OSError as e:
            _log.get("sky.utils.common_utils").debug(f"Error binding port {port}: {e}")
            return False
        return True
