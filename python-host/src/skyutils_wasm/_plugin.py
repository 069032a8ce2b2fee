"""Sandboxed plugins: any component exporting the ``skypilot:utils``
interfaces (or a subset), run under a :class:`Policy`.

``load(path, policy)`` compiles the component (on the metered engine when
the policy has a fuel budget), links WASI and a ``host-facts`` import gated
by the policy's capabilities, and instantiates it once to check that it
links. The :class:`Plugin` methods take SkyPilot's signatures and share the
argument handling and result conversion of the module-level functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from . import _args
from ._facts import HostFacts
from ._policy import Policy

if TYPE_CHECKING:
    from ._wasm import WasmBackend

PathLike = Union[str, "os.PathLike[str]"]


class Plugin:
    """A loaded component under a policy. Thread-safe: share one across
    threads. A trap, deadline, memory or fuel failure discards only the
    instance it happened in; the next call gets a fresh one."""

    def __init__(self, backend: WasmBackend, source: str) -> None:
        """``backend`` runs the calls under its policy; ``source`` names the
        component (a path, or ``<bytes>``)."""
        self._b = backend
        self.source = source

    @property
    def policy(self) -> Policy:
        """The policy every call runs under."""
        policy = self._b.policy
        assert policy is not None
        return policy

    @property
    def component_sha256(self) -> str:
        """SHA-256 of the component's bytes."""
        return self._b.rt.component_sha256

    def __repr__(self) -> str:
        return f"<skyutils_wasm.Plugin {self.source} {self.policy!r}>"

    # -- text -------------------------------------------------------------
    def base36_encode(self, hex_str: str) -> str:
        """``int(hex_str, 16)`` in base 36, lowercase."""
        return _args.base36_encode(self._b, hex_str)

    def format_float(self, num: float | int, precision: int = 1) -> str:
        """Fixed-notation text of ``num``."""
        return _args.format_float(self._b, num, precision)

    def truncate_long_string(
        self, s: str, max_length: int = 35, truncate_middle: bool = False
    ) -> str:
        """``s`` shortened to about ``max_length`` code points with ``...``."""
        return _args.truncate_long_string(self._b, s, max_length, truncate_middle)

    # -- files ------------------------------------------------------------
    def read_last_n_lines(
        self,
        file_path: str,
        n: int,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
    ) -> list[str]:
        """The last ``n`` lines of a file."""
        return _args.read_last_n_lines(self._b, file_path, n, chunk_size, encoding, errors)

    def hash_file(self, path: str, hash_alg: str) -> Any:
        """The live hash object of a file's content."""
        return _args.hash_file(self._b, path, hash_alg)

    def estimate_fd_for_directory(self, path: str) -> int:
        """5 x the number of entries of a directory."""
        return _args.estimate_fd_for_directory(self._b, path)

    # -- system -----------------------------------------------------------
    def find_free_port(self, start_port: int) -> int:
        """The first port from ``start_port`` to 65534 that can be bound."""
        return _args.find_free_port(self._b, start_port)

    def get_cpu_count(self) -> int | None:
        """CPUs available (``SKYPILOT_POD_CPU_CORE_LIMIT``, affinity, cgroups)."""
        return self._b.get_cpu_count()

    def get_mem_size_gb(self) -> float:
        """Memory in GiB."""
        return self._b.get_mem_size_gb()

    def get_parallel_threads(self, cloud_str: str | None = None) -> int:
        """``max(4, cpu_count - 1)``, times 4 for Kubernetes."""
        return _args.get_parallel_threads(self._b, cloud_str)

    def get_max_workers_for_file_mounts(
        self, common_file_mounts: dict[str, str], cloud_str: str | None = None
    ) -> int:
        """Worker count for syncing file mounts under the open-file limit."""
        return _args.get_max_workers_for_file_mounts(self._b, common_file_mounts, cloud_str)

    def is_process_alive(self, pid: int) -> bool:
        """Whether a process with this pid exists."""
        return _args.is_process_alive(self._b, pid)


def load(
    path: PathLike | bytes | None = None,
    policy: Policy | None = None,
    *,
    facts: HostFacts | None = None,
) -> Plugin:
    """Loads a component (a path to a ``.wasm``, or its bytes; None: the
    embedded ``skyutils.wasm``) under ``policy`` (default ``Policy()``).
    ``facts`` replaces the host facts (default: ``policy.facts``, else
    ``SETTINGS.facts``).

    Raises ``PluginLoadError`` when it cannot be compiled or linked.
    """
    import wasmtime

    from ._errors import PluginLoadError
    from ._runtime import COMPONENT_PATH, Runtime
    from ._wasm import WasmBackend

    policy = Policy() if policy is None else policy
    if path is None:
        path = COMPONENT_PATH
    wasm: Path | bytes
    if isinstance(path, (bytes, bytearray)):
        wasm, source = bytes(path), "<bytes>"
    else:
        wasm = Path(os.fspath(path))
        source = str(wasm)
    try:
        rt = Runtime(
            wasm,
            metered=policy.fuel is not None,
            capabilities=policy.capabilities,
            facts=policy.facts if facts is None else facts,
            cgroup_root=lambda: policy.cgroup_root,
        )
    except wasmtime.WasmtimeError as e:
        raise PluginLoadError(f"component could not be loaded: {e}") from None
    backend = WasmBackend(rt, policy)
    backend._pure_session()  # instantiate once: links, and warms the text calls
    return Plugin(backend, source)
