"""Raw host facts behind the component's ``host-facts`` import (and used by
the pure-Python backend), per OS and without psutil.

* Linux: ``sysconf``, ``sched_getaffinity``, ``/proc/meminfo``,
  ``/proc/<pid>`` (``kill(pid, 0)`` without procfs), ``RLIMIT_NOFILE``.
* macOS: ``sysctl hw.logicalcpu`` and ``hw.memsize`` through ctypes (as
  psutil), no affinity API, ``RLIMIT_NOFILE``, ``kill(pid, 0)``.
* Windows: ``kernel32`` through ctypes: ``GetActiveProcessorCount``,
  ``GlobalMemoryStatusEx``, ``OpenProcess``; no affinity fact and no
  ``RLIMIT_NOFILE`` (unlimited).

Each OS's system calls sit behind one small loader (``_libc``,
``_kernel32``, ``_last_error``), so every OS's logic is tested on any OS with
those replaced. ``resource`` is imported only when a limit is read.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from typing import Any, Protocol

from . import _log

#: Whether procfs is mounted (checked once: it does not come and go).
_has_procfs: bool | None = None

# (soft, hard); None means unlimited.
NofileLimit = tuple[int | None, int | None]


class HostFacts(Protocol):
    """A source of host facts. Raising makes the call fail loudly."""

    def logical_cpu_count(self) -> int | None: ...

    def affinity_cpu_count(self) -> int | None: ...

    def os_cpu_count(self) -> int | None: ...

    def memory_total_bytes(self) -> int: ...

    def nofile_limit(self) -> NofileLimit: ...

    def pid_exists(self, pid: int) -> bool: ...

    def tcp4_port_bindable(self, port: int) -> bool: ...


def _online_cpus() -> int | None:
    sysconf = getattr(os, "sysconf", None)
    if sysconf is None:
        return None
    try:
        n = sysconf("SC_NPROCESSORS_ONLN")
    except (ValueError, OSError):
        return None
    return n if isinstance(n, int) and n > 0 else None


def _rlimit_nofile() -> NofileLimit:
    """``RLIMIT_NOFILE`` (None = unlimited); unlimited where the platform has
    no ``resource`` module (Windows)."""
    try:
        import resource
    except ImportError:
        return (None, None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inf = resource.RLIM_INFINITY
    return (None if soft == inf else soft, None if hard == inf else hard)


def _kill_pid_exists(pid: int) -> bool:
    """psutil's POSIX ``pid_exists``: ``kill(pid, 0)``, EPERM meaning there is
    a process to refuse the signal."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as e:
        if e.errno == errno.EPERM:
            return True
        if e.errno == errno.ESRCH:
            return False
        raise
    return True


class _CommonFacts:
    """What every OS shares."""

    def os_cpu_count(self) -> int | None:
        """``os.cpu_count()``."""
        return os.cpu_count()

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


class LinuxFacts(_CommonFacts):
    """Linux: procfs, ``sysconf`` and ``sched_getaffinity``."""

    def logical_cpu_count(self) -> int | None:
        """Logical CPUs (``psutil.cpu_count()``)."""
        return _online_cpus()

    def affinity_cpu_count(self) -> int | None:
        """CPUs in the affinity mask; None when the platform has no such API."""
        getaff = getattr(os, "sched_getaffinity", None)
        if getaff is None:
            return None
        try:
            return len(getaff(0))
        except OSError:
            return _online_cpus()

    def memory_total_bytes(self) -> int:
        """``MemTotal`` of /proc/meminfo in bytes."""
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
        raise OSError("MemTotal missing from /proc/meminfo")

    def nofile_limit(self) -> NofileLimit:
        """``RLIMIT_NOFILE`` (None = unlimited)."""
        return _rlimit_nofile()

    def pid_exists(self, pid: int) -> bool:
        """Whether the kernel has a process-table entry for ``pid``."""
        global _has_procfs
        if pid <= 0:
            return False
        if _has_procfs is None:
            _has_procfs = os.path.exists("/proc/self")
        if _has_procfs:
            return os.path.exists(f"/proc/{pid}")
        return _kill_pid_exists(pid)


# -- macOS -------------------------------------------------------------------

_libc_handle: Any = None


def _libc() -> Any:
    """The C library (macOS: ``sysctlbyname`` lives there)."""
    global _libc_handle
    if _libc_handle is None:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.sysctlbyname
        fn.argtypes = [
            ctypes.c_char_p,
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.c_void_p,
            ctypes.c_size_t,
        ]
        fn.restype = ctypes.c_int
        _libc_handle = libc
    return _libc_handle


def _sysctl(name: str, value: Any) -> Any:
    """``sysctlbyname(name)`` into the ctypes integer ``value``; raises
    OSError when it fails or answers with another size."""
    size = ctypes.c_size_t(ctypes.sizeof(value))
    if _libc().sysctlbyname(name.encode(), ctypes.pointer(value), ctypes.pointer(size), None, 0):
        code = ctypes.get_errno()
        raise OSError(code, f"sysctl {name}: {os.strerror(code)}")
    if size.value != ctypes.sizeof(value):
        raise OSError(f"sysctl {name} returned {size.value} bytes, expected {ctypes.sizeof(value)}")
    return value.value


class MacFacts(_CommonFacts):
    """macOS: ``sysctl`` through ctypes (as psutil), no affinity API."""

    def logical_cpu_count(self) -> int | None:
        """``hw.logicalcpu`` (``psutil.cpu_count()``); None when sysctl fails."""
        try:
            n = _sysctl("hw.logicalcpu", ctypes.c_int())
        except OSError:
            return None
        return n if isinstance(n, int) and n > 0 else None

    def affinity_cpu_count(self) -> int | None:
        """None: macOS has no affinity API (``os.sched_getaffinity`` is absent)."""
        return None

    def memory_total_bytes(self) -> int:
        """``hw.memsize`` (``psutil.virtual_memory().total``)."""
        return int(_sysctl("hw.memsize", ctypes.c_uint64()))

    def nofile_limit(self) -> NofileLimit:
        """``RLIMIT_NOFILE`` (None = unlimited)."""
        return _rlimit_nofile()

    def pid_exists(self, pid: int) -> bool:
        """``kill(pid, 0)`` (psutil); pid 0 is never asked by the functions."""
        if pid <= 0:
            return False
        return _kill_pid_exists(pid)


# -- Windows -----------------------------------------------------------------

ALL_PROCESSOR_GROUPS = 0xFFFF
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_PARAMETER = 87


class MEMORYSTATUSEX(ctypes.Structure):
    """The argument of ``GlobalMemoryStatusEx``."""

    _fields_ = [
        ("dwLength", ctypes.c_uint32),
        ("dwMemoryLoad", ctypes.c_uint32),
        ("ullTotalPhys", ctypes.c_uint64),
        ("ullAvailPhys", ctypes.c_uint64),
        ("ullTotalPageFile", ctypes.c_uint64),
        ("ullAvailPageFile", ctypes.c_uint64),
        ("ullTotalVirtual", ctypes.c_uint64),
        ("ullAvailVirtual", ctypes.c_uint64),
        ("ullAvailExtendedVirtual", ctypes.c_uint64),
    ]


_kernel32_handle: Any = None


def _kernel32() -> Any:
    """``kernel32.dll`` with the prototypes used here (Windows only)."""
    global _kernel32_handle
    if _kernel32_handle is None:
        # getattr: ctypes has WinDLL (and get_last_error) only on Windows.
        k32 = getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)  # noqa: B009
        k32.GetActiveProcessorCount.argtypes = [ctypes.c_uint16]
        k32.GetActiveProcessorCount.restype = ctypes.c_uint32
        k32.GlobalMemoryStatusEx.argtypes = [ctypes.POINTER(MEMORYSTATUSEX)]
        k32.GlobalMemoryStatusEx.restype = ctypes.c_int
        k32.OpenProcess.argtypes = [ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32]
        k32.OpenProcess.restype = ctypes.c_void_p
        k32.CloseHandle.argtypes = [ctypes.c_void_p]
        k32.CloseHandle.restype = ctypes.c_int
        _kernel32_handle = k32
    return _kernel32_handle


def _last_error() -> int:
    """``GetLastError()`` of the last kernel32 call (saved by ctypes)."""
    return int(getattr(ctypes, "get_last_error")())  # noqa: B009


def _win_error(call: str, code: int) -> OSError:
    return OSError(None, f"{call} failed (Windows error {code})", None, code)


class WindowsFacts(_CommonFacts):
    """Windows: kernel32 through ctypes; no affinity fact, no RLIMIT_NOFILE."""

    def logical_cpu_count(self) -> int | None:
        """``GetActiveProcessorCount(ALL_PROCESSOR_GROUPS)`` (psutil)."""
        n = int(_kernel32().GetActiveProcessorCount(ALL_PROCESSOR_GROUPS))
        return n if n > 0 else None

    def affinity_cpu_count(self) -> int | None:
        """None: upstream uses ``os.sched_getaffinity``, absent on Windows."""
        return None

    def memory_total_bytes(self) -> int:
        """``GlobalMemoryStatusEx().ullTotalPhys`` (psutil)."""
        status = MEMORYSTATUSEX()
        status.dwLength = ctypes.sizeof(MEMORYSTATUSEX)
        if not _kernel32().GlobalMemoryStatusEx(ctypes.byref(status)):
            raise _win_error("GlobalMemoryStatusEx", _last_error())
        return int(status.ullTotalPhys)

    def nofile_limit(self) -> NofileLimit:
        """Unlimited: Windows has no ``RLIMIT_NOFILE``."""
        return (None, None)

    def pid_exists(self, pid: int) -> bool:
        """``OpenProcess``: a handle, or "access denied", means it exists."""
        if pid <= 0 or pid > 0xFFFFFFFF:
            return False
        k32 = _kernel32()
        handle = k32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid)
        if handle:
            k32.CloseHandle(handle)
            return True
        code = _last_error()
        if code == ERROR_ACCESS_DENIED:
            return True
        if code == ERROR_INVALID_PARAMETER:
            return False
        raise _win_error("OpenProcess", code)


#: The facts of the machine this process runs on.
NativeFacts: type[HostFacts]
if sys.platform == "darwin":
    NativeFacts = MacFacts
elif sys.platform == "win32":
    NativeFacts = WindowsFacts
else:
    NativeFacts = LinuxFacts
