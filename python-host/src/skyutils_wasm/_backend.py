"""The backend interface and backend selection: the wasm backend when
wasmtime and the component load, else the pure-Python one (one warning).
``SKYUTILS_BACKEND=wasm|python`` forces a backend."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from . import _log

if TYPE_CHECKING:
    from ._grants import PathArg


class Backend(Protocol):
    """What runs the twelve functions: :class:`._wasm.WasmBackend` (the
    component, in the sandbox) and :class:`._pure.PureBackend` (plain
    Python). :mod:`._args` normalises SkyPilot's arguments first, so a
    backend gets clean types: ``str`` text that encodes to UTF-8, ints that
    fit in 64 bits, paths as ``str`` (surrogate escapes allowed) or
    ``bytes`` without NUL. Errors are the exceptions SkyPilot raises."""

    #: ``wasm`` or ``python`` (what ``backend_info()`` reports).
    name: str
    #: Whether Python-only path and argument types must be refused rather
    #: than opened by the host (a plugin's policy covers every file access).
    confined: bool

    def base36_encode(self, hex_str: str) -> str:
        """``int(hex_str, 16)`` in base 36, lowercase."""

    def format_float(self, num: Any, precision: int) -> str:
        """``num`` (an int, or a float) in fixed notation."""

    def truncate_long_string(self, s: str, max_length: int, truncate_middle: bool) -> str:
        """``s`` shortened to about ``max_length`` code points with ``...``."""

    def read_last_n_lines(self, path: PathArg, n: int, chunk: int, errors: str) -> list[str]:
        """The last ``n`` lines of a file, decoded as UTF-8 with ``errors``."""

    def read_last_n_raw(self, path: PathArg, n: int, chunk: int) -> list[bytes]:
        """The last ``n`` pieces of a file split at ``b"\\n"`` (other codecs)."""

    def hash_file(self, path: PathArg, hash_alg: str) -> Any:
        """A hashlib-like object holding the hash of a file's content."""

    def estimate_fd_for_directory(self, path: PathArg) -> int:
        """5 x the number of entries of a directory."""

    def get_cpu_count(self) -> int | None:
        """CPUs available (environment override, affinity, cgroups)."""

    def get_mem_size_gb(self) -> float:
        """Memory in GiB (environment overrides, cgroup limit)."""

    def get_parallel_threads(self, cloud_str: str | None) -> int:
        """``max(4, cpu_count - 1)``, times 4 for Kubernetes."""

    def get_max_workers_for_file_mounts(
        self, mounts: list[tuple[str, PathArg]], cloud_str: str | None
    ) -> tuple[int, str | None]:
        """The worker count and the low-descriptor warning to log, if any."""

    def is_process_alive(self, pid: int) -> bool:
        """Whether a process with this (non-negative, 64-bit) pid exists."""

    def find_free_port(self, start_port: int) -> int:
        """The first bindable port from ``start_port`` (-1 to 65534)."""


_lock = threading.Lock()
_active: Backend | None = None
_reason = ""
_backends: dict[str, Backend] = {}


def load(name: str) -> Backend:
    """The backend called ``name`` (``wasm`` or ``python``), created once."""
    b = _backends.get(name)
    if b is None:
        b = _create(name)
        _backends[name] = b
    return b


def _create(name: str) -> Backend:
    if name == "wasm":
        from ._wasm import WasmBackend

        return WasmBackend()
    if name == "python":
        from ._pure import PureBackend

        return PureBackend()
    raise ValueError(f"unknown backend {name!r} (expected 'wasm' or 'python')")


def _select() -> Backend:
    global _active, _reason
    forced = os.environ.get("SKYUTILS_BACKEND", "").strip().lower()
    if forced:
        _active = load(forced)
        _reason = f"forced by SKYUTILS_BACKEND={forced}"
        return _active
    try:
        _active = load("wasm")
        _reason = "wasmtime and the component loaded"
    except Exception as e:  # noqa: BLE001 - any load failure means fallback
        _active = load("python")
        _reason = f"wasm backend unavailable: {type(e).__name__}: {e}"
        _log.get("skyutils_wasm").warning(
            "skyutils_wasm: using the pure-Python backend (%s)", _reason
        )
    return _active


def get() -> Backend:
    """The active backend (selected lazily on first use)."""
    b = _active
    if b is None:
        with _lock:
            b = _active if _active is not None else _select()
    return b


def set_backend(name: str) -> None:
    """Switches the active backend (``wasm`` or ``python``)."""
    global _active, _reason
    with _lock:
        _active = load(name)
        _reason = "set by set_backend()"


def _after_fork_in_child() -> None:
    """A forked child cannot use a wasm runtime created before the fork:
    libwasmtime's filesystem worker threads do not survive ``fork()`` and its
    calls would hang. Such a child switches to the pure-Python backend."""
    global _lock, _active, _reason
    _lock = threading.Lock()
    if _backends.pop("wasm", None) is not None:
        _active = load("python")
        _reason = (
            "forked from a process that used the wasm backend "
            "(wasmtime's worker threads do not survive fork)"
        )


if hasattr(os, "register_at_fork"):  # not on Windows (no fork there)
    os.register_at_fork(after_in_child=_after_fork_in_child)


def backend_info() -> dict[str, Any]:
    """Which backend is active and why (plus wasm runtime details: the
    value ``conversion``, ``fast`` or wasmtime-py's ``public`` API, and why)."""
    b = get()
    info: dict[str, Any] = {"backend": b.name, "reason": _reason}
    if b.name == "wasm":
        from ._cache import wasmtime_version
        from ._val import conversion_info
        from ._wasm import WasmBackend

        assert isinstance(b, WasmBackend)
        info["wasmtime"] = wasmtime_version()
        info["component_sha256"] = b.rt.component_sha256
        info["compiled_cache"] = b.rt.cache_note
        info["conversion"], info["conversion_reason"] = conversion_info()
    return info
