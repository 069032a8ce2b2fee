"""Traps and limits: a trap raises a clear error and the next call works."""

from __future__ import annotations

import gc
import hashlib
import weakref
from typing import Any

import pytest

import skyutils_wasm
from skyutils_wasm import DeadlineExceededError, MemoryLimitExceededError, SandboxError, _backend


@pytest.fixture
def wasm() -> Any:
    skyutils_wasm.set_backend("wasm")
    skyutils_wasm.configure(env_override=None, cgroup_root="/sys/fs/cgroup")
    yield
    skyutils_wasm.configure(deadline=None, memory_limit=4 << 30)


def test_memory_cap_then_recovers(wasm: Any) -> None:
    # A cap the caller asks for (the default is the wasm32 maximum).
    skyutils_wasm.configure(memory_limit=512 << 20)
    with pytest.raises(MemoryLimitExceededError) as info:
        skyutils_wasm.format_float(1.5, 2_000_000_000)
    assert isinstance(info.value, MemoryError)
    assert isinstance(info.value, RuntimeError)
    assert "memory cap of 536870912 bytes (the memory limit asked for)" in str(info.value)
    assert info.value.limit == 512 << 20
    assert skyutils_wasm.format_float(1.25, 1) == "1.2"
    assert skyutils_wasm.base36_encode("ff") == "73"


def test_a_discarded_instance_is_freed(wasm: Any) -> None:
    # The guest's stderr callback once held its session, and wasmtime-py
    # keeps that callback until the store is dropped: every discarded
    # instance (its store and linear memory) stayed alive for good.
    skyutils_wasm.configure(memory_limit=32 << 20)
    first = _backend.get()._pure_session()  # type: ignore[attr-defined]
    freed = weakref.ref(first)
    del first
    with pytest.raises(SandboxError):
        skyutils_wasm.truncate_long_string("x" * (40 << 20), 10)
    assert skyutils_wasm.base36_encode("ff") == "73"  # on a fresh instance
    gc.collect()
    assert freed() is None


def test_resources_made_on_a_successor_are_used_there(
    wasm: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another thread's trap discards the file instance right after this call
    # picked it: the call runs on a successor, where the hasher or the rest
    # of a paged tail lives, so their methods must go there too.
    backend = type(_backend.get())
    picked = backend._file_session

    def picked_then_discarded(self: Any, grants: Any) -> Any:
        s = picked(self, grants)
        s.dead = "memory cap"  # as the other thread's trap does
        return s

    monkeypatch.setattr(backend, "_file_session", picked_then_discarded)
    f = tmp_path / "f.log"
    f.write_bytes(b"".join(b"%d\n" % i for i in range(1_100_000)))
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    assert skyutils_wasm.hash_file(str(f), "sha256").hexdigest() == digest
    tail = skyutils_wasm.read_last_n_lines(str(f), 1_050_000)  # more than one page
    assert (len(tail), tail[0], tail[-1]) == (1_050_000, "50000\n", "1099999")


def test_deadline_then_recovers(wasm: Any) -> None:
    skyutils_wasm.configure(deadline=0.05, memory_limit=4 << 30)
    with pytest.raises(DeadlineExceededError) as info:
        skyutils_wasm.format_float(1.5, 300_000_000)
    assert "deadline" in str(info.value)
    skyutils_wasm.configure(deadline=None)
    assert skyutils_wasm.truncate_long_string("abcdef", 4, True) == "a..."


def test_host_error_poisons_only_that_instance(wasm: Any) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            def fail(*_a: Any) -> Any:
                raise KeyError("boom")

            return fail

    skyutils_wasm.configure(facts=Broken())
    try:
        with pytest.raises(KeyError):
            skyutils_wasm.get_parallel_threads()
    finally:
        from skyutils_wasm._facts import NativeFacts

        skyutils_wasm.configure(facts=NativeFacts())
    assert skyutils_wasm.get_parallel_threads() >= 4


def test_hash_update_large_matches_hashlib(wasm: Any, tmp_path: Any) -> None:
    import hashlib

    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 1000)
    h = skyutils_wasm.hash_file(str(p), "sha256")
    extra = bytes(range(256)) * 5000
    c = h.copy()
    h.update(extra)
    assert h.hexdigest() == hashlib.sha256(b"x" * 1000 + extra).hexdigest()
    assert c.digest() == hashlib.sha256(b"x" * 1000).digest()
    with pytest.raises(TypeError, match="Strings must be encoded"):
        h.update("s")


def test_backend_info(wasm: Any) -> None:
    info = skyutils_wasm.backend_info()
    assert info["backend"] == "wasm"
    assert info["wasmtime"].startswith("50.")
