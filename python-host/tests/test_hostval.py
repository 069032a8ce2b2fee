"""Host functions' results (``_hostval``): every ``host-facts`` result shape
written as a C-owned value and read back with the export-call lifting of
``_abi``, including strings past the first buffer and ``err`` texts."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

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


def test_out_of_range_values_raise_instead_of_wrapping() -> None:
    """A host fact outside its WIT type fails the call (a trap), never a
    truncated number."""
    write_ok, _ = _hostval.result_writers(["option", ["u32"]])
    slot = _val.Val()
    for bad in (1 << 32, -1):
        with pytest.raises(Exception):  # noqa: B017 - struct.error
            write_ok(bad, ctypes.addressof(slot))
