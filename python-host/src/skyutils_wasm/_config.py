"""The module functions' policy, :data:`SETTINGS` (a :class:`Policy`), and
:func:`configure`, which changes it: where host facts, the environment and
the cgroup tree come from, and the sandbox limits."""

from __future__ import annotations

import warnings
from typing import Any

from ._facts import HostFacts, NativeFacts
from ._policy import Policy, renamed

#: What the module functions see: :meth:`Policy.drop_in` with this
#: machine's host facts. Change it with :func:`configure`.
SETTINGS = Policy.drop_in(facts=NativeFacts())


#: The fields :func:`configure` may change (the rest are fixed for the
#: module functions: every capability, ``SKYPILOT_POD_*``, per-call grants,
#: no fuel).
def facts() -> HostFacts:
    """The module functions' source of host facts."""
    source = SETTINGS.facts
    assert source is not None  # configure() keeps one
    return source


CONFIGURABLE = ("facts", "env_override", "cgroup_root", "deadline", "memory_limit", "max_output")


def configure(**changes: Any) -> Policy:
    """Updates :data:`SETTINGS` (``facts``, None: this machine's;
    ``env_override``, None: ``os.environ``; ``cgroup_root``; ``deadline``;
    ``memory_limit``; ``max_output``) and returns it. ``deadline_s=`` and
    ``env=`` are deprecated aliases of ``deadline=`` and ``env_override=``."""
    changes = renamed(changes, "configure")
    for key in changes:
        if key not in CONFIGURABLE:
            raise TypeError(f"unknown setting {key!r}")
    if "facts" in changes and changes["facts"] is None:
        changes["facts"] = NativeFacts()
    SETTINGS._update(changes)
    return SETTINGS


def Settings(**fields: Any) -> Policy:  # noqa: N802 - the deprecated class name
    """Deprecated: :meth:`Policy.drop_in` (the one policy type)."""
    warnings.warn(
        "skyutils_wasm.Settings is deprecated: use Policy.drop_in()", DeprecationWarning, 2
    )
    if fields.get("facts") is None:
        fields["facts"] = NativeFacts()
    return Policy.drop_in(**fields)
