"""Helpers to run tests/vectors/vectors.json (format: VECTORS.md)."""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import skyutils_wasm
from skyutils_wasm import _args
from skyutils_wasm._facts import NofileLimit

ROOT = Path(__file__).resolve().parents[2]
VECTORS_PATH = ROOT / "tests" / "vectors" / "vectors.json"


class HostFactMissing(AssertionError):
    """A vector used a host fact it does not list."""


class FakeFacts:
    """Host facts from a vector's ``host`` object; unlisted facts raise."""

    def __init__(self, host: dict[str, Any] | None) -> None:
        self.h = host or {}

    def _get(self, key: str) -> Any:
        if key not in self.h:
            raise HostFactMissing(f"host fact {key!r} not listed by the vector")
        return self.h[key]

    def logical_cpu_count(self) -> int | None:
        return self._get("logical_cpus")  # type: ignore[no-any-return]

    def affinity_cpu_count(self) -> int | None:
        return self._get("affinity_cpus")  # type: ignore[no-any-return]

    def os_cpu_count(self) -> int | None:
        return self._get("os_cpu_count")  # type: ignore[no-any-return]

    def memory_total_bytes(self) -> int:
        return int(decode(self._get("memory_total_bytes")))

    def nofile_limit(self) -> NofileLimit:
        s, h = self._get("nofile_soft"), self._get("nofile_hard")
        return (None if s == "unlimited" else s, None if h == "unlimited" else h)

    def pid_exists(self, pid: int) -> bool:
        return pid in self._get("pids_alive")

    def tcp4_port_bindable(self, port: int) -> bool:
        for p in self._get("ports_in_use"):
            if isinstance(p, list):
                if p[0] <= port <= p[1]:
                    return False
            elif p == port:
                return False
        return True


def decode(v: Any, tmp: str | None = None) -> Any:
    """Typed JSON value (VECTORS.md section 2) to Python, substituting {tmp}."""
    if isinstance(v, str):
        return v.replace("{tmp}", tmp) if tmp is not None else v
    if isinstance(v, list):
        return [decode(x, tmp) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            ((k, x),) = v.items()
            if k == "$float":
                return float(x)
            if k == "$f64_bits":
                return struct.unpack(">d", bytes.fromhex(x))[0]
            if k == "$int":
                return int(x)
            if k == "$bytes":
                return base64.b64decode(x)
            if k == "$pattern":
                return "".join(t * n for t, n in x)
        return {decode(k, tmp): decode(x, tmp) for k, x in v.items()}
    return v


@functools.cache
def lcg(seed: int, size: int) -> bytes:
    """The MMIX LCG byte generator of VECTORS.md section 6."""
    x = seed
    out = bytearray(size)
    mask = (1 << 64) - 1
    for i in range(size):
        x = (6364136223846793005 * x + 1442695040888963407) & mask
        out[i] = x >> 56
    return bytes(out)


def file_bytes(spec: dict[str, Any]) -> bytes:
    if "base64" in spec:
        return base64.b64decode(spec["base64"])
    g = spec["generate"]
    if g["kind"] == "lcg":
        return lcg(g["seed"], g["size"])
    return b"".join(base64.b64decode(s["base64"]) * s["repeat"] for s in g["segments"])


def build_tree(root: str, files: dict[str, Any]) -> None:
    """Creates a fixture tree (VECTORS.md section 3.4)."""
    modes: list[tuple[str, int]] = []
    for rel, spec in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), mode=0o755, exist_ok=True)
        if "symlink" in spec:
            os.symlink(spec["symlink"], p)
        elif spec.get("dir"):
            os.makedirs(p, mode=0o755, exist_ok=True)
        elif "dir_entries" in spec:
            os.makedirs(p, mode=0o755, exist_ok=True)
            for i in range(spec["dir_entries"]):
                open(os.path.join(p, f"f{i:05d}"), "wb").close()
        else:
            with open(p, "wb") as f:
                f.write(file_bytes(spec))
            os.chmod(p, 0o644)
        if "mode" in spec:
            modes.append((p, int(spec["mode"], 8)))
    for p, m in sorted(modes, key=lambda t: -t[0].count("/")):
        os.chmod(p, m)


def build_cgroup(root: str, cg: dict[str, Any]) -> None:
    for rel, spec in cg["files"].items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(spec, str):
            with open(p, "wb") as f:
                f.write(spec.encode("utf-8"))
        elif spec.get("dir"):
            os.makedirs(p, exist_ok=True)
        else:
            with open(p, "wb") as f:
                f.write(base64.b64decode(spec["base64"]))


def _unlock(path: str) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            try:
                os.chmod(os.path.join(dirpath, d), 0o755)
            except OSError:
                pass


class Env:
    """A vector's environment: fixture dirs, settings; undone on exit."""

    def __init__(self, vec: dict[str, Any], tmp_override: str | None = None) -> None:
        self.vec = vec
        self.owned = tmp_override is None
        if tmp_override is not None:
            self.base = os.path.dirname(tmp_override)
            self.tmp = tmp_override
            return
        self.base = tempfile.mkdtemp(prefix="skyvec-")
        os.chmod(self.base, 0o755)
        self.tmp = os.path.join(self.base, "fx")
        os.mkdir(self.tmp, 0o755)

    def __enter__(self) -> Env:
        v = self.vec
        if v.get("files") and self.owned:
            build_tree(self.tmp, v["files"])
        cgroup_root: str | None = None
        if "cgroup" in v:
            cgroup_root = os.path.join(self.base, "cgroup")
            if self.owned:
                os.mkdir(cgroup_root)
                build_cgroup(cgroup_root, v["cgroup"])
        skyutils_wasm.configure(
            facts=FakeFacts(v.get("host")),
            env_override=dict(v.get("env") or {}),
            cgroup_root=cgroup_root,
        )
        _args._reset_low_fd_warning()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.owned:
            return
        _unlock(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _check_exc(e: BaseException, exp: dict[str, Any], tmp: str, where: str) -> list[str]:
    want_cls, want_msg = exp["raises"], decode(exp["message"], tmp)
    got = f"{type(e).__name__}: {e}"
    if type(e).__name__ != want_cls or str(e) != want_msg:
        return [f"{where}: expected {want_cls}: {want_msg!r}, got {got!r}"]
    return []


def _check_hash(obj: Any, exp: dict[str, Any], tmp: str) -> list[str]:
    errs: list[str] = []
    L = exp.get("xof_length")
    hx = obj.hexdigest(L) if L is not None else obj.hexdigest()
    dg = obj.digest(L) if L is not None else obj.digest()
    if hx != exp["hexdigest"]:
        errs.append(f"hexdigest {hx} != {exp['hexdigest']}")
    if dg != bytes.fromhex(exp["hexdigest"]):
        errs.append("digest() != bytes of hexdigest")
    for k in ("name", "digest_size", "block_size"):
        if getattr(obj, k) != exp[k]:
            errs.append(f"{k} {getattr(obj, k)!r} != {exp[k]!r}")
    if "hexdigest_no_length" in exp:
        try:
            obj.hexdigest()
            errs.append("hexdigest() without length did not raise")
        except Exception as e:  # noqa: BLE001
            errs += _check_exc(e, exp["hexdigest_no_length"], tmp, "hexdigest()")
    if "update" in exp:
        obj.update(decode(exp["update"]["data"]))
        if obj.hexdigest() != exp["update"]["hexdigest"]:
            errs.append("hexdigest after update differs")
    if "copy_update" in exp:
        cu = exp["copy_update"]
        c = obj.copy()
        c.update(decode(cu["data"]))
        if c.hexdigest() != cu["hexdigest"]:
            errs.append("copy().update() hexdigest differs")
        if obj.hexdigest() != cu["original_hexdigest_after"]:
            errs.append("original changed after copy().update()")
    return errs


def run_call(vec: dict[str, Any], tmp: str) -> list[str]:
    """Calls the function and returns a list of mismatches (empty = pass)."""
    fn = getattr(skyutils_wasm, vec["function"])
    args = decode(vec["args"], tmp)
    kwargs = decode(vec["kwargs"], tmp)
    exp = vec["expect"]
    cap = _Capture()
    lg = logging.getLogger("sky.utils.subprocess_utils")
    lg.addHandler(cap)
    old_level = lg.level
    lg.setLevel(logging.DEBUG)
    try:
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if "raises" not in exp:
                return [f"unexpected {type(e).__name__}: {e}"]
            return _check_exc(e, exp, tmp, "call")
        if "raises" in exp:
            return [f"expected {exp['raises']}: {exp['message']!r}, got return {result!r}"]
        if "hexdigest" in exp:
            return _check_hash(result, exp, tmp)
        if "return_float" in exp:
            if not isinstance(result, float) or repr(result) != exp["repr"]:
                return [f"expected float {exp['repr']}, got {result!r}"]
            return []
        want = decode(exp["return"], tmp)
        errs = [] if _same(result, want) else [f"expected {want!r}, got {result!r}"]
        if "warning" in exp:
            want_w = exp["warning"]
            got_w = cap.records[0] if cap.records else None
            if len(cap.records) > 1 or got_w != want_w:
                errs.append(f"warning {cap.records!r} != {want_w!r}")
        return errs
    finally:
        lg.removeHandler(cap)
        lg.setLevel(old_level)


def run_as_nobody(vec: dict[str, Any], tmp: str, backend: str) -> list[str]:
    """Runs the call in a child interpreter that switches to uid/gid 65534
    right before the call. (A plain fork cannot be used: wasmtime's WASI
    filesystem runs on tokio worker threads, which do not survive fork.)"""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    proc = subprocess.run(
        [sys.executable, __file__, backend, tmp],
        input=json.dumps(vec).encode(),
        capture_output=True,
        env=env,
        timeout=120,
    )
    if proc.returncode != 0:
        return [f"child failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _child_main() -> None:
    backend, tmp = sys.argv[1], sys.argv[2]
    vec = json.loads(sys.stdin.read())
    skyutils_wasm.set_backend(backend)
    skyutils_wasm.base36_encode("ff")  # load the runtime while still root
    # Describing an export the first time (after a component rebuild, a
    # fresh cache) imports wasmtime's type reflection lazily; the
    # interpreter's own files may be unreadable to uid 65534.
    import wasmtime.component  # noqa: F401

    with Env(vec, tmp_override=tmp):
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        out = run_call(vec, tmp)
    sys.stdout.write(json.dumps(out))


def iter_ids(vectors: list[dict[str, Any]]) -> Iterator[str]:
    for v in vectors:
        yield v["id"]


if __name__ == "__main__":
    _child_main()
