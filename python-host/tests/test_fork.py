"""A process forked after using the wasm backend keeps working (it switches
to the pure-Python backend, since wasmtime's threads do not survive fork)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import skyutils_wasm


def _child(path: str, queue: multiprocessing.Queue[object]) -> None:
    queue.put((skyutils_wasm.read_last_n_lines(path, 2), skyutils_wasm.backend_info()["backend"]))


def test_forked_child_after_wasm_file_calls(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a\nb\nc\n")
    skyutils_wasm.set_backend("wasm")
    assert skyutils_wasm.read_last_n_lines(str(log), 2) == ["b\n", "c"]
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = ctx.Queue()
    proc = ctx.Process(target=_child, args=(str(log), queue))
    proc.start()
    proc.join(timeout=30)
    if proc.is_alive():
        proc.kill()
        raise AssertionError("the forked child hung")
    assert proc.exitcode == 0
    assert queue.get(timeout=5) == (["b\n", "c"], "python")
    # The parent still runs the component.
    assert skyutils_wasm.backend_info()["backend"] == "wasm"
    assert skyutils_wasm.read_last_n_lines(str(log), 1) == ["c"]
    assert os.getpid() > 0
