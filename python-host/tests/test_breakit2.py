"""Regressions found by trying to break the day's changes: the codec of
``read_last_n_lines`` is looked up only when upstream's first decode does,
and the pure backend reads cgroup files as the wasm backend's host does
(a FIFO is not waited on, a device is not read)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import skyutils_wasm


@pytest.fixture(params=["python", "wasm"])
def backend(request: Any) -> Iterator[str]:
    skyutils_wasm.set_backend(request.param)
    yield request.param
    skyutils_wasm.set_backend("wasm")


def _outcome(call: Any) -> Any:
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - the outcome is compared
        return type(e).__name__, str(e)


def test_codec_looked_up_by_the_first_decode(backend: str, tmp_path: Path) -> None:
    """Upstream (0.14.1) checks n, chunk_size and the path first, returns []
    for n == 0 or an empty file without decoding, and only then decodes."""
    f, empty = tmp_path / "abc", tmp_path / "empty"
    f.write_bytes(b"a\nb\nc\n")
    empty.write_bytes(b"")
    read = skyutils_wasm.read_last_n_lines
    cases: list[tuple[Any, Any]] = [
        (lambda: read(str(f), 0, encoding="bogus"), []),
        (lambda: read(str(empty), 3, encoding="bogus"), []),
        (
            lambda: read(str(tmp_path / "missing"), 3, encoding="bogus"),
            ("AssertionError", f"File not found: {tmp_path / 'missing'}"),
        ),
        (
            lambda: read(str(f), -1, encoding="bogus"),
            ("AssertionError", "n must be non-negative. Got -1"),
        ),
        (
            lambda: read(str(f), 2, 0, encoding="bogus"),
            ("AssertionError", "chunk_size must be positive. Got 0"),
        ),
        (lambda: read(str(f), 2, encoding="bogus"), ("LookupError", "unknown encoding: bogus")),
        (
            lambda: read(str(f), 2, encoding=None),
            ("TypeError", "decode() argument 'encoding' must be str, not None"),
        ),
        (lambda: read(str(empty), 2, encoding=None), []),
        (lambda: read(str(f), 0, encoding=None), []),
        (lambda: read(str(f), 2, encoding="latin-1"), ["b\n", "c"]),
    ]
    for call, expected in cases:
        assert _outcome(call) == expected, backend


_CHILD = """
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
            [sys.executable, "-c", _CHILD, str(root), backend],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,  # a guard: before the fix the pure backend blocked here
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run(odd) == run(plain)


def test_host_fact_exceptions_reach_their_own_thread() -> None:
    """Each thread's plugin (its own store) calls a host fact that raises;
    every call re-raises that thread's exception, never another thread's
    (the carried exception was one global for all threads)."""
    import threading

    from skyutils_wasm import Policy
    from skyutils_wasm._facts import LinuxFacts

    class Raising(LinuxFacts):
        def __init__(self, tag: int) -> None:
            self.tag = tag

        def pid_exists(self, pid: int) -> bool:
            raise ValueError(f"thread {self.tag} pid {pid}")

    wrong: list[tuple[int, str]] = []

    def work(tag: int) -> None:
        plugin = skyutils_wasm.load(None, Policy(), facts=Raising(tag))
        for pid in range(1, 300):
            got = _outcome(lambda pid=pid: plugin.is_process_alive(pid))
            if got != ("ValueError", f"thread {tag} pid {pid}"):
                wrong.append((tag, repr(got)))

    threads = [threading.Thread(target=work, args=(tag,)) for tag in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_keyboard_interrupt_in_a_host_fact_reaches_the_caller() -> None:
    """A ``KeyboardInterrupt`` raised in a host fact (Ctrl-C while it runs)
    is re-raised to the caller, not swallowed into a trap."""
    from skyutils_wasm import Policy
    from skyutils_wasm._facts import LinuxFacts

    class Interrupted(LinuxFacts):
        def pid_exists(self, pid: int) -> bool:
            raise KeyboardInterrupt

    plugin = skyutils_wasm.load(None, Policy(), facts=Interrupted())
    with pytest.raises(KeyboardInterrupt):
        plugin.is_process_alive(5)


@pytest.mark.parametrize(
    ("fact", "value"),
    [
        ("logical_cpu_count", 1 << 32),
        ("logical_cpu_count", -1),
        ("logical_cpu_count", "4"),
        ("memory_total_bytes", 1 << 64),
        ("memory_total_bytes", None),
        ("os_cpu_count", 10**30),
    ],
)
def test_a_host_fact_out_of_its_type_is_a_type_or_overflow_error(fact: str, value: Any) -> None:
    """A HostFacts value its WIT type cannot hold raises TypeError (or
    wasmtime-py's OverflowError on the public conversion), never the
    packer's ``struct.error``."""
    import struct

    from skyutils_wasm import Policy
    from skyutils_wasm._facts import LinuxFacts

    class Odd(LinuxFacts):
        def affinity_cpu_count(self) -> int | None:
            return None

    setattr(Odd, fact, lambda self: value)
    plugin = skyutils_wasm.load(None, Policy(cgroup_root=None), facts=Odd())
    call = {
        "logical_cpu_count": plugin.get_cpu_count,
        "memory_total_bytes": plugin.get_mem_size_gb,
        "os_cpu_count": plugin.get_parallel_threads,
    }[fact]
    with pytest.raises((TypeError, OverflowError)) as info:
        call()
    assert not isinstance(info.value, struct.error)
