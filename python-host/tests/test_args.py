"""Argument handling in upstream's order: ``read_last_n_lines`` checks n,
chunk_size and the path first and looks its codec up only where its first
decode does (both backends)."""

from __future__ import annotations

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
