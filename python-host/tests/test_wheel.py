"""Builds the wheel, checks it, installs it into a fresh venv and calls all
twelve functions there (wasmtime comes from PyPI)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

SMOKE = r"""
import hashlib, json, os, tempfile
from pathlib import Path
import skyutils_wasm as s
from skyutils_wasm import _cache, _runtime
from skyutils_wasm import common_utils, subprocess_utils
d = tempfile.mkdtemp()
p = os.path.join(d, "f.txt")
open(p, "w").write("a\nb\nc\n")
out = {
    "info": s.backend_info()["backend"],
    "read": common_utils.read_last_n_lines(p, 2),
    "hash": common_utils.hash_file(p, "sha256").hexdigest(),
    "port": common_utils.find_free_port(20001) >= 20001,
    "b36": common_utils.base36_encode("ff"),
    "ff": common_utils.format_float(1.25, 1),
    "trunc": common_utils.truncate_long_string("abcdefgh", 5, True),
    "cpu": common_utils.get_cpu_count() >= 1,
    "mem": common_utils.get_mem_size_gb() > 0,
    "thr": subprocess_utils.get_parallel_threads("kubernetes") >= 16,
    "alive": subprocess_utils.is_process_alive(os.getpid()),
    "workers": subprocess_utils.get_max_workers_for_file_mounts({"/x": d}) >= 1,
    "fd": subprocess_utils.estimate_fd_for_directory(d),
    "file": s.__file__,
    # The packaged digest file is shipped and vouches for the shipped bytes.
    "digest": s.backend_info()["component_sha256"]
    == hashlib.sha256((Path(s.__file__).parent / "skyutils.wasm").read_bytes()).hexdigest(),
    "sidecar": _cache.packaged_digest(_runtime.COMPONENT_PATH) is not None,
}
print(json.dumps(out))
"""


def test_wheel(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(HERE)],
        check=True, capture_output=True,
    )  # fmt: skip
    (whl,) = dist.glob("*.whl")
    assert whl.name.endswith("-py3-none-any.whl"), whl.name
    names = zipfile.ZipFile(whl).namelist()
    assert "skyutils_wasm/skyutils.wasm" in names
    assert "skyutils_wasm/skyutils.wasm.sha256" in names
    assert "skyutils_wasm/_wasm.py" in names
    assert "skyutils_wasm/_runtime.py" in names
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(whl)], check=True, capture_output=True
    )
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [str(py), "-c", SMOKE], check=True, capture_output=True, text=True, cwd=tmp_path, env=clean
    )
    import json

    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out.pop("file").startswith(str(env_dir))
    assert out == {
        "info": "wasm",
        "read": ["b\n", "c"],
        "hash": "880553fca8fcea94e325ee2cfb48e5a985cc797f39a14cc6d3cedecfeb2ae4d2",
        "port": True,
        "b36": "73",
        "ff": "1.2",
        "trunc": "a...h",
        "cpu": True,
        "mem": True,
        "thr": True,
        "alive": True,
        "workers": True,
        "digest": True,
        "sidecar": True,
        "fd": 5,
    }
