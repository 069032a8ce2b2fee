"""The on-disk cache of compiled components and their export types.

A compiled component is native code: loading a damaged artifact crashes
the process, and loading one planted by another user runs their code
outside the sandbox. So an entry is only ever loaded when

* its directory and the file itself are owned by the current user and not
  writable by group or others (the directory is created 0700, files 0600);
  otherwise the component is compiled in memory, nothing is read or
  written there, and one DEBUG line is logged (``skyutils_wasm.cache``);
* the file carries its own SHA-256: each entry is one file, a 48-byte
  header (:data:`MAGIC` + the SHA-256 of the payload) followed by the
  payload, written to a temporary file and renamed into place. A reader
  sees one complete write or another, never a payload and a digest from
  different writes, and the digest is checked before the payload is used.

A truncated, damaged, wrong-digest or foreign-owned entry in a trusted
directory is recompiled and replaced. The payload of ``*.cwasm`` is
wasmtime's serialized component; of ``*.types.json``, the export type
descriptions as JSON (see :mod:`._capi`).
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import zlib
from pathlib import Path
from typing import Any

import wasmtime

from . import _capi

#: First bytes of every cache entry (format version 1); the payload's
#: SHA-256 (32 raw bytes) follows, then the payload.
MAGIC = b"skyutils-cache1\n"
HEADER = len(MAGIC) + 32
_ENGINE_CONFIG_KEY = "epoch_interruption=1;opt=speed;v2"
_LOGGER = "skyutils_wasm.cache"


def cache_dir() -> Path | None:
    """``$SKYUTILS_CACHE_DIR``, else ``$XDG_CACHE_HOME/skyutils``, else
    ``~/.cache/skyutils``."""
    if os.environ.get("SKYUTILS_CACHE_DIR"):
        return Path(os.environ["SKYUTILS_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "skyutils"
    home = os.environ.get("HOME")
    return Path(home) / ".cache" / "skyutils" if home else None


_wasmtime_version: str | None = None


def wasmtime_version() -> str:
    """The installed wasmtime-py version, read from its ``.dist-info``
    directory name (importing :mod:`importlib.metadata` costs ~20 ms)."""
    global _wasmtime_version
    if _wasmtime_version is None:
        site = Path(wasmtime.__file__).parent.parent
        found = [
            n[len("wasmtime-") : -len(".dist-info")]
            for n in os.listdir(site)
            if n.startswith("wasmtime-") and n.endswith(".dist-info")
        ]
        if len(found) == 1:
            _wasmtime_version = found[0]
        else:  # not a plain site-packages install: ask the package metadata
            from importlib import metadata

            try:
                _wasmtime_version = metadata.version("wasmtime")
            except metadata.PackageNotFoundError:  # pragma: no cover
                _wasmtime_version = "unknown"
    return _wasmtime_version


def sha256(data: bytes | bytearray | memoryview) -> bytes:
    """SHA-256 of ``data``; :mod:`hashlib` is imported here, on first use
    (loading OpenSSL costs ~3 ms, hashing a 1 MiB artifact ~1 ms)."""
    import hashlib

    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data``, in hex."""
    return sha256(data).hex()


def packaged_digest(path: Path) -> str | None:
    """The SHA-256 the build recorded for the packaged component
    (``skyutils.wasm.sha256``, sha256sum format, written by ``make
    component``), if that file is at least as new as the component. Only
    ever trusted for the package's own component, never for plugins."""
    side = path.with_name(path.name + ".sha256")
    try:
        if side.stat().st_mtime_ns < path.stat().st_mtime_ns:
            return None
        digest = side.read_text().split()[0]
    except (OSError, IndexError):
        return None
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return digest


def untrusted(st: os.stat_result) -> str | None:
    """Why a cache directory or file with this status may not be used (None
    when it is owned by the current user and not group/other-writable).
    Where there is no POSIX owner (Windows: ACLs) nothing on disk is
    trusted, and the component is compiled in memory."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:
        return "its owner cannot be checked on this platform"
    if st.st_uid != geteuid():
        return f"owned by uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _debug(message: str) -> None:
    from . import _log

    _log.get(_LOGGER).debug(message)


def read_entry(path: Path) -> memoryview | str:
    """The verified payload of the entry at ``path`` (its directory already
    trusted), or why it cannot be used. The file is opened once, without
    following a symlink, and checked through that descriptor."""
    try:
        # Non-blocking: a FIFO planted at the entry's path would block the
        # open; it is refused below as not a regular file.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return "absent"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        why = untrusted(st)
        if why is not None:
            return why
        data = bytearray(st.st_size)
        view = memoryview(data)
        got = 0
        while got < len(data):
            n = os.readv(fd, [view[got:]])
            if n == 0:
                return "truncated while being read"
            got += n
    except OSError as e:
        return f"unreadable ({e.strerror})"
    finally:
        os.close(fd)
    if len(data) < HEADER or data[: len(MAGIC)] != MAGIC:
        return "truncated or not a cache entry"
    payload = view[HEADER:]
    if sha256(payload) != data[len(MAGIC) : HEADER]:
        return "damaged (digest mismatch)"
    return payload


def write_entry(path: Path, payload: bytes) -> None:
    """Writes ``MAGIC + sha256(payload) + payload`` to a 0600 temporary file
    in ``path``'s directory and renames it over ``path``."""
    import tempfile  # only when a cache entry is written

    fd, tmp = tempfile.mkstemp(prefix=".skyutils-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + sha256(payload))
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _deserialize(engine: wasmtime.Engine, payload: memoryview) -> _capi.Component:
    """Loads a verified artifact (wasmtime copies it; no copy in Python)."""
    buf = (ctypes.c_uint8 * len(payload)).from_buffer(payload)
    return _capi.Component.deserialize(engine, buf, len(payload))


class ComponentCache:
    """The cache entries of one component for one engine configuration:
    ``skyutils-<sha256>-<runtime>.cwasm`` and ``.types.json``."""

    def __init__(self, component_sha256: str, metered: bool) -> None:
        #: What happened to the compiled component (for ``backend_info``).
        self.note = ""
        #: Where the export type descriptions are cached (None: not cached).
        self.types_path: Path | None = None
        self.dir = cache_dir()
        self.path: Path | None = None
        #: Whether entries may be read and written (the directory is ours).
        self.trusted = False
        if self.dir is None:
            self.note = "no cache directory"
            return
        config = _ENGINE_CONFIG_KEY + (";fuel=1" if metered else "")
        # The component's own digest keeps plugins and the packaged component
        # apart; the runtime part only has to tell wasmtime builds apart.
        runtime = zlib.crc32(f"wasmtime-{wasmtime_version()}\0{config}".encode())
        self.path = self.dir / f"skyutils-{component_sha256[:32]}-{runtime:08x}.cwasm"
        self.types_path = self.path.with_suffix(".types.json")

    def _open_dir(self, create: bool) -> str | None:
        """Why the directory may not be used (None: it is trusted), creating
        it owner-only when ``create``."""
        assert self.dir is not None
        try:
            st = os.stat(self.dir)
        except FileNotFoundError:
            if not create:
                return "absent"
            try:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                st = os.stat(self.dir)
            except OSError as e:
                return f"cannot be created ({e.strerror})"
        except OSError as e:
            return f"unusable ({e.strerror})"
        if not stat.S_ISDIR(st.st_mode):
            return "not a directory"
        return untrusted(st)

    def _refuse(self, why: str) -> None:
        """Records (one DEBUG line) that the directory is not used at all."""
        _debug(f"not using cache directory {self.dir}: {why}; compiling in memory")
        self.note = f"compiled in memory: cache directory {why}"
        self.types_path = None

    def load(self, engine: wasmtime.Engine, wasm: bytes) -> _capi.Component:
        """The component: deserialized from a verified entry in a trusted
        directory, else compiled (and stored when the directory is trusted)."""
        if self.path is None:
            return _capi.Component(engine, wasm)
        why = self._open_dir(create=False)
        stale = "absent"
        if why is None:
            self.trusted = True
            payload = read_entry(self.path)
            if isinstance(payload, str):
                stale = payload
            else:
                try:
                    component = _deserialize(engine, payload)
                    self.note = f"loaded {self.path}"
                    return component
                except wasmtime.WasmtimeError:  # e.g. another wasmtime's artifact
                    stale = "rejected by wasmtime"
            if stale != "absent":
                _debug(f"not loading {self.path}: {stale}; compiling it again")
        elif why != "absent":
            self._refuse(why)
            return _capi.Component(engine, wasm)
        component = _capi.Component(engine, wasm)
        if not self.trusted:
            why = self._open_dir(create=True)
            if why is not None:
                self._refuse(why)
                return component
            self.trusted = True
        try:
            write_entry(self.path, component.serialize())
            self.note = f"compiled ({stale}), stored {self.path}"
        except OSError as e:
            self.note = f"compiled, cache not writable: {e}"
        return component

    def load_types(self) -> dict[str, Any]:
        """The cached export type descriptions ({} when absent, unusable or
        not trusted)."""
        if self.types_path is None or not self.trusted:
            return {}
        payload = read_entry(self.types_path)
        if isinstance(payload, str):
            if payload != "absent":
                _debug(f"not loading {self.types_path}: {payload}; describing again")
            return {}
        try:
            types = json.loads(bytes(payload))
        except ValueError:
            return {}
        return types if isinstance(types, dict) else {}

    def store_types(self, types: dict[str, Any]) -> None:
        """Stores the export type descriptions (only in a trusted directory;
        a cache that cannot be written only costs speed)."""
        if self.types_path is None or not self.trusted:
            return
        try:
            write_entry(self.types_path, json.dumps(types).encode())
        except OSError:
            pass
