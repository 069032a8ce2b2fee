"""Property test (hypothesis): random ``str`` (lone surrogates, NUL),
``bytes`` and ``os.PathLike`` arguments to every public function give the
same result or exception on the wasm backend as on the pure backend, and
never crash the interpreter. The properties run in a child process
(``props_inputs.py``): wasmtime's C API aborts the process on a string that
is not valid UTF-8, which must show up as a failed test, not a dead runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import skyutils_wasm

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("SKYUTILS_PROPERTY_EXAMPLES", "150"))


def test_every_function_agrees_with_the_pure_backend_on_odd_inputs(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(skyutils_wasm.__file__).parent.parent))
    r = subprocess.run(
        [sys.executable, str(HERE / "props_inputs.py"), str(tmp_path), str(EXAMPLES)],
        capture_output=True,
        env=env,
        timeout=900,
    )
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, f"exit {r.returncode} (negative: killed by a signal)\n{out}"
    assert out.count("same outcome on both backends") == 5, out
