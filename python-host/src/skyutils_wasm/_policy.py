"""The one policy type (mirrors the Rust host's ``policy.rs``, with its field
names): what a call may touch (directories, environment, host capabilities,
the cgroup tree) and its per-call limits.

The module functions run under :data:`._config.SETTINGS`, a
:meth:`Policy.drop_in` (like Rust's ``Policy::default()``: no limit upstream
lacks); a plugin runs under a ``Policy()`` (like ``Policy::plugin()``:
bounded). A plain class with ``__slots__``: ``dataclasses`` costs ~10 ms of
import time.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._facts import HostFacts

#: Every host capability behind the ``host-facts`` import.
CAPABILITIES: frozenset[str] = frozenset({"cpu", "memory", "file-limits", "processes", "network"})
#: The most linear memory a wasm32 guest can have (65,536 pages of 64 KiB).
WASM32_MAX_MEMORY = 1 << 32
#: The variables SkyPilot's functions read start with this.
ENV_PREFIX = "SKYPILOT_POD_"
_ENV_PREFIX_BYTES = os.fsencode(ENV_PREFIX)
_POD_ONLY = (ENV_PREFIX + "*",)
#: The ``SKYPILOT_POD_*`` variable ``get_cpu_count`` reads.
CPU_VARS = ("SKYPILOT_POD_CPU_CORE_LIMIT",)
#: The ``SKYPILOT_POD_*`` variables ``get_mem_size_gb`` reads.
MEMORY_VARS = ("SKYPILOT_POD_MEMORY_GB_LIMIT", "SKYPILOT_POD_MEMORY_BYTES_LIMIT")
#: The ``SKYPILOT_POD_*`` variables the packaged component reads.
POD_VARS = CPU_VARS + MEMORY_VARS

#: Deprecated names of fields: ``old -> new``.
RENAMED = {"deadline_s": "deadline", "memory": "memory_limit", "env": "env_override"}
_FIELDS = (
    "allow_dirs",
    "env_allow",
    "capabilities",
    "deadline",
    "fuel",
    "memory_limit",
    "max_output",
    "cgroup_root",
    "env_override",
    "facts",
)


def renamed(changes: dict[str, Any], owner: str) -> dict[str, Any]:
    """``changes`` with deprecated field names replaced (one
    ``DeprecationWarning`` each)."""
    out = {}
    for key, value in changes.items():
        new = RENAMED.get(key)
        if new is not None:
            warnings.warn(f"{owner}({key}=) is deprecated: use {new}=", DeprecationWarning, 3)
            key = new
        out[key] = value
    return out


class Policy:
    """The sandbox policy of a :class:`~skyutils_wasm.Plugin`, and (as
    :data:`~skyutils_wasm.SETTINGS`) of the module functions.

    A plugin is a component you may not have built, so ``Policy()`` is
    bounded (30 s, 512 MiB of memory, 64 MiB of output per call), unlike
    :meth:`drop_in`, which has no limit upstream lacks (see
    :func:`~skyutils_wasm.configure`). ``deadline=None`` and
    ``max_output=None`` lift those bounds. Immutable; ``memory=`` is a
    deprecated alias of ``memory_limit=``."""

    __slots__ = _FIELDS

    #: None: per-call read-only grants of exactly the directory a path needs
    #: (like the default backend). A tuple: only these directories
    #: (read-only); a path resolving outside them (symlinks included) raises
    #: ``CapabilityDeniedError``.
    allow_dirs: tuple[str, ...] | None
    #: Environment variables the guest may see: exact names, or prefixes
    #: ending in ``*``.
    env_allow: tuple[str, ...]
    #: Granted host capabilities; a denied one makes the host import return
    #: ``err("capability '<name>' is not granted by the host policy")``.
    capabilities: frozenset[str]
    #: Wall-clock limit per call, in seconds (epoch interruption); None: none.
    deadline: float | None
    #: Fuel budget per call (roughly wasm instructions); None: unmetered.
    fuel: int | None
    #: Linear-memory cap per instance, in bytes (at most 4 GiB apply: wasm32).
    memory_limit: int
    #: Largest result (strings and byte lists, summed) a call may return;
    #: None: no cap.
    max_output: int | None
    #: Host directory pre-opened read-only at ``/sys/fs/cgroup``; None hides it.
    cgroup_root: str | None
    #: When set, the guest's environment is these variables (still filtered
    #: by ``env_allow``) instead of ``os.environ`` (read at each call).
    env_override: Mapping[str, str] | None
    #: Source of host facts; None: the module functions' (``SETTINGS.facts``).
    facts: HostFacts | None

    def __init__(
        self,
        allow_dirs: Sequence[str] | None = None,
        env_allow: Sequence[str] = _POD_ONLY,
        capabilities: frozenset[str] = CAPABILITIES,
        deadline: float | None = 30.0,
        fuel: int | None = None,
        memory_limit: int | None = 512 << 20,
        max_output: int | None = 64 << 20,
        cgroup_root: str | None = "/sys/fs/cgroup",
        env_override: Mapping[str, str] | None = None,
        facts: HostFacts | None = None,
        **deprecated: Any,
    ) -> None:
        values = {
            "allow_dirs": allow_dirs,
            "env_allow": env_allow,
            "capabilities": capabilities,
            "deadline": deadline,
            "fuel": fuel,
            "memory_limit": memory_limit,
            "max_output": max_output,
            "cgroup_root": cgroup_root,
            "env_override": env_override,
            "facts": facts,
        }
        for key, value in renamed(deprecated, "Policy").items():
            if key not in values:
                raise TypeError(f"Policy() got an unexpected keyword argument {key!r}")
            values[key] = value
        self._set(values)

    @classmethod
    def drop_in(cls, **changes: Any) -> Policy:
        """The module functions' policy, with ``changes``: like upstream, no
        deadline, no output cap and memory up to the wasm32 maximum (the
        Rust host's ``Policy::default()``)."""
        values: dict[str, Any] = {
            "deadline": None,
            "memory_limit": WASM32_MAX_MEMORY,
            "max_output": None,
        }
        values.update(renamed(changes, "Policy.drop_in"))
        return cls(**values)

    def _set(self, values: dict[str, Any]) -> None:
        """Validates and stores ``values`` (every field)."""
        env_allow = values["env_allow"]
        if isinstance(env_allow, str):
            raise TypeError("env_allow must be a sequence of names, not a str")
        allow_dirs = values["allow_dirs"]
        if allow_dirs is not None:
            if isinstance(allow_dirs, str):
                raise TypeError("allow_dirs must be a sequence of directories, not a str")
            allow_dirs = tuple(os.fspath(d) for d in allow_dirs)
        caps = frozenset(values["capabilities"])
        unknown = caps - CAPABILITIES
        if unknown:
            raise ValueError(
                f"unknown capabilities {sorted(unknown)} (known: {sorted(CAPABILITIES)})"
            )
        deadline, fuel = values["deadline"], values["fuel"]
        if values["memory_limit"] is None:  # no cap of one's own: wasm32's
            values = dict(values, memory_limit=WASM32_MAX_MEMORY)
        memory, max_output = values["memory_limit"], values["max_output"]
        if not isinstance(memory, int) or isinstance(memory, bool):
            raise TypeError(f"memory_limit must be an int (bytes), not {type(memory).__name__}")
        if deadline is not None and not deadline > 0:
            raise ValueError("deadline must be positive")
        if fuel is not None and fuel < 0:
            raise ValueError("fuel must be non-negative")
        if memory <= 0 or (max_output is not None and max_output < 0):
            raise ValueError("memory must be positive and max_output non-negative")
        values = dict(values, env_allow=tuple(env_allow), allow_dirs=allow_dirs, capabilities=caps)
        for key in _FIELDS:
            object.__setattr__(self, key, values[key])

    def _update(self, changes: dict[str, Any]) -> None:
        """Changes fields in place (only :func:`._config.configure` does, on
        ``SETTINGS``)."""
        values = {k: getattr(self, k) for k in _FIELDS}
        values.update(changes)
        self._set(values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} (a Policy is immutable)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} (a Policy is immutable)")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Policy)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Policy(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIELDS) + ")"

    # -- deprecated names -----------------------------------------------------
    @property
    def memory(self) -> int:
        """Deprecated: :attr:`memory_limit`."""
        warnings.warn("Policy.memory is deprecated: use memory_limit", DeprecationWarning, 2)
        return self.memory_limit

    @property
    def deadline_s(self) -> float | None:
        """Deprecated: :attr:`deadline`."""
        warnings.warn("Policy.deadline_s is deprecated: use deadline", DeprecationWarning, 2)
        return self.deadline

    @property
    def env(self) -> Mapping[str, str] | None:
        """Deprecated: :attr:`env_override`."""
        warnings.warn("Policy.env is deprecated: use env_override", DeprecationWarning, 2)
        return self.env_override

    # -- what it allows -------------------------------------------------------
    def env_allowed(self, name: str) -> bool:
        """Whether the environment variable ``name`` may reach the guest."""
        for rule in self.env_allow:
            if rule.endswith("*"):
                if name.startswith(rule[:-1]):
                    return True
            elif name == rule:
                return True
        return False

    def guest_env(self) -> dict[str, str]:
        """The environment the guest sees: ``env_override`` or ``os.environ``
        (read now), filtered by ``env_allow``."""
        source = self.env_override
        if source is not None:
            return {k: v for k, v in source.items() if self.env_allowed(k)}
        raw = getattr(os.environ, "_data", None)
        if raw is None or self.env_allow != _POD_ONLY:
            return {k: v for k, v in os.environ.items() if self.env_allowed(k)}
        # CPython keeps os.environ's variables encoded in ``_data``: filtering
        # those skips decoding every name (~1 µs per variable) on each call.
        return {
            os.fsdecode(k): os.fsdecode(v)
            for k, v in raw.items()
            if k.startswith(_ENV_PREFIX_BYTES)
        }

    def component_env(self, names: tuple[str, ...] = POD_VARS) -> dict[str, str]:
        """:meth:`guest_env` restricted to ``names`` (some of :data:`POD_VARS`,
        the variables the packaged component reads): the same answers, from a
        lookup each instead of a scan of the whole environment (which a
        Kubernetes pod's service variables make long)."""
        if self.env_override is None and self.env_allow == _POD_ONLY:
            env = os.environ
            return {k: v for k in names if (v := env.get(k)) is not None}
        return {k: v for k, v in self.guest_env().items() if k in names}

    def allowed_roots(self) -> tuple[str, ...] | None:
        """The allowed directories, resolved; None in per-call mode."""
        if self.allow_dirs is None:
            return None
        return tuple(os.path.realpath(d) for d in self.allow_dirs)
