"""Drop-in for the ``sky.utils.subprocess_utils`` functions:
``get_parallel_threads``, ``get_max_workers_for_file_mounts`` (skypilot
0.14.1), ``is_process_alive`` (0.10.5) and the derived
``estimate_fd_for_directory``.

Each runs on the active backend (:mod:`._backend`) with the argument
handling of :mod:`._args`. The low file-descriptor warning is logged once
per process at WARNING on the logger ``sky.utils.subprocess_utils`` (as
upstream).
"""

from __future__ import annotations

from typing import Any

from . import _args, _backend, _log


def __getattr__(name: str) -> Any:
    # ``logger`` as in sky.utils.subprocess_utils, created on first access.
    if name == "logger":
        return _log.get(_args.SUBPROCESS_LOGGER)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_parallel_threads(cloud_str: str | None = None) -> int:
    """``max(4, cpu_count - 1)``, times 4 for Kubernetes."""
    return _args.get_parallel_threads(_backend.get(), cloud_str)


def get_max_workers_for_file_mounts(
    common_file_mounts: dict[str, str], cloud_str: str | None = None
) -> int:
    """Worker count for syncing file mounts under the open-file limit."""
    return _args.get_max_workers_for_file_mounts(_backend.get(), common_file_mounts, cloud_str)


def is_process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies and thread ids count)."""
    return _args.is_process_alive(_backend.get(), pid)


def estimate_fd_for_directory(path: str) -> int:
    """5 x the number of entries of a directory (not recursive)."""
    return _args.estimate_fd_for_directory(_backend.get(), path)
