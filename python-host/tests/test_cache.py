"""The compiled-component cache key: the packaged component's digest comes
from the build's ``skyutils.wasm.sha256`` only while that file is current,
and plugins are always hashed, so a plugin can never claim the packaged
component's cache entry."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from skyutils_wasm import _wasm


def _copy_with_sidecar(tmp_path: Path, sidecar: str) -> Path:
    wasm = tmp_path / "skyutils.wasm"
    shutil.copyfile(_wasm.COMPONENT_PATH, wasm)
    (tmp_path / "skyutils.wasm.sha256").write_text(sidecar)
    return wasm


def test_packaged_digest_matches_the_component() -> None:
    real = hashlib.sha256(_wasm.COMPONENT_PATH.read_bytes()).hexdigest()
    assert _wasm.packaged_digest(_wasm.COMPONENT_PATH) == real
    assert _wasm.Runtime().component_sha256 == real


def test_stale_or_malformed_sidecar_is_ignored(tmp_path: Path) -> None:
    wasm = _copy_with_sidecar(tmp_path, "ab" * 32 + "  skyutils.wasm\n")
    assert _wasm.packaged_digest(wasm) == "ab" * 32
    # A component rebuilt after its digest file was written: not vouched for.
    side = tmp_path / "skyutils.wasm.sha256"
    st = side.stat()
    os.utime(wasm, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert _wasm.packaged_digest(wasm) is None
    for bad in ("", "xyz", "AB" * 32, "ab" * 31):
        _copy_with_sidecar(tmp_path, bad)
        assert _wasm.packaged_digest(wasm) is None


def test_plugins_are_hashed_not_trusted(tmp_path: Path) -> None:
    # A component outside the package, with a digest file that lies: its own
    # digest is computed, so it can never claim another component's entry.
    wasm = _copy_with_sidecar(tmp_path, "ab" * 32)
    rt = _wasm.Runtime(wasm, capabilities=frozenset())
    assert rt.component_sha256 == hashlib.sha256(wasm.read_bytes()).hexdigest()


def test_wasmtime_version_from_dist_info() -> None:
    from importlib import metadata

    assert _wasm.wasmtime_version() == metadata.version("wasmtime")


def test_a_damaged_types_file_is_described_again(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SKYUTILS_CACHE_DIR", str(tmp_path))
    rt = _wasm.Runtime()
    assert rt.types_path is not None and rt.types_path.parent == tmp_path
    for damage in ("{not json", '{"text#base36-encode": 7}', "[]"):
        rt.types_path.write_text(damage)
        backend = _wasm.WasmBackend(_wasm.Runtime())
        assert backend.base36_encode("ff") == "73"
        assert backend.format_float(1.25, 1) == "1.2"
