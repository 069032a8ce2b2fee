"""The wasm backend with wasmtime-py's public value conversion (the fallback
for a wasmtime-py whose value layout differs from the package's mirror):
forced in fresh interpreters with SKYUTILS_FORCE_PUBLIC_CONVERSION=1, it
must give the fast path's results and errors (every vector, denied
capabilities, paged tails, hashes, output limits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_vectors import VECTORS

from skyutils_wasm import _capi, _public

HERE = Path(__file__).resolve().parents[1]


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(HERE / "src"), SKYUTILS_CACHE_DIR=str(cache))
    env["SKYUTILS_FORCE_PUBLIC_CONVERSION"] = "1"
    env.pop("SKYUTILS_BACKEND", None)
    return env


def _pytest_on_public(tmp_path: Path, tests: str, select: str) -> str:
    """Runs ``pytest tests -k select`` with the public conversion forced;
    its summary line, after checking it passed."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests, "-k", select],
        cwd=HERE, env=_env(tmp_path), capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "skipped" not in summary and "failed" not in summary, summary
    return summary


def test_every_vector_on_the_public_conversion(tmp_path: Path) -> None:
    summary = _pytest_on_public(tmp_path, "tests/test_vectors.py", "wasm or conversion_in_use")
    # Every wasm vector plus the check that the public conversion was in use.
    assert summary.startswith(f"{len(VECTORS) + 1} passed, "), summary


def test_host_fact_exceptions_and_discarded_instances_on_the_public_conversion(
    tmp_path: Path,
) -> None:
    """The threaded host-fact tests of test_hostfacts.py, with every value
    converted by wasmtime-py: exceptions reach their own thread, Ctrl-C
    too, and calls queued on a discarded instance still answer."""
    select = "thread or interrupt or queued or out_of"
    summary = _pytest_on_public(tmp_path, "tests/test_hostfacts.py", select)
    assert summary.startswith("9 passed, "), summary


PROBE = r"""
import hashlib, json, os, sys
import skyutils_wasm as s
s.set_backend("wasm")
from skyutils_wasm import CapabilityDeniedError, OutputTooLargeError, Policy, _tails

tmp = sys.argv[1]
out = {"info": s.backend_info()}

# (b) a plugin whose policy grants no capability: every host fact is an err.
plugin = s.load(None, Policy(capabilities=frozenset(), cgroup_root=None))
denied = []
for call in (plugin.get_cpu_count, plugin.get_mem_size_gb,
             lambda: plugin.is_process_alive(os.getpid()),
             lambda: plugin.find_free_port(40000)):
    try:
        call()
        denied.append(None)
    except CapabilityDeniedError as e:
        denied.append(str(e))
out["denied"] = denied
out["pure_after_denied"] = plugin.base36_encode("ff")
out["cpu_only"] = s.load(None, Policy(capabilities=frozenset({"cpu"}))).get_cpu_count()

# (c) a big file, tailed in many pages (a tail resource and its methods).
big = os.path.join(tmp, "big.log")
with open(big, "w") as f:
    f.write("".join(f"{i:07} line \u00e9 {i % 7}\n" for i in range(200_000)))
_tails.PAGE_BYTES = 1 << 18
_tails.RAW_PAGE_BYTES = 1 << 17
lines = s.read_last_n_lines(big, 150_000)
raw = s.read_last_n_lines(big, 30_000, encoding="latin-1")
s.set_backend("python")
out["tail_ok"] = lines == s.read_last_n_lines(big, 150_000)
out["raw_ok"] = raw == s.read_last_n_lines(big, 30_000, encoding="latin-1")
last_two = s.read_last_n_lines(big, 2)
s.set_backend("wasm")
out["tail_len"] = len(lines)
h = s.hash_file(big, "sha256")
with open(big, "rb") as f:
    data = f.read()
c = h.copy()
c.update(b"more")
out["hash"] = [h.hexdigest(), c.hexdigest(), h.name, h.digest_size, h.block_size]
out["hash_want"] = [hashlib.sha256(data).hexdigest(), hashlib.sha256(data + b"more").hexdigest()]
out["shake"] = s.hash_file(big, "shake_128").hexdigest(20) == hashlib.shake_128(data).hexdigest(20)
try:
    s.hash_file(big, "nope")
except Exception as e:
    out["bad_alg"] = f"{type(e).__name__}: {e}"

# (d) output limits: one call's result, then a paged tail, then none.
s.configure(max_output=1000)
limits = []
for n in (50, 20_000):
    try:
        s.read_last_n_lines(big, n)
        limits.append(None)
    except OutputTooLargeError as e:
        limits.append([e.size, e.limit])
out["limits"] = limits
out["under_limit"] = s.read_last_n_lines(big, 2) == last_two
s.configure(max_output=None)
out["no_limit"] = len(s.read_last_n_lines(big, 20_000))
print(json.dumps(out))
"""


def test_plugin_denials_tails_hashes_and_limits(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        env=_env(tmp_path / "cache"), capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["info"]["backend"] == "wasm"
    assert out["info"]["conversion"] == "public"
    assert out["info"]["conversion_reason"] == "forced by SKYUTILS_FORCE_PUBLIC_CONVERSION=1"
    assert out["denied"] == [
        f"capability '{cap}' is not granted by the host policy"
        for cap in ("cpu", "memory", "processes", "network")
    ]
    assert out["pure_after_denied"] == "73"
    assert out["cpu_only"] >= 1
    assert (out["tail_ok"], out["raw_ok"], out["tail_len"]) == (True, True, 150_000)
    assert out["hash"] == [*out["hash_want"], "sha256", 32, 64]
    assert out["shake"] is True
    assert out["bad_alg"] == "ValueError: unsupported hash type nope"
    # 50 lines of 17 bytes (UTF-8), each counting one more: 900 bytes fit.
    assert out["limits"][0] is None
    size, limit = out["limits"][1]
    assert limit == 1000 and size > 1000
    assert out["under_limit"] is True
    assert out["no_limit"] == 20_000


def _walk(desc: Any, vt: Any, seen: list[str]) -> None:
    """Compares :func:`_public.tagged` with wasmtime-py's rule on every
    variant-like type in ``desc`` (wasmtime-py's ``vt``)."""
    kind = desc[0]
    if kind in ("variant", "option", "result"):
        assert _public.tagged(_public.cases(desc)) == vt._tagged(), desc
        seen.append(kind)
        subs = [t for _, t in vt._cases()]
        for (_, d), t in zip(_public.cases(desc), subs, strict=True):
            if d is not None:
                _walk(d, t, seen)
    elif kind == "list":
        _walk(desc[1], vt.element, seen)
    elif kind == "tuple":
        for d, t in zip(desc[1], vt.elements, strict=True):
            _walk(d, t, seen)
    elif kind == "record":
        for (_, d), (_, t) in zip(desc[1], vt.fields, strict=True):
            _walk(d, t, seen)


def test_tagging_rule_matches_wasmtime_py_for_every_component_type() -> None:
    from wasmtime.component import Component, FuncType

    from skyutils_wasm import _hostfacts, _runtime

    engine = _runtime.engine()
    comp = Component(engine, _runtime.COMPONENT_PATH.read_bytes())
    ctype = comp.type
    seen: list[str] = []
    funcs = 0
    for items in (ctype.imports(engine), ctype.exports(engine)):
        for iface, item in items.items():
            if not iface.startswith("skypilot:utils/"):
                continue
            for name, ext in item.ty.exports(engine).items():
                fty = ext.ty
                if not isinstance(fty, FuncType):
                    continue
                funcs += 1
                for _, vt in fty.params:
                    _walk(_capi.describe(vt), vt, seen)
                if fty.result is not None:
                    _walk(_capi.describe(fty.result), fty.result, seen)
                if "host-facts" in iface:
                    ok = fty.result.ok
                    assert _capi.describe(ok) == _hostfacts.SIGNATURES[name][1]
    assert funcs > 20
    assert {"variant", "option", "result"} <= set(seen)


#: Like WIT's ``error``: two string cases make it a tagged ``Variant``.
_ERROR = [
    "variant",
    [
        ["value-error", ["string"]],
        ["type-error", ["string"]],
        ["os-error", ["record", [["errno", ["option", ["s32"]]]]]],
    ],
]


def test_shapes_round_trip_through_wasmtime_py_values() -> None:
    from wasmtime.component import Record, Variant

    number = ["variant", [["int", ["s64"]], ["float", ["f64"]]]]
    assert _public.lower(number, ("float", 2)) == 2.0  # untagged: the payload
    assert _public.lower(number, ("int", 2)) == 2
    res = ["result", ["option", ["f64"]], _ERROR]
    assert _public.lift(res, None) == (True, None)
    assert _public.lift(res, 1.5) == (True, 1.5)
    err = Variant("os-error", Record())
    err.payload.errno = 2
    assert _public.lift(res, err) == (False, ("os-error", {"errno": 2}))
    nested = ["option", ["option", ["u32"]]]  # tagged: both cases can be None
    assert _public.lower(nested, None) == Variant("none")
    assert _public.lift(nested, Variant("some", None)) is None
    assert _public.lift(["list", ["u8"]], b"ab") == b"ab"
    assert _public.output_size(["list", ["string"]], ["\u00e9", "ab"]) == 2 + 1 + 2 + 1


def test_a_case_wasmtime_py_would_misread_is_refused() -> None:
    # wasmtime-py lowers any value as the ok case here (`object` stands for
    # a None payload): an err must fail loudly, not cross as something else.
    ty = ["result", ["option", ["u32"]], ["string"]]
    assert _public.lower(ty, (True, 3)) == 3
    with pytest.raises(TypeError, match="cannot pass case 'err'"):
        _public.lower(ty, (False, "denied"))
    with pytest.raises(OverflowError, match="out of range for u32"):
        _public.lower(ty, (True, 1 << 32))
    # A bool is not taken for an s64 (nor guessed as any other case).
    with pytest.raises(TypeError, match="fits 0 cases"):
        _public.lift(["result", ["s64"], ["string"]], True)
