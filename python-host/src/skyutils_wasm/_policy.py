"""What a plugin call may touch (mirrors the Rust host's ``policy.rs``):
directories, environment, host capabilities and per-call limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Optional, Sequence, Tuple

from ._config import CAPABILITIES


@dataclass(frozen=True)
class Policy:
    """The sandbox policy of a :class:`~skyutils_wasm.Plugin`.

    A plugin is a component you may not have built, so its defaults are
    bounded (30 s, 512 MiB of memory, 64 MiB of output per call), unlike
    the module functions, which have no limit upstream lacks (see
    :func:`~skyutils_wasm.configure`). ``deadline=None`` and
    ``max_output=None`` lift those bounds."""

    #: None: per-call read-only grants of exactly the directory a path needs
    #: (like the default backend). A list: only these directories (read-only);
    #: a path resolving outside them (symlinks included) raises
    #: ``CapabilityDeniedError``.
    allow_dirs: Optional[Sequence[str]] = None
    #: Environment variables the guest may see: exact names, or prefixes
    #: ending in ``*``.
    env_allow: Sequence[str] = ("SKYPILOT_POD_*",)
    #: Granted host capabilities; a denied one makes the host import return
    #: ``err("capability '<name>' is not granted by the host policy")``.
    capabilities: FrozenSet[str] = field(default_factory=lambda: CAPABILITIES)
    #: Wall-clock limit per call, in seconds (epoch interruption); None: none.
    deadline: Optional[float] = 30.0
    #: Fuel budget per call (roughly wasm instructions); None: unmetered.
    fuel: Optional[int] = None
    #: Linear-memory cap per instance, in bytes (at most 4 GiB apply: wasm32).
    memory: int = 512 << 20
    #: Largest result (strings and byte lists, summed) a call may return;
    #: None: no cap.
    max_output: Optional[int] = 64 << 20
    #: Host directory pre-opened read-only at ``/sys/fs/cgroup``; None hides it.
    cgroup_root: Optional[str] = "/sys/fs/cgroup"

    def __post_init__(self) -> None:
        if isinstance(self.env_allow, str):
            raise TypeError("env_allow must be a sequence of names, not a str")
        object.__setattr__(self, "env_allow", tuple(self.env_allow))
        if self.allow_dirs is not None:
            if isinstance(self.allow_dirs, str):
                raise TypeError("allow_dirs must be a sequence of directories, not a str")
            object.__setattr__(self, "allow_dirs", tuple(os.fspath(d) for d in self.allow_dirs))
        caps = frozenset(self.capabilities)
        unknown = caps - CAPABILITIES
        if unknown:
            raise ValueError(
                f"unknown capabilities {sorted(unknown)} (known: {sorted(CAPABILITIES)})"
            )
        object.__setattr__(self, "capabilities", caps)
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError("deadline must be positive")
        if self.fuel is not None and self.fuel < 0:
            raise ValueError("fuel must be non-negative")
        if self.memory <= 0 or (self.max_output is not None and self.max_output < 0):
            raise ValueError("memory must be positive and max_output non-negative")

    def env_allowed(self, name: str) -> bool:
        """Whether the environment variable ``name`` may reach the guest."""
        for rule in self.env_allow:
            if rule.endswith("*"):
                if name.startswith(rule[:-1]):
                    return True
            elif name == rule:
                return True
        return False

    def guest_env(self) -> Dict[str, str]:
        """The environment the guest sees (read from ``os.environ`` now)."""
        return {k: v for k, v in os.environ.items() if self.env_allowed(k)}

    def allowed_roots(self) -> Optional[Tuple[str, ...]]:
        """The allowed directories, resolved; None in per-call mode."""
        if self.allow_dirs is None:
            return None
        return tuple(os.path.realpath(d) for d in self.allow_dirs)
