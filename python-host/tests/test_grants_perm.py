"""A path through a directory the caller may not search (``noperm/../f``)
fails as upstream's does: the grant resolves it with the OS's ``stat`` first,
since ``realpath(3)`` drops ``noperm/..`` without checking permissions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from vectorlib import Env, run_as_nobody, run_call

import skyutils_wasm

FILES = {
    "noperm": {"dir": True, "mode": "000"},
    "five.txt": {"base64": "bDEKbDIKbDMKbDQKbDUK"},
}
VECTORS = [
    {
        "id": "read_last_n_lines/through_unsearchable_dir",
        "function": "read_last_n_lines",
        "args": ["{tmp}/noperm/../five.txt", 2],
        "kwargs": {},
        "files": FILES,
        "expect": {
            "raises": "AssertionError",
            "message": "File not found: {tmp}/noperm/../five.txt",
        },
    },
    {
        "id": "hash_file/through_unsearchable_dir",
        "function": "hash_file",
        "args": ["{tmp}/noperm/../five.txt", "md5"],
        "kwargs": {},
        "files": FILES,
        "expect": {
            "raises": "PermissionError",
            "message": "[Errno 13] Permission denied: '{tmp}/noperm/../five.txt'",
        },
    },
    {
        # Another source names the failing one's parent with `..`: the error
        # still shows the failing source as the caller wrote it.
        "id": "get_max_workers_for_file_mounts/error_names_the_failing_source",
        "function": "get_max_workers_for_file_mounts",
        "args": [{"/b": "{tmp}/p/../p/", "/a": "{tmp}/p/s311"}],
        "kwargs": {},
        "files": {
            "p": {"dir": True},
            "p/s311": {"dir": True, "mode": "311"},
            "p/s311/x": {"base64": ""},
        },
        "host": {"nofile_soft": 20000, "nofile_hard": 20000, "os_cpu_count": 2},
        "expect": {
            "raises": "PermissionError",
            "message": "[Errno 13] Permission denied: '{tmp}/p/s311'",
        },
    },
]


@pytest.fixture(params=["wasm", "python"])
def backend(request: Any) -> Iterator[str]:
    skyutils_wasm.set_backend(request.param)
    yield request.param
    # vectorlib.Env leaves its fake facts configured: back to this machine's.
    skyutils_wasm.configure(facts=None, env_override=None, cgroup_root="/sys/fs/cgroup")


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"] for v in VECTORS])
def test_path_through_unsearchable_dir(backend: str, vec: dict[str, Any]) -> None:
    with Env(vec) as env:
        if os.geteuid() == 0:
            errs = run_as_nobody(vec, env.tmp, backend)
        else:
            errs = run_call(vec, env.tmp)
    assert not errs, "\n".join(errs)


def test_a_path_longer_than_path_max_is_refused_as_upstream(backend: str, tmp_path: Any) -> None:
    """The OS refuses a path over PATH_MAX (ENAMETOOLONG) whether or not it
    exists; the guest must not turn that into "No such file"."""
    (tmp_path / "five.txt").write_text("l1\nl2\n")
    long = str(tmp_path) + "/a" * 3000 + "/five.txt"
    message = f"[Errno 36] File name too long: {long!r}"
    with pytest.raises(OSError) as info:
        skyutils_wasm.hash_file(long, "md5")
    assert (type(info.value), str(info.value)) == (OSError, message)
    with pytest.raises(OSError) as info:
        skyutils_wasm.estimate_fd_for_directory(long)
    assert (type(info.value), str(info.value)) == (OSError, message)
    with pytest.raises(AssertionError, match="^File not found: "):
        skyutils_wasm.read_last_n_lines(long, 1)
    assert skyutils_wasm.read_last_n_lines(str(tmp_path / "five.txt"), 1) == ["l2"]


@pytest.mark.parametrize(
    ("hash_alg", "error"),
    [
        (None, "name must be a string"),
        (123, "name must be a string"),
        (b"md5", "name must be a string"),
        ("md5\x00", "name must be a string"),
        ("nope\x00x", "name must be a string"),
        ("\ud800", "name must be a string"),
        (bytearray(b"md5"), "unhashable type: 'bytearray'"),
    ],
)
def test_hash_names_hashlib_cannot_take(
    backend: str, tmp_path: Any, hash_alg: Any, error: str
) -> None:
    """Upstream's ``hashlib.new`` raises ``TypeError`` for these names (after
    the file is opened: a missing file is still FileNotFoundError)."""
    (tmp_path / "h.txt").write_bytes(b"hello world\n")
    with pytest.raises(TypeError) as info:
        skyutils_wasm.hash_file(str(tmp_path / "h.txt"), hash_alg)
    assert (type(info.value), str(info.value)) == (TypeError, error)
    with pytest.raises(FileNotFoundError):
        skyutils_wasm.hash_file(str(tmp_path / "nope"), hash_alg)


def test_an_empty_bytes_path_is_shown_as_upstream(backend: str) -> None:
    for n in (0, 2):
        with pytest.raises(AssertionError) as info:
            skyutils_wasm.read_last_n_lines(b"", n)
        assert str(info.value) == "File not found: b''"
    with pytest.raises(FileNotFoundError) as err:
        skyutils_wasm.hash_file(b"", "md5")
    assert str(err.value) == "[Errno 2] No such file or directory: b''"
    with pytest.raises(FileNotFoundError) as err:
        skyutils_wasm.estimate_fd_for_directory(b"")
    assert str(err.value) == "[Errno 2] No such file or directory: b''"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_files_without_a_name_are_answered_as_upstream(tmp_path: Any) -> None:
    """A deleted file or a pipe behind ``/proc/self/fd`` has no name a guest
    path could reach (nor one to pre-open): answered as upstream, never from
    another file, and refused under ``allowed`` directories."""
    from skyutils_wasm import CapabilityDeniedError
    from skyutils_wasm._grants import grant

    skyutils_wasm.set_backend("wasm")
    gone = tmp_path / "gone.log"
    gone.write_text("a\nb\n")
    read, write = os.pipe()
    with open(gone) as f:
        gone.unlink()
        for fd in (f.fileno(), read):
            path = f"/proc/self/fd/{fd}"
            g = grant(path)
            assert (g.unnamed, g.preopen) == (os.fsencode(path), None)
            with pytest.raises(CapabilityDeniedError):
                grant(path, [b"/"])
        assert skyutils_wasm.read_last_n_lines(f"/proc/self/fd/{f.fileno()}", 5) == ["a\n", "b"]
    os.close(read)
    os.close(write)
