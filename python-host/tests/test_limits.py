"""No limit upstream lacks: with default settings the module functions tail
a result bigger than wasmtime-py's 128 MiB per call, hash a file for longer
than the 30 s deadline there used to be, and fail past the 4 GiB a wasm32
guest can address with a ``MemoryError`` naming the limit and the size.
Limits the caller asks for still apply (see also test_sandbox.py and
test_plugins.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import skyutils_wasm
from skyutils_wasm import MemoryLimitExceededError, Policy

COUNT = 2_100_000
LINE_LEN = 73  # with its newline


def line(i: int) -> str:
    return f"{i:09} the quick brown fox jumps over the lazy dog, again and again {i % 7}"


@pytest.fixture
def wasm() -> Iterator[None]:
    skyutils_wasm.set_backend("wasm")
    defaults = Policy.drop_in()
    yield
    skyutils_wasm.configure(
        deadline=defaults.deadline,
        memory_limit=defaults.memory_limit,
        max_output=defaults.max_output,
    )


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "big.log"
    with open(path, "w") as f:
        for start in range(0, COUNT, 100_000):
            f.write("".join(line(i) + "\n" for i in range(start, min(start + 100_000, COUNT))))
    assert path.stat().st_size == COUNT * LINE_LEN > 140 << 20
    return path


def test_defaults_are_upstreams_no_limits() -> None:
    s = Policy.drop_in()
    assert (s.deadline, s.memory_limit, s.max_output) == (None, 4 << 30, None)
    # Plugins keep bounded defaults.
    p = skyutils_wasm.Policy()
    assert (p.deadline, p.memory_limit, p.max_output) == (30.0, 512 << 20, 64 << 20)
    unbounded = skyutils_wasm.Policy(deadline=None, max_output=None)
    assert (unbounded.deadline, unbounded.max_output) == (None, None)


def test_tail_over_128_mib_with_default_settings(wasm: Any, big_log: Path) -> None:
    n = COUNT - 1000
    lines = skyutils_wasm.read_last_n_lines(str(big_log), n)
    # The instance that grew to hold the tail is not offered to later calls.
    from skyutils_wasm import _backend

    cached_dirs = {os.fsdecode(d) for key in _backend.get()._files for d, *_ in key[0]}
    assert str(big_log.parent) not in cached_dirs
    assert len(lines) == n
    assert lines[0] == line(1000) + "\n"
    assert lines[-1] == line(COUNT - 1)
    assert sum(map(len, lines)) == (COUNT - 1000) * LINE_LEN - 1
    del lines
    # Another codec: raw pieces, paged too.
    lines = skyutils_wasm.read_last_n_lines(str(big_log), 300_000, encoding="latin-1")
    assert len(lines) == 300_000
    assert lines[0] == line(COUNT - 300_000) + "\n" and lines[-1] == line(COUNT - 1)


def test_lines_longer_than_a_page_are_joined(wasm: Any, tmp_path: Path) -> None:
    # A page of lines is 32 MiB, of raw pieces 16 MiB: this line spans
    # pages in both, and its split points fall inside multi-byte characters.
    long = "\u00e9" * (17 << 20) + "x"
    p = tmp_path / "long.log"
    p.write_text("first\n" + long + "\nlast\n", encoding="utf-8")
    assert skyutils_wasm.read_last_n_lines(str(p), 3) == ["first\n", long + "\n", "last"]
    raw = skyutils_wasm.read_last_n_lines(str(p), 2, encoding="latin-1")
    assert raw == [long.encode("utf-8").decode("latin-1") + "\n", "last"]


def test_explicit_output_cap_still_applies_to_paged_tails(wasm: Any, big_log: Path) -> None:
    skyutils_wasm.configure(max_output=1 << 20)
    with pytest.raises(skyutils_wasm.OutputTooLargeError) as info:
        skyutils_wasm.read_last_n_lines(str(big_log), 100_000)
    assert info.value.limit == 1 << 20
    skyutils_wasm.configure(max_output=None)
    assert skyutils_wasm.read_last_n_lines(str(big_log), 1) == [line(COUNT - 1)]


def test_explicit_memory_limit_names_the_limit_and_the_size(wasm: Any, big_log: Path) -> None:
    skyutils_wasm.configure(memory_limit=64 << 20)
    with pytest.raises(MemoryLimitExceededError) as info:
        skyutils_wasm.read_last_n_lines(str(big_log), COUNT)
    size = COUNT * LINE_LEN
    assert isinstance(info.value, MemoryError)
    assert info.value.limit == 64 << 20
    assert info.value.requested == size
    assert "the memory limit asked for" in str(info.value)
    assert f"the last lines of the file are {size} bytes" in str(info.value)
    skyutils_wasm.configure(memory_limit=4 << 30)
    assert skyutils_wasm.read_last_n_lines(str(big_log), 2) == [
        line(COUNT - 2) + "\n",
        line(COUNT - 1),
    ]


def test_update_crosses_in_pieces_below_the_per_call_limit(
    wasm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any size crosses: ``update`` sends 1 MiB per call (a byte costs a
    # whole value in the C API, so 1 MiB is ~32 MiB there, far below the
    # 128 MiB wasmtime-py allows per call).
    import hashlib

    from skyutils_wasm import _hashobj

    p = tmp_path / "seed"
    p.write_bytes(b"seed")
    h = skyutils_wasm.hash_file(str(p), "md5")
    sizes: list[int] = []
    call = h._s.call

    def spy(iface: str, name: str, *args: Any) -> Any:
        if name == "[method]hasher.update":
            sizes.append(len(args[1]))
        return call(iface, name, *args)

    monkeypatch.setattr(h._s, "call", spy)
    data = bytes(range(256)) * ((3 << 20) // 256 + 7)
    h.update(memoryview(data))
    assert sizes == [_hashobj._CHUNK] * 3 + [7 * 256]
    assert h.hexdigest() == hashlib.md5(b"seed" + data).hexdigest()


#: ``truncate -s 8G f; sha256sum f``.
SHA256_8_GIB_OF_ZEROS = "ebfb4ef19ae410f190327b5ebd312711263bc7579970e87d9c1e2d84e06b3c25"


def test_hash_longer_than_30_s_and_a_tail_past_4_gib(wasm: Any, tmp_path: Path) -> None:
    # The component hashes ~200 MiB/s on an idle machine here, so 8 GiB
    # takes 40 s or more: past the 30 s deadline there used to be. A
    # sparse file costs no disk.
    p = tmp_path / "sparse.bin"
    with open(p, "wb") as f:
        f.truncate(8 << 30)
    assert skyutils_wasm.hash_file(str(p), "sha256").hexdigest() == SHA256_8_GIB_OF_ZEROS
    # No newline in 8 GiB: the last line cannot fit in a wasm32 guest.
    with pytest.raises(MemoryLimitExceededError) as info:
        skyutils_wasm.read_last_n_lines(str(p), 1)
    assert (info.value.limit, info.value.requested) == (4 << 30, 8 << 30)
    assert "the wasm32 maximum" in str(info.value)
    assert skyutils_wasm.read_last_n_lines(str(tmp_path / "sparse.bin"), 0) == []
