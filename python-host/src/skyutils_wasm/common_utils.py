"""Drop-in for the eight ``sky.utils.common_utils`` functions (skypilot 0.14.1).

Each runs on the active backend (:mod:`._backend`) with the argument
handling of :mod:`._args`.
"""

from __future__ import annotations

from typing import Any

from . import _args, _backend, _log


def __getattr__(name: str) -> Any:
    # ``logger`` as in sky.utils.common_utils, created on first access.
    if name == "logger":
        return _log.get("sky.utils.common_utils")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_last_n_lines(
    file_path: str,
    n: int,
    chunk_size: int = 8192,
    encoding: str = "utf-8",
    errors: str = "replace",
) -> list[str]:
    """The last ``n`` lines of a file, read backwards in ``chunk_size`` blocks."""
    return _args.read_last_n_lines(_backend.get(), file_path, n, chunk_size, encoding, errors)


def hash_file(path: str, hash_alg: str) -> Any:
    """The live hash object of a file's content (``hexdigest()``, ``digest()``,
    ``update()``, ``copy()``, ``name``, ``digest_size``, ``block_size``)."""
    return _args.hash_file(_backend.get(), path, hash_alg)


def find_free_port(start_port: int) -> int:
    """The first port from ``start_port`` to 65534 that can be bound."""
    return _args.find_free_port(_backend.get(), start_port)


def base36_encode(hex_str: str) -> str:
    """``int(hex_str, 16)`` in base 36, lowercase."""
    return _args.base36_encode(_backend.get(), hex_str)


def format_float(num: float | int, precision: int = 1) -> str:
    """Fixed-notation text of ``num`` (ints verbatim, integral floats without
    a fraction, others with ``precision`` digits)."""
    return _args.format_float(_backend.get(), num, precision)


def truncate_long_string(s: str, max_length: int = 35, truncate_middle: bool = False) -> str:
    """``s`` shortened to about ``max_length`` code points with ``...``."""
    return _args.truncate_long_string(_backend.get(), s, max_length, truncate_middle)


def get_cpu_count() -> int | None:
    """CPUs available: ``SKYPILOT_POD_CPU_CORE_LIMIT``, else min(logical,
    affinity, cgroup quota)."""
    return _backend.get().get_cpu_count()


def get_mem_size_gb() -> float:
    """Memory in GiB: the ``SKYPILOT_POD_MEMORY_*`` overrides, else total
    memory lowered to the cgroup limit."""
    return _backend.get().get_mem_size_gb()
