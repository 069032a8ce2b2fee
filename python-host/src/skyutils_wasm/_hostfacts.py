"""The ``host-facts`` import, defined straight on the C API.

wasmtime-py's generic ``add_func`` re-reads the import's type on every call
(~25 us); here each host function reads its arguments at their addresses
and writes its ``result<T, string>`` with writers compiled once from the
type descriptions below (:mod:`._hostval`: one packed buffer, one deep copy
into C-owned memory). A capability the policy does not grant makes its
functions return ``err("capability '<name>' is not granted by the host
policy")``.

That C-API definition uses :mod:`._val`'s layout; when it does not match
this wasmtime-py (:data:`._val.LAYOUT_OK` false), :mod:`._public` defines
the same :func:`fact_functions` with wasmtime-py's conversion, by the ``ok``
types of :data:`SIGNATURES`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from . import _capi, _cgroup, _config
from ._facts import HostFacts
from ._hostval import Writer, result_writers
from ._policy import CAPABILITIES
from ._val import FINALIZER, HOST_FUNC, arg_name, arg_u16, arg_u32

#: A host function in Python terms: its arguments to its ``ok`` value (in
#: :func:`._hostval.compile_pack`'s terms), or :class:`Denied`.
Fact = Callable[..., Any]
#: Reads a host function's arguments from the address of the first.
ArgReader = Callable[[int], tuple[Any, ...]]

_LIMIT = ["variant", [["finite", ["u64"]], ["unlimited", None]]]
_OPTION_U32 = ["option", ["u32"]]

#: Each function's arguments and ``ok`` type, as wit/host.wit declares them
#: (checked against the component's imports by the tests).
SIGNATURES: dict[str, tuple[ArgReader, Any]] = {
    "logical-cpu-count": (lambda _at: (), _OPTION_U32),
    "affinity-cpu-count": (lambda _at: (), _OPTION_U32),
    "os-cpu-count": (lambda _at: (), _OPTION_U32),
    "memory-total-bytes": (lambda _at: (), ["u64"]),
    "nofile-limit": (lambda _at: (), ["record", [["soft", _LIMIT], ["hard", _LIMIT]]]),
    "pid-exists": (lambda at: (arg_u32(at),), ["bool"]),
    "tcp4-port-bindable": (lambda at: (arg_u16(at),), ["bool"]),
    "read-cgroup-limit": (
        lambda at: (arg_name(at),),
        ["record", [["v2", ["bool"]], ["files", ["list", ["option", ["string"]]]]]],
    ),
}


class Denied(Exception):
    """A capability the policy does not grant (the ``err`` text)."""


def _denied(capability: str) -> str:
    return f"capability '{capability}' is not granted by the host policy"


def _limit(value: int | None) -> tuple[str, int | None]:
    return ("unlimited", None) if value is None else ("finite", value)


def fact_functions(
    capabilities: frozenset[str] = CAPABILITIES,
    source: HostFacts | None = None,
    cgroup_root: Callable[[], str | None] | None = None,
) -> dict[str, Fact]:
    """The ``host-facts`` functions in Python terms, by WIT name: facts from
    ``source`` (None: ``SETTINGS.facts`` at each call) and cgroup files under
    ``cgroup_root()`` (None: ``SETTINGS.cgroup_root`` at each call), each
    raising :class:`Denied` unless ``capabilities`` grants it."""

    def facts() -> Any:
        return _config.facts() if source is None else source

    def root() -> str | None:
        return _config.SETTINGS.cgroup_root if cgroup_root is None else cgroup_root()

    def gated(cap: str, fn: Fact) -> Fact:
        if cap in capabilities:
            return fn

        def denied(*_args: Any) -> Any:
            raise Denied(_denied(cap))

        return denied

    def read_cgroup_limit(controller: str) -> Any:
        if controller not in capabilities:  # "cpu" or "memory"
            raise Denied(_denied(controller))
        return _cgroup.read(root(), controller)

    def nofile() -> Any:
        soft, hard = facts().nofile_limit()
        return (_limit(soft), _limit(hard))

    return {
        "logical-cpu-count": gated("cpu", lambda: facts().logical_cpu_count()),
        "affinity-cpu-count": gated("cpu", lambda: facts().affinity_cpu_count()),
        "os-cpu-count": gated("cpu", lambda: facts().os_cpu_count()),
        "memory-total-bytes": gated("memory", lambda: facts().memory_total_bytes()),
        "nofile-limit": gated("file-limits", nofile),
        "pid-exists": gated("processes", lambda pid: facts().pid_exists(pid)),
        "tcp4-port-bindable": gated("network", lambda port: facts().tcp4_port_bindable(port)),
        "read-cgroup-limit": read_cgroup_limit,
    }


_FUNCS: dict[int, tuple[ArgReader, Fact, Writer, Writer]] = {}
_ids = iter(range(1, 1 << 62))


@HOST_FUNC  # type: ignore[untyped-decorator]
def _call(idx: Any, context: Any, ty: Any, args: Any, nargs: Any, res: Any, nres: Any) -> Any:
    try:
        read_args, fact, write_ok, write_err = _FUNCS[idx or 0]
        try:
            value = fact(*read_args(args or 0))
        except Denied as e:
            write_err(str(e), res)
        else:
            try:
                write_ok(value, res)
            except struct.error:
                # Out of range or not a number: said as such, not as the
                # packer's struct.error.
                raise TypeError(
                    f"host fact returned {value!r}, which its WIT type cannot hold"
                ) from None
    except BaseException as e:  # noqa: BLE001 - carried to the caller (Ctrl-C too)
        return _capi.error_for(e)
    return 0


@FINALIZER  # type: ignore[untyped-decorator]
def _finalize(idx: Any) -> None:
    _FUNCS.pop(idx or 0, None)


def define_host_facts(
    hf: _capi.LinkerInstance,
    capabilities: frozenset[str] = CAPABILITIES,
    source: HostFacts | None = None,
    cgroup_root: Callable[[], str | None] | None = None,
) -> None:
    """Defines the ``host-facts`` functions of :func:`fact_functions` in
    linker instance ``hf``."""
    for name, fact in fact_functions(capabilities, source, cgroup_root).items():
        read_args, ok = SIGNATURES[name]
        idx = next(_ids)
        _FUNCS[idx] = (read_args, fact, *result_writers(ok))
        hf.add_func(name, _call, idx, _finalize)
