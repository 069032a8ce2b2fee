"""Drop-in for the ``sky.utils.subprocess_utils`` functions:
``get_parallel_threads``, ``get_max_workers_for_file_mounts`` (skypilot
0.14.1), ``is_process_alive`` (0.10.5) and the derived
``estimate_fd_for_directory``.

The low file-descriptor warning is logged once per process at WARNING on
the logger ``sky.utils.subprocess_utils`` (as upstream).
"""

from __future__ import annotations

import operator
import os
import threading
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _backend, _log
from ._grants import is_utf8
from .common_utils import _confined_path, _fits, _py, _sandboxable_path

_LOGGER = "sky.utils.subprocess_utils"


def __getattr__(name: str) -> Any:
    # ``logger`` as in sky.utils.subprocess_utils, created on first access.
    if name == "logger":
        return _log.get(_LOGGER)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_low_fd_warning_shown = False
_warn_lock = threading.Lock()


def _reset_low_fd_warning() -> None:
    """Clears the once-per-process warning flag (for tests)."""
    global _low_fd_warning_shown
    _low_fd_warning_shown = False


def _cloud_arg(cloud_str: Any) -> Optional[str]:
    """Normalizes a non-str ``cloud_str`` exactly as upstream would see it
    (only its truthiness and whether it lowers to ``kubernetes`` matter, so a
    ``str`` that is not UTF-8, never ``kubernetes``, becomes a neutral one)."""
    if cloud_str is None:
        return None
    if isinstance(cloud_str, str):
        return cloud_str if is_utf8(cloud_str) else "?"
    if not cloud_str:
        return None
    return "kubernetes" if cloud_str.lower() == "kubernetes" else None


def get_parallel_threads(cloud_str: Optional[str] = None) -> int:
    """``max(4, cpu_count - 1)``, times 4 for Kubernetes."""
    return _get_parallel_threads(_backend.get(), cloud_str)


def _get_parallel_threads(b: Any, cloud_str: Any) -> int:
    return b.get_parallel_threads(_cloud_arg(cloud_str))  # type: ignore[no-any-return]


def _source(v: Any) -> Union[str, bytes]:
    """A mount source as upstream's ``os.path.isdir`` sees it: ``str`` or
    ``bytes`` paths (any bytes); anything else, a NUL or a ``str`` that names
    no bytes is never a directory."""
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    return v if _sandboxable_path(v) else ""


def get_max_workers_for_file_mounts(
    common_file_mounts: Dict[str, str], cloud_str: Optional[str] = None
) -> int:
    """Worker count for syncing file mounts under the open-file limit."""
    return _get_max_workers_for_file_mounts(_backend.get(), common_file_mounts, cloud_str)


def _get_max_workers_for_file_mounts(b: Any, common_file_mounts: Any, cloud_str: Any) -> int:
    values = common_file_mounts.values()  # upstream's AttributeError for non-dicts
    mounts: List[Tuple[str, Union[str, bytes]]] = [
        (k if isinstance(k, str) else "", _source(v))
        for k, v in zip(common_file_mounts.keys(), values)
    ]
    try:
        cloud = _cloud_arg(cloud_str)
        cloud_error: Optional[BaseException] = None
    except Exception as e:  # noqa: BLE001 - re-raised after the scan, as upstream
        cloud, cloud_error = None, e
    count, warning = b.get_max_workers_for_file_mounts(mounts, cloud)
    if warning is not None:
        global _low_fd_warning_shown
        with _warn_lock:
            show = not _low_fd_warning_shown
            _low_fd_warning_shown = True
        if show:
            _log.get(_LOGGER).warning(warning)
    if cloud_error is not None:
        raise cloud_error
    _log.get(_LOGGER).debug(f"Using {count} workers for file mounts.")
    return count  # type: ignore[no-any-return]


def is_process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies and thread ids count)."""
    return _is_process_alive(_backend.get(), pid)


def _is_process_alive(b: Any, pid: Any) -> bool:
    if type(pid) is bool:
        return False
    if not isinstance(pid, int):
        if pid < 0:
            raise ValueError(f"pid must be a positive integer (got {pid})")
        if isinstance(pid, float):
            raise TypeError("'float' object cannot be interpreted as an integer")
        pid = operator.index(pid)
    v = int(pid)
    if not _fits(v):
        if v < 0:
            raise ValueError(f"pid must be a positive integer (got {pid})")
        return False
    return b.is_process_alive(v)  # type: ignore[no-any-return]


def estimate_fd_for_directory(path: str) -> int:
    """5 x the number of entries of a directory (not recursive)."""
    return _estimate_fd_for_directory(_backend.get(), path)


def _estimate_fd_for_directory(b: Any, path: Any) -> int:
    path = os.fspath(path)
    if getattr(b, "confined", False):
        path = _confined_path(path)
    if not _sandboxable_path(path):
        return _py().estimate_fd_for_directory(path)
    return b.estimate_fd_for_directory(path)  # type: ignore[no-any-return]
