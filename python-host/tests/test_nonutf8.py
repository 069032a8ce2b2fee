"""Paths and directory entries that are not UTF-8 (Linux paths are bytes):
every file function returns what upstream returns, on both backends, for
``str`` (surrogate escapes), ``bytes`` and ``os.PathLike`` arguments.

Expected values are computed here the way upstream computes them (plain
``os``/``hashlib`` calls on the same paths), not taken from either backend.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import skyutils_wasm
from skyutils_wasm import common_utils, subprocess_utils

LINES = b"first\nsecond caf\xc3\xa9\nthird\n"


class FsPath:
    """An ``os.PathLike`` returning bytes (``pathlib`` only returns str)."""

    def __init__(self, p: bytes) -> None:
        self.p = p

    def __fspath__(self) -> bytes:
        return self.p


def forms(p: bytes) -> list[Any]:
    """The ways a caller can spell one path."""
    return [os.fsdecode(p), p, Path(os.fsdecode(p)), FsPath(p)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tree whose names are Latin-1 bytes, as on a real Linux box."""
    root = os.fsencode(tmp_path_factory.mktemp("nonutf8"))
    odd = os.path.join(root, b"caf\xe9")
    os.mkdir(odd)
    for name in (b"a.log", b"\xff.log", b"r\xe9sum\xe9.txt", b".hidden"):
        with open(os.path.join(odd, name), "wb") as f:
            f.write(LINES)
    plain = os.path.join(root, b"plain")
    os.mkdir(plain)
    for name in (b"ok", b"\xfe\xfe", b"caf\xe9-dir"):
        with open(os.path.join(plain, name), "wb") as f:
            f.write(b"")
    os.symlink(odd, os.path.join(root, b"link-to-caf\xe9"))
    return root


@pytest.fixture(params=["wasm", "python"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    skyutils_wasm.set_backend(request.param)
    yield request.param
    skyutils_wasm.set_backend("wasm")


def outcome(f: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", f())
    except Exception as e:  # noqa: BLE001 - the outcome is compared
        return (type(e).__name__, (str(e), getattr(e, "filename", None)))


def test_estimate_fd_counts_entries_whatever_their_names(tree: bytes, backend: str) -> None:
    for d in (b"caf\xe9", b"plain", b"link-to-caf\xe9"):
        p = os.path.join(tree, d)
        expected = 5 * len(os.listdir(p))
        for form in forms(p):
            assert subprocess_utils.estimate_fd_for_directory(form) == expected, (d, form)


def test_estimate_fd_errors_name_the_callers_path(tree: bytes, backend: str) -> None:
    for rel in (b"caf\xe9/\xff.log", b"nope\xe9", b"caf\xe9/\xff.log/x"):
        p = os.path.join(tree, rel)
        for form in forms(p):
            arg = os.fspath(form)
            expected = outcome(lambda arg=arg: len(os.listdir(arg)))
            got = outcome(lambda form=form: subprocess_utils.estimate_fd_for_directory(form))
            assert got == expected


def test_read_last_n_lines_in_and_of_non_utf8_names(tree: bytes, backend: str) -> None:
    expected = [line + "\n" for line in LINES.decode().split("\n")[:-1]]
    expected[-1] = expected[-1].rstrip("\n")
    for rel in (b"caf\xe9/a.log", b"caf\xe9/\xff.log", b"link-to-caf\xe9/r\xe9sum\xe9.txt"):
        for form in forms(os.path.join(tree, rel)):
            assert common_utils.read_last_n_lines(form, 2) == expected[-2:], (rel, form)
            raw = common_utils.read_last_n_lines(form, 2, encoding="latin-1")
            assert raw[-1] == "third"


def test_read_last_n_lines_errors_show_the_path_as_upstream(tree: bytes, backend: str) -> None:
    missing = os.path.join(tree, b"caf\xe9/nope\xe9.log")
    directory = os.path.join(tree, b"caf\xe9")
    for form in (os.fsdecode(missing), missing):
        with pytest.raises(AssertionError) as e:
            common_utils.read_last_n_lines(form, 1)
        assert str(e.value) == f"File not found: {form}"
    for form in (os.fsdecode(directory), directory):
        with pytest.raises(RuntimeError) as e:
            common_utils.read_last_n_lines(form, 1)
        cause = e.value.__cause__
        assert isinstance(cause, IsADirectoryError)
        assert cause.filename == form
        assert str(e.value) == f"Failed to read last 1 lines from {form}: {cause}"
        assert str(cause) == f"[Errno 21] Is a directory: {form!r}"


def test_hash_file_of_non_utf8_names(tree: bytes, backend: str) -> None:
    for rel in (b"caf\xe9/a.log", b"caf\xe9/\xff.log"):
        p = os.path.join(tree, rel)
        for form in forms(p):
            for alg in ("sha256", "md5"):
                h = common_utils.hash_file(form, alg)
                assert h.hexdigest() == hashlib.new(alg, LINES).hexdigest()
    missing = os.path.join(tree, b"caf\xe9/nope\xe9")
    for form in (os.fsdecode(missing), missing):
        with pytest.raises(FileNotFoundError) as e:
            common_utils.hash_file(form, "sha256")
        assert e.value.filename == form
        assert str(e.value) == f"[Errno 2] No such file or directory: {form!r}"


def test_mount_sources_with_non_utf8_names_are_counted(tree: bytes, backend: str) -> None:
    odd = os.path.join(tree, b"caf\xe9")
    # A 160 soft limit makes the entry count matter: (160 - 100) // fd_per_rsync.
    saved = skyutils_wasm.configure().facts
    skyutils_wasm.configure(facts=FixedLimit(160))
    try:
        expected = max(1, (160 - 100) // (5 * len(os.listdir(odd))))
        for form in forms(odd):
            assert subprocess_utils.get_max_workers_for_file_mounts({"/a": form}) == expected
        unnamed_file = os.path.join(odd, b"\xff.log")
        for form in forms(unnamed_file):
            got = subprocess_utils.get_max_workers_for_file_mounts({"/a": form, "/b": odd})
            assert got == expected
    finally:
        skyutils_wasm.configure(facts=saved)


class FixedLimit:
    """Host facts with a given soft ``RLIMIT_NOFILE`` and two CPUs."""

    def __init__(self, soft: int) -> None:
        self.soft = soft

    def logical_cpu_count(self) -> int:
        return 2

    def affinity_cpu_count(self) -> int:
        return 2

    def os_cpu_count(self) -> int:
        return 2

    def memory_total_bytes(self) -> int:
        return 1 << 30

    def nofile_limit(self) -> tuple[int, int]:
        return (self.soft, self.soft)

    def pid_exists(self, pid: int) -> bool:
        return False

    def tcp4_port_bindable(self, port: int) -> bool:
        return True


def test_surrogate_strings_never_reach_the_c_api(tree: bytes) -> None:
    """Before the fix these calls aborted the interpreter (SIGABRT) inside
    wasmtime's C API; in a child process so a crash fails the test."""
    script = f"""
import os, skyutils_wasm
from skyutils_wasm import common_utils as cu, subprocess_utils as su
skyutils_wasm.set_backend("wasm")
root = {tree!r}
p = os.fsdecode(os.path.join(root, b"caf\\xe9/\\xff.log"))
print(cu.read_last_n_lines(p, 1), cu.hash_file(p, "md5").hexdigest())
print(su.estimate_fd_for_directory(os.fsdecode(os.path.join(root, b"caf\\xe9"))))
print(su.get_parallel_threads("\\udce9"), cu.truncate_long_string("\\udce9" * 40, 5))
os.environ["SKYPILOT_POD_CPU_CORE_LIMIT"] = os.fsdecode(b"\\xff")
try:
    cu.get_cpu_count()
except ValueError as e:
    print("ValueError", e)
"""
    env = dict(os.environ, PYTHONPATH=str(Path(skyutils_wasm.__file__).parent.parent))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, timeout=120)
    out = r.stdout.decode("utf-8", "surrogateescape")
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    lines = out.splitlines()
    assert lines[0] == f"['third'] {hashlib.md5(LINES).hexdigest()}"
    assert lines[1] == "20"
    assert lines[2] == "4 " + "\udce9" * 5 + "..."
    assert lines[3] == "ValueError Failed to parse the number of CPUs from \udcff"


def test_strict_policies_refuse_what_they_cannot_name(tree: bytes) -> None:
    from skyutils_wasm import Policy, load

    plugin = load(None, Policy(allow_dirs=[os.fsdecode(tree)]))
    p = os.path.join(tree, b"caf\xe9/a.log")
    for form in (os.fsdecode(p), p):
        with pytest.raises(PermissionError) as e:
            plugin.read_last_n_lines(form, 1)
        assert "caf\\udce9" in str(e.value)
    assert plugin.estimate_fd_for_directory(os.fsdecode(os.path.join(tree, b"plain"))) == 15


def test_windows_paths_are_answered_by_the_pure_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Windows (``os.name == 'nt'``, replaced here) a path has no WASI
    spelling in the Python host: the call is answered without the guest."""
    from skyutils_wasm import _backend, _grants

    log = tmp_path / "w.log"
    log.write_bytes(LINES)
    wasm = _backend.load("wasm")
    skyutils_wasm.set_backend("wasm")
    monkeypatch.setattr(_grants.os, "name", "nt")
    g = _grants.grant(str(log))
    assert g.unnamed == os.fsencode(log) and g.preopen is None
    wasm.reset_sessions()
    assert common_utils.read_last_n_lines(str(log), 1) == ["third"]
    assert subprocess_utils.estimate_fd_for_directory(str(tmp_path)) == 5
    assert not wasm._files, "no sandbox instance was created for the file calls"
