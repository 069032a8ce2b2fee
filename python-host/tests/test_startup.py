"""Start-up stays light: with a warm compiled-component cache, importing the
package and making the first calls loads none of the heavy modules
(``wasmtime.component`` alone costs ~16 ms). Checked by module presence,
not by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# hashlib is loaded on purpose: the cached artifact's SHA-256 is checked
# before it is loaded (~4 ms with the read, measured in benchmarks/NOTES.md).
HEAVY = ["wasmtime.component", "dataclasses", "importlib.metadata", "logging"]

PROBE = """
import json, sys
import skyutils_wasm as s
assert s.base36_encode("ff") == "73"
assert s.truncate_long_string("abcdefgh", 5, True) == "a...h"
assert s.get_cpu_count() >= 1
assert s.is_process_alive(1) in (True, False)
print(json.dumps({"backend": s.backend_info()["backend"],
                  "loaded": [m for m in sys.argv[1:] if m in sys.modules]}))
"""


def _run(cache: Path) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(HERE / "src"), SKYUTILS_CACHE_DIR=str(cache))
    env.pop("SKYUTILS_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_warm_start_loads_no_heavy_module(tmp_path: Path) -> None:
    cold = _run(tmp_path)  # compiles, describes the export types, caches both
    assert cold["backend"] == "wasm"
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".cwasm", ".json"]
    warm = _run(tmp_path)
    assert warm == {"backend": "wasm", "loaded": []}


LAYOUT_PROBE = """
import ctypes, json, os, sys
from wasmtime import _ffi
# Another wasmtime-py whose C API numbers a kind differently, while the
# package decides (at import); then the real number again for wasmtime-py's
# own conversion.
real = _ffi.WASMTIME_COMPONENT_STRING
_ffi.WASMTIME_COMPONENT_STRING = ctypes.c_uint8(99)
import skyutils_wasm as s
from skyutils_wasm import _val
_ffi.WASMTIME_COMPONENT_STRING = real
f = os.path.join(sys.argv[1], "f.txt")
with open(f, "w") as fh:
    fh.write("a\\nb\\nc\\n")
print(json.dumps({"value": s.base36_encode("ff"), "cpus": s.get_cpu_count(),
                  "tail": s.read_last_n_lines(f, 2), "mirror": _val.LAYOUT_OK,
                  "public": "skyutils_wasm._public" in sys.modules, **s.backend_info()}))
"""


def test_a_different_value_layout_falls_back_to_the_public_conversion(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(HERE / "src"), SKYUTILS_CACHE_DIR=str(tmp_path))
    env.pop("SKYUTILS_BACKEND", None)
    env.pop("SKYUTILS_FORCE_PUBLIC_CONVERSION", None)
    # -O strips asserts: the check must not be one.
    proc = subprocess.run(
        [sys.executable, "-O", "-c", LAYOUT_PROBE, str(tmp_path)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (info["value"], info["tail"]) == ("73", ["b\n", "c"])
    assert info["cpus"] >= 1
    assert (info["backend"], info["conversion"]) == ("wasm", "public")
    assert (info["mirror"], info["public"]) == (False, True)
    assert "WASMTIME_COMPONENT_STRING: 12 here, 99 in wasmtime-py" in info["conversion_reason"]
    assert "wasmtime-py's public API converts values" in proc.stderr
    assert "pure-Python backend" not in proc.stderr
