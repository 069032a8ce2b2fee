"""Every vector of tests/vectors/vectors.json against both backends."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from vectorlib import VECTORS_PATH, Env, run_as_nobody, run_call

import skyutils_wasm

VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
IS_ROOT = os.geteuid() == 0


@pytest.fixture(params=["wasm", "python"])
def backend(request: Any) -> Any:
    skyutils_wasm.set_backend(request.param)
    yield request.param
    skyutils_wasm.configure(env_override=None, cgroup_root="/sys/fs/cgroup")


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(backend: str, vec: dict[str, Any]) -> None:
    requires = set(vec.get("requires", []))
    if "root" in requires and not IS_ROOT:
        pytest.fail("vector needs root (bind port 1); run the suite as root to cover it")
    if "dev_null" in requires and not os.path.exists("/dev/null"):
        pytest.fail("vector needs /dev/null")
    if "procfs" in requires and not os.path.exists("/proc/self/status"):
        pytest.fail("vector needs /proc/self/status")
    with Env(vec) as env:
        if "non_root" in requires and IS_ROOT:
            errs = run_as_nobody(vec, env.tmp, backend)
        else:
            errs = run_call(vec, env.tmp)
    assert not errs, "\n".join(errs)


def test_conversion_in_use() -> None:
    # test_public.py runs this module again with the public conversion forced.
    skyutils_wasm.set_backend("wasm")
    forced = os.environ.get("SKYUTILS_FORCE_PUBLIC_CONVERSION") == "1"
    info = skyutils_wasm.backend_info()
    assert info["conversion"] == ("public" if forced else "fast")
