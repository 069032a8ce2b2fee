"""Untrusted components under a policy: the misbehaving test plugin
(tests/plugins/evil in the repository root) attacks the host; every attack
must end in a clear error, nothing outside the policy may be read or
written, and the next call on the same Plugin must work. Mirrors the Rust
host's tests/all/plugins.rs."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import skyutils_wasm
from skyutils_wasm import (
    CapabilityDeniedError,
    DeadlineExceededError,
    MemoryLimitExceededError,
    MissingExportError,
    OutOfFuelError,
    OutputTooLargeError,
    Plugin,
    Policy,
    TrapError,
    _args,
    _backend,
)

EVIL = Path(__file__).resolve().parents[2] / (
    "target/plugins/wasm32-wasip2/release/evil_plugin.wasm"
)
FAST = Policy(deadline=0.5, memory_limit=64 << 20)


@pytest.fixture(scope="module")
def evil_path() -> Path:
    if not EVIL.is_file():
        pytest.fail(f"{EVIL} missing (run `make plugins` in the repository root)")
    return EVIL


@pytest.fixture(scope="module")
def evil(evil_path: Path) -> Plugin:
    return skyutils_wasm.load(evil_path, FAST)


def attack(plugin: Plugin, command: str, exc: type[BaseException], match: str | None = None) -> str:
    """Runs one attack, checks its error, then that the plugin still works."""
    with pytest.raises(exc, match=match) as info:
        plugin.base36_encode(command)
    assert plugin.base36_encode("ok") == "fine", f"{command}: the next call must work"
    return str(info.value)


def test_ok(evil: Plugin) -> None:
    assert evil.base36_encode("ok") == "fine"
    assert evil.truncate_long_string("unchanged", 1) == "unchanged"


@pytest.mark.parametrize("command", ["read-absolute", "read-dotdot"])
def test_reading_outside_without_a_grant_fails(evil: Plugin, command: str) -> None:
    attack(evil, command, ValueError, "No such file")


def test_runaway_loop_hits_the_deadline(evil: Plugin) -> None:
    msg = attack(evil, "loop", DeadlineExceededError, "deadline of 0.5 s")
    assert "deadline" in msg


def test_hammering_host_imports_hits_the_deadline(evil: Plugin) -> None:
    attack(evil, "hammer-imports", DeadlineExceededError)


def test_allocating_4gib_hits_the_memory_cap(evil: Plugin) -> None:
    msg = attack(evil, "alloc-4gib", MemoryLimitExceededError)
    assert str(64 << 20) in msg
    assert MemoryLimitExceededError.kind == "MemoryLimitExceeded"


def test_stack_overflow_traps(evil: Plugin) -> None:
    attack(evil, "stack-overflow", TrapError)


def test_panic_traps_with_its_message(evil: Plugin) -> None:
    attack(evil, "panic", TrapError, "panics on purpose")


def test_huge_output_is_refused(evil_path: Path) -> None:
    roomy = skyutils_wasm.load(evil_path, Policy(max_output=1 << 20))
    with pytest.raises(OutputTooLargeError) as info:
        roomy.base36_encode("huge-output")
    assert (info.value.size, info.value.limit) == (100 << 20, 1 << 20)
    assert roomy.base36_encode("ok") == "fine"


def test_huge_output_under_a_small_memory_cap_is_a_memory_error(evil: Plugin) -> None:
    attack(evil, "huge-output", MemoryLimitExceededError)


def test_fuel_bounds_a_busy_loop(evil_path: Path) -> None:
    metered = skyutils_wasm.load(evil_path, Policy(fuel=5_000_000, deadline=20))
    attack(metered, "loop", OutOfFuelError, "5000000")
    # Fuel is per call: a cheap call after an exhausted one runs.
    assert metered.base36_encode("ok") == "fine"


def test_only_allowed_environment_variables_are_visible(
    evil_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYPILOT_POD_CPU_CORE_LIMIT", "4")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("EXACTLY_THIS", "yes")
    monkeypatch.setenv("EXACTLY_THIS_NOT", "no")
    plugin = skyutils_wasm.load(evil_path, FAST)
    lines = plugin.base36_encode("env").splitlines()
    assert "SKYPILOT_POD_CPU_CORE_LIMIT=4" in lines
    assert all(ln.startswith("SKYPILOT_POD_") for ln in lines), lines
    assert "hunter2" not in "\n".join(lines)
    exact = skyutils_wasm.load(evil_path, Policy(env_allow=("EXACTLY_THIS",), deadline=0.5))
    assert exact.base36_encode("env") == "EXACTLY_THIS=yes\n"
    nothing = skyutils_wasm.load(evil_path, Policy(env_allow=(), deadline=0.5))
    assert nothing.base36_encode("env") == ""


def test_missing_interface_is_a_clear_error(evil: Plugin) -> None:
    with pytest.raises(MissingExportError, match="skypilot:utils/system@0.1.0") as info:
        evil.get_cpu_count()
    assert info.value.interface == "skypilot:utils/system@0.1.0"
    assert info.value.kind == "MissingExport"
    assert evil.base36_encode("ok") == "fine"
    with pytest.raises(MissingExportError):
        evil.get_parallel_threads()
    assert evil.base36_encode("ok") == "fine"


# -- the filesystem: nothing escapes a granted directory -------------------


def granted_dir(tmp_path: Path) -> Path:
    d = tmp_path / "granted"
    d.mkdir()
    (d / "log.txt").write_text("line\n")
    (d / "victim.txt").write_text("keep me\n")
    os.symlink("/etc/passwd", d / "planted")
    os.symlink("/etc", d / "planted-etc")
    return d


def snapshot(d: Path) -> list[tuple[str, bytes, str]]:
    out = []
    for e in sorted(os.listdir(d)):
        p = d / e
        link = os.readlink(p) if p.is_symlink() else ""
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        out.append((e, data, link))
    return out


def assert_all_denied(report: str) -> None:
    lines = report.splitlines()
    assert len(lines) == 8, report
    for line in lines:
        assert ": denied (" in line, f"escape attempt succeeded: {line}"


@pytest.mark.parametrize("mode", ["per-call", "allow-dirs"])
def test_nothing_escapes_a_granted_directory(evil_path: Path, tmp_path: Path, mode: str) -> None:
    d = granted_dir(tmp_path)
    before = snapshot(d)
    allow = None if mode == "per-call" else [str(d)]
    plugin = skyutils_wasm.load(evil_path, Policy(allow_dirs=allow, deadline=2.0))
    out = plugin.read_last_n_lines(str(d / "log.txt"), 1)
    assert out[0] == "line\n"
    assert_all_denied(out[1])
    with pytest.raises(ValueError) as info:
        plugin.estimate_fd_for_directory(str(d))
    assert_all_denied(str(info.value))
    assert snapshot(d) == before, "the granted directory changed"
    assert plugin.base36_encode("ok") == "fine"


def test_allow_dirs_refuses_paths_outside(evil_path: Path, tmp_path: Path) -> None:
    d = granted_dir(tmp_path)
    plugin = skyutils_wasm.load(evil_path, Policy(allow_dirs=[str(d)], deadline=2.0))
    for path in ["/etc/passwd", str(d / "planted"), str(d / "planted-etc/passwd"), str(d / "..")]:
        with pytest.raises(CapabilityDeniedError, match="outside the allowed directories"):
            plugin.read_last_n_lines(path, 1)
    with pytest.raises(PermissionError):
        plugin.estimate_fd_for_directory("/etc")
    # Python-only path types never reach the host filesystem.
    with pytest.raises(TypeError):
        plugin.read_last_n_lines(0, 1)  # type: ignore[arg-type]
    assert plugin.base36_encode("ok") == "fine"


# -- the real component as a plugin -----------------------------------------


def test_embedded_component_as_a_plugin(tmp_path: Path) -> None:
    plugin = skyutils_wasm.load(None, Policy())
    assert plugin.base36_encode("ff") == "73"
    assert plugin.format_float(1.25, 1) == "1.2"
    f = tmp_path / "f.txt"
    f.write_text("a\nb\nc\n")
    assert plugin.read_last_n_lines(str(f), 2) == _args.read_last_n_lines(
        _backend.load("python"), str(f), 2, 8192, "utf-8", "replace"
    )
    assert plugin.hash_file(str(f), "sha256").hexdigest() == (
        __import__("hashlib").sha256(b"a\nb\nc\n").hexdigest()
    )
    assert plugin.estimate_fd_for_directory(str(tmp_path)) == 5
    assert plugin.get_parallel_threads() >= 4
    assert plugin.is_process_alive(os.getpid())


def test_denied_capabilities(tmp_path: Path) -> None:
    plugin = skyutils_wasm.load(None, Policy(capabilities=frozenset(), cgroup_root=None))
    with pytest.raises(CapabilityDeniedError, match="capability 'cpu' is not granted"):
        plugin.get_cpu_count()
    with pytest.raises(CapabilityDeniedError, match="capability 'memory' is not granted"):
        plugin.get_mem_size_gb()
    with pytest.raises(CapabilityDeniedError, match="capability 'processes' is not granted"):
        plugin.is_process_alive(os.getpid())
    with pytest.raises(CapabilityDeniedError, match="capability 'network' is not granted"):
        plugin.find_free_port(40000)
    # Pure functions need no capability.
    assert plugin.base36_encode("ff") == "73"
    only_cpu = skyutils_wasm.load(None, Policy(capabilities=frozenset({"cpu"})))
    assert (only_cpu.get_cpu_count() or 0) >= 1


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="unknown capabilities"):
        Policy(capabilities=frozenset({"root"}))
    with pytest.raises(ValueError):
        Policy(deadline=0)
    p = Policy(allow_dirs=["/tmp"])
    assert p.allow_dirs == ("/tmp",)
    with pytest.raises(AttributeError):
        p.deadline = 1.0  # type: ignore[misc]


def test_load_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm junk")
    with pytest.raises(skyutils_wasm.PluginLoadError):
        skyutils_wasm.load(bad)


# -- concurrency --------------------------------------------------------------

THREADS = 8
CALLS = 2000


def _workload(tmp: Path) -> list[tuple[str, tuple[Any, ...]]]:
    rng = random.Random(7)
    files = []
    for i in range(4):
        p = tmp / f"log{i}.txt"
        p.write_text("".join(f"line {i}-{j} {'x' * rng.randrange(40)}\n" for j in range(50)))
        files.append(str(p))
    ops: list[tuple[str, tuple[Any, ...]]] = []
    for _ in range(CALLS):
        k = rng.randrange(5)
        if k == 0:
            ops.append(("base36_encode", (format(rng.getrandbits(rng.randrange(1, 130)), "x"),)))
        elif k == 1:
            num: Any = rng.uniform(-1e6, 1e6) if rng.random() < 0.7 else rng.randrange(-1000, 1000)
            ops.append(("format_float", (num, rng.randrange(0, 8))))
        elif k == 2:
            s = "".join(rng.choice("abcdé ✓") for _ in range(rng.randrange(60)))
            ops.append(("truncate_long_string", (s, rng.randrange(0, 40), rng.random() < 0.5)))
        elif k == 3:
            ops.append(("get_parallel_threads", (rng.choice([None, "kubernetes", "aws"]),)))
        else:
            ops.append(("read_last_n_lines", (rng.choice(files), rng.randrange(0, 10))))
    return ops


_IMPLS: dict[str, Callable[..., Any]] = {
    "base36_encode": _args.base36_encode,
    "format_float": _args.format_float,
    "truncate_long_string": _args.truncate_long_string,
    "get_parallel_threads": _args.get_parallel_threads,
    "read_last_n_lines": lambda b, p, n: _args.read_last_n_lines(b, p, n, 8192, "utf-8", "replace"),
}


def test_threads_share_one_plugin_and_the_module_functions(tmp_path: Path) -> None:
    skyutils_wasm.set_backend("wasm")
    ops = _workload(tmp_path)
    pure = _backend.load("python")
    expected = [_IMPLS[name](pure, *args) for name, args in ops]
    plugin = skyutils_wasm.load(None, Policy())
    failures: list[str] = []
    lock = threading.Lock()

    def worker(seed: int, call: Callable[[str, tuple[Any, ...]], Any]) -> None:
        order = list(range(len(ops)))
        random.Random(seed).shuffle(order)
        for i in order:
            name, args = ops[i]
            try:
                got = call(name, args)
            except Exception as e:  # noqa: BLE001 - recorded as a failure
                got = e
            if got != expected[i]:
                with lock:
                    failures.append(f"{name}{args!r}: {got!r} != {expected[i]!r}")

    def via_plugin(name: str, args: tuple[Any, ...]) -> Any:
        return getattr(plugin, name)(*args)

    def via_module(name: str, args: tuple[Any, ...]) -> Any:
        return getattr(skyutils_wasm, name)(*args)

    for call in (via_plugin, via_module):
        threads = [threading.Thread(target=worker, args=(s, call)) for s in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, "\n".join(failures[:20])
