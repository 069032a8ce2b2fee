"""Drop-in for the eight ``sky.utils.common_utils`` functions (skypilot 0.14.1).

Arguments of the types SkyPilot documents go to the active backend; the
Python-only cases of SPEC.md section 6 (wrong types, ``bool`` as ``int``,
integers beyond 64 bits, other codecs) are handled here.
"""

from __future__ import annotations

import codecs
import operator
import os
from typing import TYPE_CHECKING, Any, List, Optional, Union

from . import _backend, _log
from ._grants import is_utf8

if TYPE_CHECKING:
    from ._pure import PureBackend

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def __getattr__(name: str) -> Any:
    # ``logger`` as in sky.utils.common_utils, created on first access.
    if name == "logger":
        return _log.get("sky.utils.common_utils")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _py() -> "PureBackend":
    """The pure-Python backend, for the Python-only argument cases
    (imported on first use, so ``import skyutils_wasm`` stays light)."""
    backend: PureBackend = _backend.load("python")
    return backend


def _is_int(v: Any) -> bool:
    return type(v) is int


def _fits(v: int) -> bool:
    return _I64_MIN <= v <= _I64_MAX


def _clamp(v: int) -> int:
    return max(_I64_MIN, min(_I64_MAX, v))


def _fspath(p: Any) -> Any:
    return os.fspath(p) if isinstance(p, os.PathLike) else p


def _sandboxable_path(p: Any) -> bool:
    """Whether ``p`` is a path the sandbox can be asked about: ``str`` that
    names bytes (surrogate escapes or not) or ``bytes``, without a NUL (upstream's
    ``ValueError: embedded null byte`` and other types' errors come from the
    pure backend, which runs upstream's exact operations)."""
    if isinstance(p, str):
        if "\x00" in p:
            return False
        try:
            os.fsencode(p)  # surrogates outside surrogateescape's range fail
        except UnicodeEncodeError:
            return False
        return True
    return isinstance(p, bytes) and b"\x00" not in p


def _confined_path(path: Any) -> str:
    """A path for a plugin, whose policy covers every file access: Python-only
    path types are refused instead of being opened by the host."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError(f"expected str, bytes or os.PathLike object, not {type(path).__name__}")
    if "\x00" in path:
        raise ValueError("embedded null byte")
    return path


def _confined_int(v: Any) -> int:
    if not isinstance(v, int):
        raise TypeError(f"'{type(v).__name__}' object cannot be interpreted as an integer")
    return int(v)


def read_last_n_lines(
    file_path: str,
    n: int,
    chunk_size: int = 8192,
    encoding: str = "utf-8",
    errors: str = "replace",
) -> List[str]:
    """The last ``n`` lines of a file, read backwards in ``chunk_size`` blocks."""
    return _read_last_n_lines(_backend.get(), file_path, n, chunk_size, encoding, errors)


def _read_last_n_lines(
    b: Any, file_path: Any, n: Any, chunk_size: Any, encoding: str, errors: str
) -> List[str]:
    file_path = _fspath(file_path)
    if getattr(b, "confined", False):
        file_path = _confined_path(file_path)
        n, chunk_size = _confined_int(n), _confined_int(chunk_size)
    if (
        not _sandboxable_path(file_path)
        or not isinstance(n, int)
        or not isinstance(chunk_size, int)
    ):
        # Python-only argument types: upstream's exact operations.
        from ._pure import decode_pieces, read_last_n_raw

        return decode_pieces(read_last_n_raw(file_path, n, chunk_size), encoding, errors)
    n, chunk = _clamp(int(n)), _clamp(int(chunk_size))
    if encoding == "utf-8" and errors in ("strict", "replace", "ignore"):
        return b.read_last_n_lines(file_path, n, chunk, errors)  # type: ignore[no-any-return]
    codecs.lookup(encoding)
    from ._pure import decode_pieces

    return decode_pieces(b.read_last_n_raw(file_path, n, chunk), encoding, errors)


def hash_file(path: str, hash_alg: str) -> Any:
    """The live hash object of a file's content (``hexdigest()``, ``digest()``,
    ``update()``, ``copy()``, ``name``, ``digest_size``, ``block_size``)."""
    return _hash_file(_backend.get(), path, hash_alg)


def _hash_file(b: Any, path: Any, hash_alg: Any) -> Any:
    path = _fspath(path)
    if getattr(b, "confined", False):
        path = _confined_path(path)
        if not isinstance(hash_alg, str):
            raise TypeError(f"hash_alg must be str, not {type(hash_alg).__name__}")
    if not _sandboxable_path(path) or not isinstance(hash_alg, str) or not is_utf8(hash_alg):
        return _py().hash_file(path, hash_alg)
    return b.hash_file(path, hash_alg)


def find_free_port(start_port: int) -> int:
    """The first port from ``start_port`` to 65534 that can be bound."""
    return _find_free_port(_backend.get(), start_port)


def _find_free_port(b: Any, start_port: Any) -> int:
    if not isinstance(start_port, int):
        range(start_port, 65535)  # raises upstream's TypeError
        start_port = operator.index(start_port)
    v = int(start_port)
    if v >= 65535:
        raise OSError("No free ports available.")
    return b.find_free_port(max(v, -1))  # type: ignore[no-any-return]


def base36_encode(hex_str: str) -> str:
    """``int(hex_str, 16)`` in base 36, lowercase."""
    return _base36_encode(_backend.get(), hex_str)


def _base36_encode(b: Any, hex_str: Any) -> str:
    if isinstance(hex_str, str) and "\x00" not in hex_str and is_utf8(hex_str):
        return b.base36_encode(str(hex_str))  # type: ignore[no-any-return]
    return _py().base36_encode(hex_str)


def format_float(num: Union[float, int], precision: int = 1) -> str:
    """Fixed-notation text of ``num`` (ints verbatim, integral floats without
    a fraction, others with ``precision`` digits)."""
    return _format_float(_backend.get(), num, precision)


def _format_float(b: Any, num: Any, precision: Any) -> str:
    if isinstance(num, int):
        if _is_int(num) and _fits(num):
            return b.format_float(num, 0)  # type: ignore[no-any-return]
        return f"{num}"
    if isinstance(num, float):
        num = float(num)
        if num.is_integer():
            return b.format_float(num, 0)  # type: ignore[no-any-return]
        if _is_int(precision):
            if _fits(precision):
                return b.format_float(num, precision)  # type: ignore[no-any-return]
            if precision > 0:
                raise ValueError("Too many decimal digits in format string")
            raise ValueError("Format specifier missing precision")
    return _py().format_float(num, precision)


def truncate_long_string(s: str, max_length: int = 35, truncate_middle: bool = False) -> str:
    """``s`` shortened to about ``max_length`` code points with ``...``."""
    return _truncate_long_string(_backend.get(), s, max_length, truncate_middle)


def _truncate_long_string(b: Any, s: Any, max_length: Any, truncate_middle: Any) -> str:
    if (
        isinstance(s, str)
        and _is_int(max_length)
        and _fits(max_length)
        and "\x00" not in s
        and is_utf8(s)
    ):
        return b.truncate_long_string(  # type: ignore[no-any-return]
            str(s), max_length, bool(truncate_middle)
        )
    return _py().truncate_long_string(s, max_length, truncate_middle)


def get_cpu_count() -> Optional[int]:
    """CPUs available: ``SKYPILOT_POD_CPU_CORE_LIMIT``, else min(logical,
    affinity, cgroup quota)."""
    return _backend.get().get_cpu_count()  # type: ignore[no-any-return]


def get_mem_size_gb() -> float:
    """Memory in GiB: the ``SKYPILOT_POD_MEMORY_*`` overrides, else total
    memory lowered to the cgroup limit."""
    return _backend.get().get_mem_size_gb()  # type: ignore[no-any-return]
