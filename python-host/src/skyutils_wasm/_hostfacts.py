"""The ``host-facts`` import, defined straight on the C API.

wasmtime-py's generic ``add_func`` re-reads the import's type on every call
(~25 us); here each host function reads its arguments and writes its
``result<T, string>`` directly, in the value layout of :mod:`._val`. A
capability the policy does not grant makes its functions return
``err("capability '<name>' is not granted by the host policy")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _capi, _cgroup, _config
from ._facts import HostFacts
from ._policy import CAPABILITIES
from ._val import (
    BOOL,
    FINALIZER,
    HOST_FUNC,
    OPTION,
    RESULT,
    U32,
    U64,
    Val,
    boxed,
    read_name,
    set_record,
    set_string,
    set_variant,
)

#: Writes a Python value into a (C-owned) value slot.
Setter = Callable[[Val, Any], None]
#: Reads a host function's arguments; returns ``(value, error)``.
Reader = Callable[[Any], tuple[Any, str | None]]


def _set_bool(v: Val, value: Any) -> None:
    v.kind = BOOL
    v.of.boolean = bool(value)


def _set_u64(v: Val, value: Any) -> None:
    v.kind = U64
    v.of.u64 = int(value)


def _set_option_u32(v: Val, value: Any) -> None:
    v.kind = OPTION
    if value is None:
        v.of.option = None
        return
    num = Val()
    num.kind = U32
    num.of.u32 = int(value)
    v.of.option = boxed(num)


def _set_limit(v: Val, value: Any) -> None:
    """``limit``: ``finite(u64)``, or ``unlimited`` for None."""
    if value is None:
        set_variant(v, "unlimited", None)
        return
    num = Val()
    _set_u64(num, value)
    set_variant(v, "finite", num)


def _set_nofile(v: Val, value: Any) -> None:
    """``nofile``: a record of two limits, from ``(soft, hard)``."""
    for slot, limit in zip(set_record(v, ("soft", "hard")), value, strict=True):
        _set_limit(slot, limit)


def _set_cgroup_read(v: Val, value: Any) -> None:
    """``cgroup-read`` from ``(case, text or None)``."""
    case, text = value
    if text is None:
        set_variant(v, case, None)
        return
    payload = Val()
    set_string(payload, text)
    set_variant(v, case, payload)


def _write_result(out: Val, value: Any, error: str | None, set_ok: Setter) -> None:
    """Writes ``result<T, string>`` into ``out`` (C-owned values: wasmtime
    frees them after lowering)."""
    out.kind = RESULT
    inner = Val()
    if error is not None:
        set_string(inner, error)
        out.of.result.is_ok = False
    else:
        set_ok(inner, value)
        out.of.result.is_ok = True
    out.of.result.val = boxed(inner)


_RAW_FUNCS: dict[int, tuple[Reader, Setter]] = {}
_raw_ids = iter(range(1, 1 << 62))


@HOST_FUNC  # type: ignore[untyped-decorator]
def _raw_impl(idx: Any, context: Any, ty: Any, args: Any, nargs: Any, res: Any, nres: Any) -> Any:
    try:
        fn, set_ok = _RAW_FUNCS[idx or 0]
        value, error = fn(args)
        _write_result(res[0], value, error, set_ok)
    except Exception as e:  # noqa: BLE001 - carried to the caller
        return _capi.error_for(e)
    return 0


@FINALIZER  # type: ignore[untyped-decorator]
def _raw_finalize(idx: Any) -> None:
    _RAW_FUNCS.pop(idx or 0, None)


def _add_raw_func(hf: _capi.LinkerInstance, name: str, fn: Reader, set_ok: Setter) -> None:
    """Defines ``name``: ``fn(args)`` returns ``(value, error)``; ``set_ok``
    writes the value of the ``ok`` case."""
    idx = next(_raw_ids)
    _RAW_FUNCS[idx] = (fn, set_ok)
    hf.add_func(name, _raw_impl, idx, _raw_finalize)


def _denied(name: str) -> str:
    return f"capability '{name}' is not granted by the host policy"


def define_host_facts(
    hf: _capi.LinkerInstance,
    capabilities: frozenset[str] = CAPABILITIES,
    source: HostFacts | None = None,
    cgroup_root: Callable[[], str | None] | None = None,
) -> None:
    """Defines the ``host-facts`` functions in linker instance ``hf``:
    facts from ``source`` (None: ``SETTINGS.facts`` at each call) and cgroup
    files under ``cgroup_root()`` (None: ``SETTINGS.cgroup_root`` at each
    call), gated by ``capabilities``."""

    def facts() -> Any:
        return _config.facts() if source is None else source

    def fact(cap: str, read: Callable[[Any], Any]) -> Reader:
        """``read(args)`` as ``(value, None)``, or ``(None, <denied>)``."""
        if cap not in capabilities:
            return lambda _args: (None, _denied(cap))
        return lambda args: (read(args), None)

    for name in ("logical-cpu-count", "affinity-cpu-count", "os-cpu-count"):
        method = name.replace("-", "_")
        read = lambda _a, m=method: getattr(facts(), m)()  # noqa: E731
        _add_raw_func(hf, name, fact("cpu", read), _set_option_u32)
    memory = fact("memory", lambda _a: facts().memory_total_bytes())
    _add_raw_func(hf, "memory-total-bytes", memory, _set_u64)
    nofile = fact("file-limits", lambda _a: facts().nofile_limit())
    _add_raw_func(hf, "nofile-limit", nofile, _set_nofile)
    pid = fact("processes", lambda a: facts().pid_exists(a[0].of.u32))
    _add_raw_func(hf, "pid-exists", pid, _set_bool)
    port = fact("network", lambda a: facts().tcp4_port_bindable(a[0].of.u16))
    _add_raw_func(hf, "tcp4-port-bindable", port, _set_bool)

    def root() -> str | None:
        return _config.SETTINGS.cgroup_root if cgroup_root is None else cgroup_root()

    def read_cgroup_file(args: Any) -> tuple[Any, str | None]:
        file = read_name(args[0].of.str)  # an enum case
        kind = file.split("-", 1)[0]  # cpu, memory, or controllers (either)
        caps = ("cpu", "memory") if kind == "controllers" else (kind,)
        if not any(c in capabilities for c in caps):
            return None, _denied(caps[0])
        return _cgroup.read(root(), file), None

    _add_raw_func(hf, "read-cgroup-file", read_cgroup_file, _set_cgroup_read)
