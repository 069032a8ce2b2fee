"""Process-wide settings shared by both backends: where host facts, the
environment and the cgroup tree come from, and the sandbox limits."""

from __future__ import annotations

import os
from typing import Any, FrozenSet, Mapping, Optional

from ._facts import HostFacts, NativeFacts

ENV_VARS = (
    "SKYPILOT_POD_CPU_CORE_LIMIT",
    "SKYPILOT_POD_MEMORY_GB_LIMIT",
    "SKYPILOT_POD_MEMORY_BYTES_LIMIT",
)
ENV_PREFIX = "SKYPILOT_POD_"

#: Every host capability behind the ``host-facts`` import.
CAPABILITIES: FrozenSet[str] = frozenset({"cpu", "memory", "file-limits", "processes", "network"})
_ENV_PREFIX_BYTES = os.fsencode(ENV_PREFIX)

#: The most linear memory a wasm32 guest can have (65,536 pages of 64 KiB).
WASM32_MAX_MEMORY = 1 << 32


class Settings:
    """What calls see. Tests and embedders change it with :func:`configure`.
    (A plain class: ``dataclasses`` costs ~10 ms of import time.)"""

    def __init__(
        self,
        facts: Optional[HostFacts] = None,
        env: Optional[Mapping[str, str]] = None,
        cgroup_root: Optional[str] = "/sys/fs/cgroup",
        deadline_s: Optional[float] = None,
        memory_limit: int = WASM32_MAX_MEMORY,
        max_output: Optional[int] = None,
    ) -> None:
        #: Source of host facts (default: this machine's).
        self.facts: HostFacts = NativeFacts() if facts is None else facts
        #: Environment source; None means ``os.environ`` (read at each call).
        self.env = env
        #: Host directory seen as ``/sys/fs/cgroup``; None hides cgroups.
        self.cgroup_root = cgroup_root
        #: Wall-clock limit per sandboxed call, in seconds; None (the
        #: default, as upstream): no deadline.
        self.deadline_s = deadline_s
        #: Linear-memory cap per sandbox instance, in bytes; by default the
        #: wasm32 maximum (4 GiB), the most a guest can address anyway.
        self.memory_limit = memory_limit
        #: Largest result (bytes of strings and byte lists) a call may
        #: return; None (the default, as upstream): no cap.
        self.max_output = max_output

    def __repr__(self) -> str:
        fields = ("facts", "env", "cgroup_root", "deadline_s", "memory_limit", "max_output")
        return "Settings(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in fields) + ")"

    def pod_env(self) -> Mapping[str, str]:
        """The ``SKYPILOT_POD_*`` variables calls may see."""
        if self.env is not None:
            return {k: v for k, v in self.env.items() if k.startswith(ENV_PREFIX)}
        raw = getattr(os.environ, "_data", None)
        if raw is None:  # not CPython's os.environ
            return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        # CPython keeps os.environ's variables encoded in ``_data``: filtering
        # those skips decoding every name (~1 µs per variable) on each call.
        return {
            os.fsdecode(k): os.fsdecode(v)
            for k, v in raw.items()
            if k.startswith(_ENV_PREFIX_BYTES)
        }


SETTINGS = Settings()


def configure(**changes: Any) -> Settings:
    """Updates :data:`SETTINGS` (``facts``, ``env``, ``cgroup_root``,
    ``deadline_s``, ``memory_limit``, ``max_output``) and returns it."""
    for key, value in changes.items():
        if not hasattr(SETTINGS, key):
            raise TypeError(f"unknown setting {key!r}")
        setattr(SETTINGS, key, value)
    return SETTINGS
