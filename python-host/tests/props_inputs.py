"""Run by ``test_properties.py`` in a child process (a crash of the
interpreter then fails the test instead of killing the runner): throws random
``str`` (lone surrogates, NUL), ``bytes`` and ``os.PathLike`` values at every
public function and checks that the wasm backend gives the same result or
exception as the pure backend (upstream's exact operations).

Usage: ``props_inputs.py ROOT EXAMPLES`` where ROOT holds the fixture tree.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skyutils_wasm
from skyutils_wasm import common_utils as cu
from skyutils_wasm import subprocess_utils as su

ROOT = os.fsencode(sys.argv[1])
EXAMPLES = int(sys.argv[2])

#: Names in the fixture tree (see ``make_tree``), and some that do not exist.
NAMES = [
    b"a.log",
    b"\xff.log",
    b"caf\xe9",
    b"caf\xe9/a.log",
    b"caf\xe9/\xff.log",
    b"caf\xe9/",
    b"plain",
    b"plain/\xfe",
    b"link",
    b"nope",
    b"caf\xe9/nope\xe9",
    b"a.log/x",
    b"a.log/..",
    b"a.log/../a.log",
    b"a.log/.",
    b"caf\xe9/\xff.log/..",
    b"caf\xe9/\xff.log/x",
    b"caf\xe9/\xff.log/",
    b"plain/../a.log",
    b"",
]


def make_tree(root: bytes) -> None:
    """The fixture tree: Latin-1 names in and of files and directories."""
    odd = os.path.join(root, b"caf\xe9")
    os.makedirs(odd, exist_ok=True)
    os.makedirs(os.path.join(root, b"plain"), exist_ok=True)
    for name in (b"a.log", b"\xff.log", b"caf\xe9/a.log", b"caf\xe9/\xff.log", b"plain/\xfe"):
        with open(os.path.join(root, name), "wb") as f:
            f.write(b"one\ntwo \xe9\r\nthree\n")
    link = os.path.join(root, b"link")
    if not os.path.lexists(link):
        os.symlink(odd, link)


class FsPath:
    """An ``os.PathLike`` (str or bytes)."""

    def __init__(self, p: Any) -> None:
        self.p = p

    def __fspath__(self) -> Any:
        return self.p

    def __repr__(self) -> str:
        return f"FsPath({self.p!r})"


TEXT = st.text(st.characters(exclude_categories=()), max_size=12)


def _forms(p: bytes) -> st.SearchStrategy[Any]:
    return st.sampled_from([os.fsdecode(p), p, FsPath(os.fsdecode(p)), FsPath(p)])


#: A path: a fixture name in any spelling, a random name below the root
#: (str with surrogates and NULs, or bytes), or a random relative string.
PATHS = st.one_of(
    st.sampled_from(NAMES).flatmap(lambda n: _forms(os.path.join(ROOT, n))),
    TEXT.map(lambda t: os.path.join(os.fsdecode(ROOT), t.lstrip("/"))),
    st.binary(max_size=12).map(lambda b: os.path.join(ROOT, b.lstrip(b"/"))),
    TEXT.map(lambda t: t.lstrip("/")),
)


def outcome(f: Callable[[], Any]) -> tuple[str, Any]:
    try:
        r = f()
    except Exception as e:  # noqa: BLE001 - the outcome is what is compared
        return (type(e).__name__, str(e))
    if hasattr(r, "hexdigest") and hasattr(r, "digest_size"):
        return ("hash", (r.name, r.digest_size, r.digest() if r.digest_size else r.digest(8)))
    return ("ok", r)


def same(call: Callable[[], Any]) -> None:
    """``call`` gives the same outcome on both backends."""
    results: dict[str, Any] = {}
    for name in ("wasm", "python"):
        skyutils_wasm.set_backend(name)
        results[name] = outcome(call)
    assert results["wasm"] == results["python"], results


def check(prop: Callable[..., None]) -> Callable[..., None]:
    return settings(  # type: ignore[no-any-return]
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("PROPS_RANDOM") is None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(prop)


@check
@given(PATHS, st.integers(0, 4), st.sampled_from(["utf-8", "latin-1"]))
def read_last_n_lines(path: Any, n: int, encoding: str) -> None:
    same(lambda: cu.read_last_n_lines(path, n, encoding=encoding))


@check
@given(PATHS, st.one_of(st.sampled_from(["md5", "sha256", "shake_128"]), TEXT))
def hash_file(path: Any, alg: Any) -> None:
    same(lambda: cu.hash_file(path, alg))


@check
@given(PATHS)
def estimate_fd_for_directory(path: Any) -> None:
    same(lambda: su.estimate_fd_for_directory(path))


@check
@given(st.dictionaries(TEXT, PATHS, max_size=3), st.one_of(st.none(), TEXT))
def get_max_workers_for_file_mounts(mounts: dict[str, Any], cloud: Any) -> None:
    same(lambda: su.get_max_workers_for_file_mounts(mounts, cloud))


@check
@given(st.one_of(TEXT, st.binary(max_size=8)), st.integers(-3, 20), st.booleans())
def text_functions(s: Any, length: int, middle: bool) -> None:
    same(lambda: cu.base36_encode(s))
    same(lambda: cu.truncate_long_string(s, length, middle))
    same(lambda: su.get_parallel_threads(s))


if __name__ == "__main__":
    make_tree(ROOT)
    os.chdir(ROOT)
    for prop in (
        read_last_n_lines,
        hash_file,
        estimate_fd_for_directory,
        get_max_workers_for_file_mounts,
        text_functions,
    ):
        prop()
        print(f"{prop.__name__}: {EXAMPLES} examples, same outcome on both backends")
