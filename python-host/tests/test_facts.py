"""Per-OS host facts, tested on any OS with the OS calls replaced at their
lowest boundary: macOS's ``sysctlbyname`` (ctypes), Windows's kernel32
functions (ctypes) and ``GetLastError``, ``os.kill``, ``os.cpu_count`` and
``resource.getrlimit``; plus the functions on top of them through both
backends, a missing cgroup tree, and importing without ``resource``."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import skyutils_wasm
from skyutils_wasm import _args, _facts
from skyutils_wasm._facts import LinuxFacts, MacFacts, NativeFacts, WindowsFacts

GIB = 1 << 30


# -- fakes of the OS calls -----------------------------------------------------


class FakeLibc:
    """``sysctlbyname`` with the C calling convention: writes the value into
    the caller's buffer and its length into ``*oldlenp``; -1 and errno on
    failure (ENOENT for an unknown name, ENOMEM for a short buffer)."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self.values = values
        self.calls: list[str] = []

    def sysctlbyname(self, name: bytes, oldp: Any, oldlenp: Any, newp: Any, newlen: int) -> int:
        assert newp is None and newlen == 0
        self.calls.append(name.decode())
        value = self.values.get(name.decode())
        if value is None:
            ctypes.set_errno(errno.ENOENT)
            return -1
        if len(value) > oldlenp.contents.value:
            ctypes.set_errno(errno.ENOMEM)
            return -1
        ctypes.memmove(oldp, value, len(value))
        oldlenp.contents.value = len(value)
        return 0


class FakeKernel32:
    """The kernel32 functions ``WindowsFacts`` calls; ``last_error`` is what
    ``GetLastError()`` answers after a failing call."""

    ALL_PROCESSOR_GROUPS = 0xFFFF

    def __init__(
        self, processors: int, total: int | None, processes: dict[int, int | None]
    ) -> None:
        self.processors = processors
        self.total = total
        # pid -> None (opens) or the error OpenProcess fails with.
        self.processes = processes
        self.last_error = 0
        self.open_handles = 0

    def GetActiveProcessorCount(self, group: int) -> int:
        assert group == self.ALL_PROCESSOR_GROUPS
        return self.processors

    def GlobalMemoryStatusEx(self, status: Any) -> int:
        st = ctypes.cast(status, ctypes.POINTER(_facts.MEMORYSTATUSEX)).contents
        if st.dwLength != 64 or self.total is None:
            self.last_error = 87  # ERROR_INVALID_PARAMETER
            return 0
        st.ullTotalPhys = self.total
        st.ullAvailPhys = self.total // 2
        return 1

    def OpenProcess(self, access: int, inherit: int, pid: int) -> int | None:
        assert access == 0x1000 and not inherit  # PROCESS_QUERY_LIMITED_INFORMATION
        err = self.processes.get(pid, 87)
        if err is None:
            self.open_handles += 1
            return 0x100 + pid
        self.last_error = err
        return None

    def CloseHandle(self, handle: int) -> int:
        self.open_handles -= 1
        return 1


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    libc = FakeLibc(
        {
            "hw.logicalcpu": (10).to_bytes(4, sys.byteorder),
            "hw.memsize": (16 * GIB).to_bytes(8, sys.byteorder),
        }
    )
    monkeypatch.setattr(_facts, "_libc", lambda: libc)
    return libc


@pytest.fixture
def win(monkeypatch: pytest.MonkeyPatch) -> FakeKernel32:
    k32 = FakeKernel32(12, 32 * GIB, {4: 5, 1234: None, 7: 8})
    monkeypatch.setattr(_facts, "_kernel32", lambda: k32)
    monkeypatch.setattr(_facts, "_last_error", lambda: k32.last_error)
    return k32


def fake_kill(alive: list[int], denied: list[int]) -> Any:
    def kill(pid: int, sig: int) -> None:
        assert sig == 0
        if pid in denied:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        if pid not in alive:
            raise ProcessLookupError(errno.ESRCH, "No such process")

    return kill


# -- the facts -------------------------------------------------------------------


def test_native_facts_match_this_os() -> None:
    expected: Any = {"darwin": MacFacts, "win32": WindowsFacts}.get(sys.platform, LinuxFacts)
    assert NativeFacts is expected
    assert isinstance(skyutils_wasm.SETTINGS.facts, expected)


def test_mac_cpus_and_memory_come_from_sysctl(mac: FakeLibc) -> None:
    facts = MacFacts()
    assert facts.logical_cpu_count() == 10
    assert facts.affinity_cpu_count() is None
    assert facts.memory_total_bytes() == 16 * GIB
    assert mac.calls == ["hw.logicalcpu", "hw.memsize"]


def test_mac_sysctl_failures(mac: FakeLibc) -> None:
    mac.values.clear()
    facts = MacFacts()
    assert facts.logical_cpu_count() is None  # psutil.cpu_count() says None
    with pytest.raises(OSError) as info:
        facts.memory_total_bytes()
    assert info.value.errno == errno.ENOENT
    assert "hw.memsize" in str(info.value)
    mac.values["hw.memsize"] = (7).to_bytes(4, sys.byteorder)
    with pytest.raises(OSError, match="returned 4 bytes, expected 8"):
        facts.memory_total_bytes()
    mac.values["hw.memsize"] = bytes(16)  # too large for the buffer: ENOMEM
    with pytest.raises(OSError) as info:
        facts.memory_total_bytes()
    assert info.value.errno == errno.ENOMEM


def test_mac_pids_are_signalled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "kill", fake_kill(alive=[501], denied=[1]))
    facts = MacFacts()
    assert facts.pid_exists(501) is True
    assert facts.pid_exists(1) is True  # EPERM: there is a process to refuse
    assert facts.pid_exists(502) is False
    assert facts.pid_exists(0) is False


def test_mac_nofile_from_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _r: (256, resource.RLIM_INFINITY))
    assert MacFacts().nofile_limit() == (256, None)


def test_windows_facts_from_kernel32(win: FakeKernel32) -> None:
    facts = WindowsFacts()
    assert facts.logical_cpu_count() == 12
    assert facts.affinity_cpu_count() is None
    assert facts.memory_total_bytes() == 32 * GIB
    assert facts.nofile_limit() == (None, None)
    assert facts.pid_exists(1234) is True
    assert facts.pid_exists(4) is True  # ERROR_ACCESS_DENIED
    assert facts.pid_exists(99) is False  # ERROR_INVALID_PARAMETER
    assert facts.pid_exists(0) is False
    assert win.open_handles == 0  # every handle opened was closed
    with pytest.raises(OSError, match=r"OpenProcess failed \(Windows error 8\)"):
        facts.pid_exists(7)


def test_windows_failures(win: FakeKernel32) -> None:
    win.processors, win.total = 0, None
    facts = WindowsFacts()
    assert facts.logical_cpu_count() is None
    with pytest.raises(OSError, match=r"GlobalMemoryStatusEx failed \(Windows error 87\)"):
        facts.memory_total_bytes()


def test_linux_nofile_and_pids_without_procfs(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _r: (resource.RLIM_INFINITY, 4096))
    assert LinuxFacts().nofile_limit() == (None, 4096)
    monkeypatch.setattr(_facts, "_has_procfs", False)
    monkeypatch.setattr(os, "kill", fake_kill(alive=[42], denied=[1]))
    facts = LinuxFacts()
    assert (facts.pid_exists(42), facts.pid_exists(1), facts.pid_exists(43)) == (True, True, False)


# -- the functions on top, through both backends ---------------------------------


@pytest.fixture(params=["python", "wasm"])
def backend(request: Any, tmp_path: Path) -> Iterator[str]:
    skyutils_wasm.set_backend(request.param)
    # No pod variables and no cgroup tree (as on macOS and Windows).
    skyutils_wasm.configure(env_override={}, cgroup_root=str(tmp_path / "no-cgroup"))
    _args._reset_low_fd_warning()
    yield str(request.param)
    skyutils_wasm.configure(facts=NativeFacts(), env_override=None, cgroup_root="/sys/fs/cgroup")
    _args._reset_low_fd_warning()


def functions(tmp_path: Path) -> tuple[Any, ...]:
    d = tmp_path / "d"
    d.mkdir(exist_ok=True)
    for i in range(30):
        (d / str(i)).touch()
    return (
        skyutils_wasm.get_cpu_count(),
        skyutils_wasm.get_mem_size_gb(),
        skyutils_wasm.get_parallel_threads(),
        skyutils_wasm.get_max_workers_for_file_mounts({"/dst": str(d)}),
        skyutils_wasm.is_process_alive(1234),
        skyutils_wasm.is_process_alive(4),
        skyutils_wasm.is_process_alive(99),
    )


def test_functions_on_macos(
    backend: str, mac: FakeLibc, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import resource

    monkeypatch.setattr(os, "kill", fake_kill(alive=[1234], denied=[4]))
    monkeypatch.setattr(os, "cpu_count", lambda: 10)
    monkeypatch.setattr(resource, "getrlimit", lambda _r: (256, resource.RLIM_INFINITY))
    skyutils_wasm.configure(facts=MacFacts())
    # soft limit 256: (256 - 100) // (5 * 30) = 1 worker, and the low-limit warning.
    assert functions(tmp_path) == (10, 16.0, 9, 1, True, True, False)
    assert _args._low_fd_warning_shown


def test_functions_on_windows(
    backend: str, win: FakeKernel32, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 12)
    skyutils_wasm.configure(facts=WindowsFacts())
    # No RLIMIT_NOFILE: the file-descriptor term does not constrain, no warning.
    assert functions(tmp_path) == (12, 32.0, 11, 11, True, True, False)
    assert not _args._low_fd_warning_shown
    assert win.open_handles == 0


def test_missing_cgroup_tree_means_no_limit(backend: str, tmp_path: Path) -> None:
    facts = NativeFacts()
    cpus = facts.logical_cpu_count()
    affinity = facts.affinity_cpu_count()
    expected_cpus = cpus if affinity is None or cpus is None else min(cpus, affinity)
    expected_gb = facts.memory_total_bytes() / GIB
    for root in (tmp_path / "missing", tmp_path / "empty", None):
        if root is not None and root.name == "empty":
            root.mkdir()
        skyutils_wasm.configure(cgroup_root=None if root is None else str(root))
        assert skyutils_wasm.get_cpu_count() == expected_cpus
        assert skyutils_wasm.get_mem_size_gb() == expected_gb


# -- importing where `resource` does not exist (Windows) ---------------------------

IMPORT_WITHOUT_RESOURCE = r"""
import importlib.abc, os, sys

class NoResource(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "resource":
            raise ModuleNotFoundError("No module named 'resource'", name=name)
        return None

sys.modules.pop("resource", None)
sys.meta_path.insert(0, NoResource())
del os.register_at_fork  # absent on Windows too

import skyutils_wasm
from skyutils_wasm import _facts

assert "resource" not in sys.modules
assert _facts.LinuxFacts().nofile_limit() == (None, None)
for backend in ("python", "wasm"):
    skyutils_wasm.set_backend(backend)
    skyutils_wasm.configure(env_override={}, cgroup_root=None)
    threads = skyutils_wasm.get_parallel_threads()
    assert skyutils_wasm.get_max_workers_for_file_mounts({}) == threads, backend
    assert skyutils_wasm.base36_encode("ff") == "73"
assert "resource" not in sys.modules
print("ok")
"""


def test_import_without_resource_module() -> None:
    src = Path(skyutils_wasm.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_RESOURCE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cgroup_controllers_is_only_stated(tmp_path: Path) -> None:
    """``cgroup.controllers`` only tells v2 from v1 (upstream's
    ``os.path.isfile``): it is never read, so a huge or undecodable one in a
    test tree costs nothing and still means v2; limit files that are not
    regular UTF-8 files read as None, and a FIFO is not waited on."""
    from skyutils_wasm import _cgroup

    with open(tmp_path / "cgroup.controllers", "wb") as f:
        f.truncate(64 << 20)
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert _cgroup.read(str(tmp_path), "cpu") == (True, ["50000 100000\n"])
    (tmp_path / "cgroup.controllers").write_bytes(b"\xff")
    (tmp_path / "memory.max").write_bytes(b"\xff")
    assert _cgroup.read(str(tmp_path), "memory") == (True, [None])
    (tmp_path / "cgroup.controllers").unlink()
    (tmp_path / "cgroup.controllers").mkdir()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    os.mkfifo(tmp_path / "cpu" / "cpu.cfs_period_us")
    assert _cgroup.read(str(tmp_path), "cpu") == (False, ["-1\n", None])
    assert _cgroup.read(None, "memory") == (False, [None])


_CGROUP_CHILD = """
import os, sys
import skyutils_wasm
skyutils_wasm.set_backend(sys.argv[2])
skyutils_wasm.configure(env_override={}, cgroup_root=sys.argv[1])
print(skyutils_wasm.get_cpu_count(), skyutils_wasm.get_mem_size_gb())
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_cgroup_fifo_and_device_mean_no_limit(backend: str, tmp_path: Path) -> None:
    """A FIFO without a writer as ``cpu.max`` and ``/dev/zero`` as
    ``memory.max`` give the answers of a tree without those files (upstream
    would block or read forever; both backends answer "no limit")."""
    plain, odd = tmp_path / "plain", tmp_path / "odd"
    for root in (plain, odd):
        root.mkdir()
        (root / "cgroup.controllers").write_text("cpu memory\n")
    os.mkfifo(odd / "cpu.max")
    (odd / "memory.max").symlink_to("/dev/zero")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))

    def run(root: Path) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _CGROUP_CHILD, str(root), backend],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,  # a guard: before the fix the pure backend blocked here
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run(odd) == run(plain)
