"""skyutils_wasm: SkyPilot's twelve ``sky.utils`` helpers run inside a
sandboxed WebAssembly component (wasmtime-py), with a pure-Python fallback.

``from skyutils_wasm import common_utils, subprocess_utils`` mirrors
``sky.utils``; the twelve functions are also importable from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import common_utils, subprocess_utils
from ._backend import backend_info, set_backend
from ._config import SETTINGS, Settings, configure
from ._errors import (
    DEPRECATED_NAMES,
    CapabilityDeniedError,
    DeadlineExceededError,
    MemoryLimitExceededError,
    MissingExportError,
    OutOfFuelError,
    OutputTooLargeError,
    PluginLoadError,
    SandboxError,
    TrapError,
)
from ._policy import CAPABILITIES, WASM32_MAX_MEMORY, Policy
from .common_utils import (
    base36_encode,
    find_free_port,
    format_float,
    get_cpu_count,
    get_mem_size_gb,
    hash_file,
    read_last_n_lines,
    truncate_long_string,
)
from .subprocess_utils import (
    estimate_fd_for_directory,
    get_max_workers_for_file_mounts,
    get_parallel_threads,
    is_process_alive,
)

if TYPE_CHECKING:
    from ._plugin import Plugin, load

__version__ = "0.1.0"

# The plugin API is imported on first use.
_LAZY = {"Plugin": "._plugin", "load": "._plugin"}


def __getattr__(name: str) -> Any:
    current = DEPRECATED_NAMES.get(name)
    if current is not None:
        import warnings

        warnings.warn(f"skyutils_wasm.{name} is deprecated: use {current}", DeprecationWarning, 2)
        return globals()[current]
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CAPABILITIES",
    "CapabilityDeniedError",
    "DeadlineExceededError",
    "MemoryLimitExceededError",
    "MissingExportError",
    "OutOfFuelError",
    "OutputTooLargeError",
    "Plugin",
    "PluginLoadError",
    "Policy",
    "TrapError",
    "SETTINGS",
    "WASM32_MAX_MEMORY",
    "SandboxError",
    "Settings",
    "backend_info",
    "base36_encode",
    "common_utils",
    "configure",
    "estimate_fd_for_directory",
    "find_free_port",
    "format_float",
    "get_cpu_count",
    "get_max_workers_for_file_mounts",
    "get_mem_size_gb",
    "get_parallel_threads",
    "hash_file",
    "is_process_alive",
    "load",
    "read_last_n_lines",
    "set_backend",
    "subprocess_utils",
    "truncate_long_string",
]
