"""Process-wide settings shared by both backends: where host facts, the
environment and the cgroup tree come from, and the sandbox limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ._facts import HostFacts, NativeFacts

ENV_VARS = (
    "SKYPILOT_POD_CPU_CORE_LIMIT",
    "SKYPILOT_POD_MEMORY_GB_LIMIT",
    "SKYPILOT_POD_MEMORY_BYTES_LIMIT",
)
ENV_PREFIX = "SKYPILOT_POD_"
_ENV_PREFIX_BYTES = os.fsencode(ENV_PREFIX)


@dataclass
class Settings:
    """What calls see. Tests and embedders change it with :func:`configure`."""

    facts: HostFacts = field(default_factory=NativeFacts)
    #: Environment source; None means ``os.environ`` (read at each call).
    env: Optional[Mapping[str, str]] = None
    #: Host directory seen as ``/sys/fs/cgroup``; None hides cgroups.
    cgroup_root: Optional[str] = "/sys/fs/cgroup"
    #: Wall-clock limit per sandboxed call, in seconds.
    deadline_s: float = 30.0
    #: Linear-memory cap per sandbox instance, in bytes.
    memory_limit: int = 512 << 20

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
    ``deadline_s``, ``memory_limit``) and returns it."""
    for key, value in changes.items():
        if not hasattr(SETTINGS, key):
            raise TypeError(f"unknown setting {key!r}")
        setattr(SETTINGS, key, value)
    return SETTINGS
