"""The compiled-component cache.

The key: the packaged component's digest comes from the build's
``skyutils.wasm.sha256`` only while that file is current, and plugins are
always hashed, so a plugin can never claim the packaged component's entry.

The trust model (each case in a new interpreter with ``SKYUTILS_CACHE_DIR``):
damaged entries (flipped code bytes, truncated, wrong digest, no header) in
the user's own directory are compiled again and replaced; entries in a
directory that is not the user's own (world-writable, foreign-owned) are
never read and nothing is written there; group-writable and foreign-owned
entries are replaced. The plants are valid entries (digest included) of the
evil test plugin: a control test shows that loading one changes the answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from skyutils_wasm import _cache, _runtime, _wasm


def _copy_with_sidecar(tmp_path: Path, sidecar: str) -> Path:
    wasm = tmp_path / "skyutils.wasm"
    shutil.copyfile(_runtime.COMPONENT_PATH, wasm)
    (tmp_path / "skyutils.wasm.sha256").write_text(sidecar)
    return wasm


def test_packaged_digest_matches_the_component() -> None:
    real = hashlib.sha256(_runtime.COMPONENT_PATH.read_bytes()).hexdigest()
    assert _cache.packaged_digest(_runtime.COMPONENT_PATH) == real
    assert _runtime.Runtime().component_sha256 == real


def test_stale_or_malformed_sidecar_is_ignored(tmp_path: Path) -> None:
    wasm = _copy_with_sidecar(tmp_path, "ab" * 32 + "  skyutils.wasm\n")
    assert _cache.packaged_digest(wasm) == "ab" * 32
    # A component rebuilt after its digest file was written: not vouched for.
    side = tmp_path / "skyutils.wasm.sha256"
    st = side.stat()
    os.utime(wasm, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert _cache.packaged_digest(wasm) is None
    for bad in ("", "xyz", "AB" * 32, "ab" * 31):
        _copy_with_sidecar(tmp_path, bad)
        assert _cache.packaged_digest(wasm) is None


def test_plugins_are_hashed_not_trusted(tmp_path: Path) -> None:
    # A component outside the package, with a digest file that lies: its own
    # digest is computed, so it can never claim another component's entry.
    wasm = _copy_with_sidecar(tmp_path, "ab" * 32)
    rt = _runtime.Runtime(wasm, capabilities=frozenset())
    assert rt.component_sha256 == hashlib.sha256(wasm.read_bytes()).hexdigest()


def test_wasmtime_version_from_dist_info() -> None:
    from importlib import metadata

    assert _cache.wasmtime_version() == metadata.version("wasmtime")


def test_a_damaged_types_file_is_described_again(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SKYUTILS_CACHE_DIR", str(tmp_path))
    rt = _runtime.Runtime()
    assert rt.types_path is not None and rt.types_path.parent == tmp_path
    for damage in ("{not json", '{"text#base36-encode": 7}', "[]"):
        rt.types_path.write_text(damage)
        backend = _wasm.WasmBackend(_runtime.Runtime())
        assert backend.base36_encode("ff") == "73"
        assert backend.format_float(1.25, 1) == "1.2"


HERE = Path(__file__).resolve().parents[1]
EVIL = HERE.parent / "target/plugins/wasm32-wasip2/release/evil_plugin.wasm"

PROBE = """
import json, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")
import skyutils_wasm as s
try:
    out = [s.base36_encode("ff"), s.truncate_long_string("abcdefgh", 5, True)]
except Exception as e:
    out = [type(e).__name__, str(e)]
info = s.backend_info()
print(json.dumps({"out": out, "backend": info["backend"], "cache": info["compiled_cache"]}))
"""

RIGHT = ["73", "a...h"]


def _run(cache: Path, code: str = PROBE) -> tuple[dict[str, Any], list[str]]:
    """Runs ``code`` in a new interpreter (wasm backend forced): its JSON
    result and the cache module's log lines."""
    env = dict(
        os.environ,
        PYTHONPATH=str(HERE / "src"),
        SKYUTILS_CACHE_DIR=str(cache),
        SKYUTILS_BACKEND="wasm",
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    logs = [ln for ln in proc.stderr.splitlines() if ln.startswith("skyutils_wasm.cache:")]
    return json.loads(proc.stdout.strip().splitlines()[-1]), logs


def _entries(d: Path) -> list[Path]:
    return sorted(d.iterdir())


def _warm(d: Path) -> tuple[Path, Path]:
    """Fills ``d`` with the packaged component's entries: (.cwasm, .types.json)."""
    got, _ = _run(d)
    assert got["out"] == RIGHT and got["backend"] == "wasm"
    cwasm, types = _entries(d)
    assert cwasm.suffix == ".cwasm" and types.name.endswith(".types.json")
    return cwasm, types


def _assert_valid(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(_cache.MAGIC) and len(data) > _cache.HEADER
    assert hashlib.sha256(data[_cache.HEADER :]).digest() == data[len(_cache.MAGIC) : _cache.HEADER]
    assert path.stat().st_mode & 0o7777 == 0o600


def test_new_cache_directory_and_entries_are_owner_only(tmp_path: Path) -> None:
    d = tmp_path / "a" / "b"
    cwasm, types = _warm(d)
    assert d.stat().st_mode & 0o7777 == 0o700
    _assert_valid(cwasm)
    _assert_valid(types)
    got, logs = _run(d)
    assert got["out"] == RIGHT and got["cache"] == f"loaded {cwasm}" and logs == []


def _flip_code(data: bytearray) -> None:
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])


def _truncate(data: bytearray) -> None:
    del data[len(data) // 2 :]


def _shorter_than_header(data: bytearray) -> None:
    del data[20:]


def _wrong_digest(data: bytearray) -> None:
    data[len(_cache.MAGIC) + 7] ^= 1


def _bare_artifact(data: bytearray) -> None:
    del data[: _cache.HEADER]


@pytest.mark.parametrize(
    "damage", [_flip_code, _truncate, _shorter_than_header, _wrong_digest, _bare_artifact]
)
def test_damaged_entry_is_compiled_again_and_replaced(
    tmp_path: Path, damage: Callable[[bytearray], None]
) -> None:
    cwasm, _ = _warm(tmp_path)
    data = bytearray(cwasm.read_bytes())
    damage(data)
    cwasm.write_bytes(data)
    got, logs = _run(tmp_path)
    assert got["out"] == RIGHT and got["backend"] == "wasm"
    assert got["cache"].startswith("compiled (") and len(logs) == 1
    assert cwasm.read_bytes() != data
    _assert_valid(cwasm)
    got, _ = _run(tmp_path)
    assert got["cache"] == f"loaded {cwasm}"


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """A valid entry (digest included) of the evil plugin, and the name of
    the packaged component's entry: planting the first under the second name
    swaps the component if the plant is loaded."""
    if not EVIL.is_file():
        pytest.fail(f"{EVIL} missing (run `make plugins` in the repository root)")
    plugin_dir = tmp_path_factory.mktemp("plugin")
    _run(
        plugin_dir,
        "from pathlib import Path; import json; from skyutils_wasm import _runtime; "
        f"_runtime.Runtime(Path({str(EVIL)!r}), capabilities=frozenset()); print(json.dumps({{}}))",
    )
    (evil,) = [p for p in _entries(plugin_dir) if p.suffix == ".cwasm"]
    cwasm, _ = _warm(tmp_path_factory.mktemp("packaged"))
    return evil.read_bytes(), cwasm.name


def _planted(d: Path, plant: tuple[bytes, str], dir_mode: int, file_mode: int) -> Path:
    d.chmod(dir_mode)
    path = d / plant[1]
    path.write_bytes(plant[0])
    path.chmod(file_mode)
    return path


def test_control_a_plant_in_a_trusted_directory_is_loaded(
    tmp_path: Path, plant: tuple[bytes, str]
) -> None:
    _planted(tmp_path, plant, 0o700, 0o600)
    got, _ = _run(tmp_path)
    assert got["out"] == ["ValueError", "unknown command ff"]


def test_plant_in_a_world_writable_directory_is_not_loaded(
    tmp_path: Path, plant: tuple[bytes, str]
) -> None:
    path = _planted(tmp_path, plant, 0o777, 0o600)
    got, logs = _run(tmp_path)
    assert got["out"] == RIGHT and got["backend"] == "wasm"
    assert (
        got["cache"]
        == "compiled in memory: cache directory writable by group or others (mode 0777)"
    )
    assert len(logs) == 1 and "not using cache directory" in logs[0]
    # Nothing read or written there.
    assert path.read_bytes() == plant[0] and _entries(tmp_path) == [path]


def test_group_writable_entry_is_not_loaded_and_is_replaced(
    tmp_path: Path, plant: tuple[bytes, str]
) -> None:
    path = _planted(tmp_path, plant, 0o700, 0o660)
    got, logs = _run(tmp_path)
    assert got["out"] == RIGHT
    assert "writable by group or others" in logs[0] and len(logs) == 1
    assert path.read_bytes() != plant[0]
    _assert_valid(path)


def test_symlinked_entry_is_not_followed(tmp_path: Path, plant: tuple[bytes, str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(plant[0])
    elsewhere.chmod(0o600)
    (tmp_path / plant[1]).symlink_to(elsewhere)
    got, _ = _run(tmp_path)
    assert got["out"] == RIGHT
    assert not (tmp_path / plant[1]).is_symlink()
    _assert_valid(tmp_path / plant[1])
    assert elsewhere.read_bytes() == plant[0]


def test_foreign_owned_entry_and_directory_are_not_loaded(
    tmp_path: Path, plant: tuple[bytes, str]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can make a file owned by another user")
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    path = _planted(own, plant, 0o700, 0o600)
    os.chown(path, 65534, 65534)
    got, logs = _run(own)
    assert got["out"] == RIGHT and "owned by uid 65534" in logs[0]
    assert path.read_bytes() != plant[0]
    _assert_valid(path)
    assert path.stat().st_uid == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    path = _planted(foreign, plant, 0o700, 0o600)
    os.chown(foreign, 65534, 65534)
    got, logs = _run(foreign)
    assert got["out"] == RIGHT and got["cache"].endswith("owned by uid 65534")
    assert path.read_bytes() == plant[0] and _entries(foreign) == [path]


def test_types_cache_follows_the_same_rules(tmp_path: Path) -> None:
    """A forged type description (it would make the host misread the
    results) is not used from a group-writable file, nor with a bad digest."""
    _, types = _warm(tmp_path)
    forged = json.dumps({"text#base36-encode": [["u64"], ["u64"]]}).encode()
    types.write_bytes(_cache.MAGIC + hashlib.sha256(forged).digest() + forged)
    types.chmod(0o660)
    got, logs = _run(tmp_path)
    assert got["out"] == RIGHT and len(logs) == 1 and "types.json" in logs[0]
    _assert_valid(types)
    types.write_bytes(_cache.MAGIC + hashlib.sha256(b"{}").digest() + forged)
    got, logs = _run(tmp_path)
    assert got["out"] == RIGHT and "digest mismatch" in logs[0]
    _assert_valid(types)


def test_nothing_on_disk_is_trusted_without_posix_owners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no ``os.geteuid`` (ownership is ACLs): the cache is then
    never read or written, and the component is compiled in memory."""
    from skyutils_wasm import _cache

    assert _cache.untrusted(os.stat(tmp_path)) is None
    monkeypatch.delattr(os, "geteuid")
    assert _cache.untrusted(os.stat(tmp_path)) == "its owner cannot be checked on this platform"
