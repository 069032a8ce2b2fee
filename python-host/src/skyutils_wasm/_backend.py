"""Backend selection: the wasm backend when wasmtime and the component load,
else the pure-Python one (one warning). ``SKYUTILS_BACKEND=wasm|python``
forces a backend."""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, Optional

from . import _log

_lock = threading.Lock()
_active: Optional[Any] = None
_reason = ""
_backends: Dict[str, Any] = {}


def load(name: str) -> Any:
    """The backend called ``name`` (``wasm`` or ``python``), created once."""
    b = _backends.get(name)
    if b is None:
        if name == "wasm":
            from ._wasm import WasmBackend

            b = WasmBackend()
        elif name == "python":
            from ._pure import PureBackend

            b = PureBackend()
        else:
            raise ValueError(f"unknown backend {name!r} (expected 'wasm' or 'python')")
        _backends[name] = b
    return b


def _select() -> Any:
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


def get() -> Any:
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


def backend_info() -> Dict[str, Any]:
    """Which backend is active and why (plus wasm runtime details)."""
    b = get()
    info: Dict[str, Any] = {"backend": b.name, "reason": _reason}
    if b.name == "wasm":
        from ._cache import wasmtime_version

        info["wasmtime"] = wasmtime_version()
        info["component_sha256"] = b.rt.component_sha256
        info["compiled_cache"] = b.rt.cache_note
    return info
