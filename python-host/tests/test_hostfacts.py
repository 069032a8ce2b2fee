"""The Python host's host functions: every ``host-facts`` result shape
written as a C-owned value (``_hostval``) and read back with the export-call
lifting of ``_abi`` (strings past the first buffer, ``err`` texts); a host
fact's exception reaches its own thread's caller (Ctrl-C too), and a value
its WIT type cannot hold is a TypeError."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

import skyutils_wasm
from skyutils_wasm import _abi, _hostfacts, _hostval, _val

CASES: dict[str, list[Any]] = {
    "logical-cpu-count": [None, 0, 8, (1 << 32) - 1],
    "memory-total-bytes": [0, 1 << 40, (1 << 64) - 1],
    "pid-exists": [True, False],
    "nofile-limit": [(("finite", 1024), ("unlimited", None)), (("unlimited", None),) * 2],
    "read-cgroup-limit": [
        (False, ["-1\n", "100000\n"]),
        (True, [None]),
        (True, [""]),
        (False, []),
        # Past the first 512-byte buffer: the tree is packed again, larger.
        (True, ["x" * 5000 + "é" * 70000]),
        (False, [None, "50000 100000\n"]),
    ],
}


def _round_trip(write: _hostval.Writer, lift: Any, value: Any) -> Any:
    slot = _val.Val()
    write(value, ctypes.addressof(slot))
    try:
        return lift(slot)
    finally:
        _val.val_delete(ctypes.addressof(slot))


@pytest.mark.parametrize("name", sorted(CASES))
def test_results_read_back_as_written(name: str) -> None:
    ok = _hostfacts.SIGNATURES[name][1]
    write_ok, write_err = _hostval.result_writers(ok)
    lift = _abi.compile_lift(["result", ok, ["string"]])
    for value in CASES[name]:
        got = _round_trip(write_ok, lift, value)
        assert got[0] is True
        if ok[0] == "record":
            fields = [n for n, _ in ok[1]]
            assert got[1] == dict(zip(fields, value, strict=True))
        else:
            assert got[1] == value
    text = "capability 'cpu' is not granted by the host policy: é"
    assert _round_trip(write_err, lift, text) == (False, text)


def _outcome(call: Any) -> Any:
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - the outcome is compared
        return type(e).__name__, str(e)


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


def test_a_call_queued_on_a_discarded_instance_runs_on_a_fresh_one() -> None:
    """One thread's host fact raises (its trap discards the shared
    instance) while other threads call through the same plugin: their calls,
    which picked the instance before it was discarded, still answer."""
    import threading

    from skyutils_wasm import Policy
    from skyutils_wasm._facts import LinuxFacts

    class RaisingFor13(LinuxFacts):
        def pid_exists(self, pid: int) -> bool:
            if pid == 13:
                raise RuntimeError("no 13")
            return True

    plugin = skyutils_wasm.load(None, Policy(), facts=RaisingFor13())
    wrong: list[str] = []

    def raising() -> None:
        for _ in range(300):
            got = _outcome(lambda: plugin.is_process_alive(13))
            if got != ("RuntimeError", "no 13"):
                wrong.append(f"13: {got!r}")

    def answering() -> None:
        for _ in range(300):
            got = _outcome(lambda: plugin.is_process_alive(1))
            if got is not True:
                wrong.append(f"1: {got!r}")

    threads = [threading.Thread(target=raising)] + [
        threading.Thread(target=answering) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
