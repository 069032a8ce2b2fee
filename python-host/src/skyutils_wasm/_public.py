"""Value conversion through wasmtime-py's own code: the wasm backend's
fallback when :mod:`._val`'s mirror of the value layout differs from this
wasmtime-py's (or is forced off, see :data:`._val.LAYOUT_OK`).

Nothing here reads or writes :class:`._val.Val`. Export calls take the
steps of wasmtime-py's public :class:`wasmtime.component.Func` call, which
converts values with wasmtime-py's generated declarations of the C API (and
re-reads the function type at every call: slower than :mod:`._abi`, by
design), and free the result it leaves behind (see :class:`PublicFunc`).
:class:`PublicFunc` turns the package's neutral values (results
``(True, ok)`` / ``(False, err)``, variants ``(tag, payload)``, records
dicts, options None or the value, ``list<u8>`` bytes, resources) into
wasmtime-py's (:class:`~wasmtime.component.Variant`,
:class:`~wasmtime.component.Record`, untagged payloads) and back, by the
type description (:mod:`._capi`), so callers see what
:class:`._abi.FastFunc` returns, including :class:`._abi.OutputLimit`
(checked on the lifted value: the limit still holds, but a too-large result
is converted before it is refused).

wasmtime-py passes a variant, option or result *untagged* (the payload
alone, ``None`` for a case without one) when the Python classes of its
cases do not overlap, else as a ``Variant``; :func:`tagged` follows that
rule (the tests compare it with wasmtime-py's for every type of the
component). A value wasmtime-py would read back as another case, or a
result no case fits unambiguously, raises :class:`TypeError`: never a
wrong value.

The ``host-facts`` functions (:func:`._hostfacts.fact_functions`) are
defined with a callback of wasmtime-py's declared C signature, like its
``LinkerInstance.add_func`` (an exception is kept for the calling thread):
arguments are read with wasmtime-py's ``convert_from_c``, the ``ok`` or
``err`` payload is lowered with its ``convert_to_c`` and the ``result``
around it is written into wasmtime-py's declared ``wasmtime_component_val_t``.
(``add_func`` itself cannot return ``err`` for ``result<option<u32>,
string>``: the untagged ``none`` case's class is ``object``, so every error
text is taken for an ``ok`` payload and refused.)
"""

from __future__ import annotations

import ctypes
from ctypes import byref
from typing import Any

from wasmtime import StoreContext, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import Func, Record, ResourceAny, ResourceHost, Variant
from wasmtime.component._types import FuncType

from . import _capi
from ._abi import OutputLimit
from ._capi import TypeDesc
from ._hostfacts import SIGNATURES, Denied, Fact

_INTS = {
    "s8": (-(1 << 7), (1 << 7) - 1),
    "u8": (0, (1 << 8) - 1),
    "s16": (-(1 << 15), (1 << 15) - 1),
    "u16": (0, (1 << 16) - 1),
    "s32": (-(1 << 31), (1 << 31) - 1),
    "u32": (0, (1 << 32) - 1),
    "s64": (-(1 << 63), (1 << 63) - 1),
    "u64": (0, (1 << 64) - 1),
}
_CLASSES: dict[str, set[type]] = {
    "bool": {bool},
    **{k: {int} for k in _INTS},
    "f32": {float},
    "f64": {float},
    "char": {str},
    "string": {str},
    "enum": {str},
    "tuple": {tuple},
    "record": {Record},
    "flags": {set},
    "own": {ResourceAny, ResourceHost},
    "borrow": {ResourceAny, ResourceHost},
}
_VARIANTS = ("variant", "option", "result")

Case = tuple[str, TypeDesc]


def cases(ty: TypeDesc) -> list[Case]:
    """The cases of a variant, option or result type, as wasmtime-py lists
    them (``none``/``some``, ``ok``/``err``)."""
    if ty[0] == "option":
        return [("none", None), ("some", ty[1])]
    if ty[0] == "result":
        return [("ok", ty[1]), ("err", ty[2])]
    return [(n, t) for n, t in ty[1]]


def _case_classes(t: TypeDesc) -> set[type]:
    return {object} if t is None else classes(t)


def classes(ty: TypeDesc) -> set[type]:
    """The Python classes wasmtime-py uses for values of type ``ty`` (its
    ``ValType.add_classes``)."""
    kind = ty[0]
    if kind == "list":
        return {bytes} if ty[1] == ["u8"] else {list}
    if kind in _VARIANTS:
        cs = cases(ty)
        if tagged(cs):
            return {Variant}
        out: set[type] = set()
        for _, t in cs:
            out |= _case_classes(t)
        return out
    return _CLASSES[kind]


def tagged(cs: list[Case]) -> bool:
    """Whether wasmtime-py passes a value with these cases as a ``Variant``
    (two cases' classes overlap) rather than as its payload alone."""
    seen: set[type] = set()
    for _, t in cs:
        case = _case_classes(t)
        if case & seen:
            return True
        seen |= case
    return False


def _wasmtime_pick(cs: list[Case], v: Any) -> str | None:
    """The case wasmtime-py lowers an untagged value ``v`` as (the first
    whose classes it is an instance of; a case without payload for None)."""
    for name, t in cs:
        if t is None:
            if v is None:
                return name
        elif isinstance(v, tuple(classes(t))):
            return name
    return None


def _fits(t: TypeDesc, v: Any) -> bool:
    """Whether wasmtime-py could have lifted ``v`` as a payload of type
    ``t`` (None: no payload); ``object`` stands for a nested ``None``."""
    if t is None:
        return v is None
    cls = classes(t)
    if v is None:
        return object in cls
    if isinstance(v, bool) and bool not in cls:
        return False
    return isinstance(v, tuple(cls - {object}))


def _tag_of(ty: TypeDesc, cs: list[Case], v: Any) -> tuple[str, TypeDesc, Any]:
    """The case, its type and its payload of a variant-like value as
    wasmtime-py returned it."""
    if tagged(cs):
        if isinstance(v, Variant):
            for name, t in cs:
                if name == v.tag:
                    return name, t, v.payload
        raise TypeError(f"wasmtime-py returned {v!r} for {ty!r}")
    found = [(name, t) for name, t in cs if _fits(t, v)]
    if len(found) != 1:
        raise TypeError(f"wasmtime-py returned {v!r}, which fits {len(found)} cases of {ty!r}")
    return found[0][0], found[0][1], v


def lift(ty: TypeDesc, v: Any) -> Any:
    """A value wasmtime-py returned for type ``ty``, in :mod:`._abi`'s shapes."""
    kind = ty[0]
    if kind == "list":
        if ty[1] == ["u8"]:
            return bytes(v)
        elem = ty[1]
        if elem[0] in ("string", "enum", "bool", "f64", "f32") or elem[0] in _INTS:
            return list(v)
        return [lift(elem, e) for e in v]
    if kind == "tuple":
        return tuple(lift(t, e) for t, e in zip(ty[1], v, strict=True))
    if kind == "record":
        return {n: lift(t, getattr(v, n)) for n, t in ty[1]}
    if kind in _VARIANTS:
        name, t, payload = _tag_of(ty, cases(ty), v)
        inner = None if t is None else lift(t, payload)
        if kind == "option":
            return inner if name == "some" else None
        if kind == "result":
            return (name == "ok", inner)
        return (name, inner)
    return v


def lower(ty: TypeDesc, v: Any) -> Any:
    """A value in :mod:`._abi`'s shapes (records also as a sequence of their
    fields' values) as wasmtime-py takes it for type ``ty``."""
    kind = ty[0]
    if kind in _INTS:
        lo, hi = _INTS[kind]
        if not lo <= v <= hi:
            raise OverflowError(f"{v} out of range for {kind}")
        return int(v)
    if kind == "bool":
        return bool(v)
    if kind in ("f64", "f32"):
        return float(v)
    if kind == "list":
        if ty[1] == ["u8"]:
            return bytes(v)
        return [lower(ty[1], e) for e in v]
    if kind == "tuple":
        return tuple(lower(t, e) for t, e in zip(ty[1], v, strict=True))
    if kind == "record":
        rec = Record()
        items = [v[n] for n, _ in ty[1]] if isinstance(v, dict) else v
        for (n, t), item in zip(ty[1], items, strict=True):
            setattr(rec, n, lower(t, item))
        return rec
    if kind in _VARIANTS:
        if kind == "option":
            name, payload = ("none", None) if v is None else ("some", v)
        elif kind == "result":
            name, payload = ("ok" if v[0] else "err"), v[1]
        else:
            name, payload = v
        cs = cases(ty)
        t = dict(cs)[name]
        inner = None if t is None else lower(t, payload)
        if tagged(cs):
            return Variant(name, inner)
        if _wasmtime_pick(cs, inner) != name:
            raise TypeError(f"wasmtime-py cannot pass case {name!r} of {ty!r}")
        return inner
    return v


def output_size(ty: TypeDesc, v: Any) -> int:
    """Bytes of strings and byte lists in a lifted value (each list element
    counts one more), as :func:`._abi.output_size` counts them."""
    kind = ty[0]
    if kind == "string":
        return len(v.encode("utf-8", "surrogatepass"))
    if kind == "list":
        if ty[1] == ["u8"]:
            return len(v)
        return sum(output_size(ty[1], e) + 1 for e in v)
    if kind == "tuple":
        return sum(output_size(t, e) for t, e in zip(ty[1], v, strict=True))
    if kind == "record":
        return sum(output_size(t, v[n]) for n, t in ty[1])
    if kind == "option":
        return 0 if v is None else output_size(ty[1], v)
    if kind == "result":
        t = ty[1] if v[0] else ty[2]
        return 0 if t is None or v[1] is None else output_size(t, v[1])
    if kind == "variant":
        t = dict(cases(ty))[v[0]]
        return 0 if t is None or v[1] is None else output_size(t, v[1])
    return 0


def _has_resources(ty: TypeDesc) -> bool:
    """Whether values of type ``ty`` may hold a resource."""
    if ty is None:
        return False
    if ty[0] in ("own", "borrow"):
        return True
    return any(_has_resources(t) for t in _children(ty))


def _children(ty: TypeDesc) -> list[TypeDesc]:
    kind = ty[0]
    if kind in ("list", "option"):
        return [ty[1]]
    if kind == "result":
        return [ty[1], ty[2]]
    if kind in ("tuple",):
        return list(ty[1])
    if kind in ("record", "variant"):
        return [t for _, t in ty[1]]
    return []


class PublicFunc:
    """One export called with wasmtime-py's value conversion (same ``call``
    as :class:`._abi.FastFunc`).

    The call is ``wasmtime.component.Func.__call__``'s own steps (the
    function type read from the store, arguments converted with wasmtime-py's
    ``convert_to_c``, the result with its ``convert_from_c``) plus what that
    method leaves out in wasmtime-py 50: the result value is freed after
    conversion (it leaked ~50 bytes a call), and an exception a host function
    raised comes back on this thread (:func:`._capi.raise_last_exception`),
    not through wasmtime-py's one global. A result that may hold a resource
    is not freed: its conversion moves the resource out, and freeing what is
    left is not documented as safe."""

    __slots__ = ("_func", "_store", "_params", "_result", "_free_result")

    def __init__(self, raw: Any, store: Any, params: list[TypeDesc], result: TypeDesc) -> None:
        """``raw`` is the export's ``wasmtime_component_func_t`` in
        ``store``; ``params`` and ``result`` describe its type."""
        self._func = Func._from_raw(raw)
        self._store = store
        self._params = params
        self._result = result
        self._free_result = not _has_resources(result)

    def call(self, ctx: int, args: Any, max_output: int | None) -> Any:
        """Calls the export (``ctx`` is unused: wasmtime-py takes the
        store); a result over ``max_output`` bytes raises
        :class:`._abi.OutputLimit`."""
        values = [lower(t, a) for t, a in zip(self._params, args, strict=True)]
        store = self._store
        fty = self._func.type(store)
        param_tys = fty.params
        result_ty = fty.result
        if len(values) != len(param_tys):
            raise TypeError(f"{len(values)} arguments for {len(param_tys)} parameters")
        params = (ffi.wasmtime_component_val_t * max(len(values), 1))()
        result = ffi.wasmtime_component_val_t()
        lowered = 0
        try:
            for (_name, ty), value in zip(param_tys, values, strict=True):
                ty.convert_to_c(store, value, ctypes.pointer(params[lowered]))
                lowered += 1
            err = ffi.wasmtime_component_func_call(
                byref(self._func._func),
                store._context(),
                params,
                lowered,
                None if result_ty is None else byref(result),
                0 if result_ty is None else 1,
            )
            if err:
                error = WasmtimeError._from_ptr(err)
                _capi.raise_last_exception()
                raise error
            if result_ty is None or self._result is None:
                return None
            out = lift(self._result, result_ty.convert_from_c(result))
        finally:
            for i in range(lowered):
                ffi.wasmtime_component_val_delete(byref(params[i]))
            if self._free_result:
                ffi.wasmtime_component_val_delete(byref(result))
        if max_output is not None:
            size = output_size(self._result, out)
            if size > max_output:
                raise OutputLimit(size, max_output)
        return out


# -- host functions -----------------------------------------------------------

_FUNCS: dict[int, tuple[Fact, TypeDesc]] = {}
_ids = iter(range(1, 1 << 62))


def _write_result(store: Any, result_ty: Any, ok_desc: TypeDesc, value: Any, out: Any) -> None:
    """Writes ``(is_ok, payload)`` as a ``result<T, string>`` at ``out``
    (wasmtime-py's declared value), the payload lowered by wasmtime-py."""
    is_ok, payload = value
    cell_ty = result_ty.ok if is_ok else result_ty.err
    cell = None
    if cell_ty is not None:
        raw = ffi.wasmtime_component_val_t()
        cell_ty.convert_to_c(
            store, lower(ok_desc if is_ok else ["string"], payload), ctypes.pointer(raw)
        )
        cell = ffi.wasmtime_component_val_new(byref(raw))
    res = out.contents
    res.kind = ffi.WASMTIME_COMPONENT_RESULT
    res.of.result.is_ok = bool(is_ok)
    res.of.result.val = cell


@ffi.wasmtime_component_func_callback_t  # type: ignore[untyped-decorator]
def _call(idx: Any, context: Any, ty_raw: Any, args: Any, nargs: Any, res: Any, nres: Any) -> Any:
    def run(store: Any) -> None:
        fact, ok_desc = _FUNCS[idx or 0]
        with FuncType._from_ptr(ty_raw, owner=store) as fty:
            params = fty.params
            if len(params) != nargs or nres != 1:
                raise TypeError("host function called with an unexpected signature")
            values = [t.convert_from_c(args[i]) for i, (_, t) in enumerate(params)]
            try:
                result = (True, fact(*values))
            except Denied as e:
                result = (False, str(e))
            _write_result(store, fty.result, ok_desc, result, res)

    # wasmtime-py's catch_exceptions, with the exception kept for this
    # thread's caller (:func:`._capi.error_for`) rather than in one global.
    store = StoreContext(context)
    try:
        run(store)
    except BaseException as e:  # noqa: BLE001 - carried to the caller (Ctrl-C too)
        return _capi.error_for(e)
    finally:
        store._invalidate()
    return 0


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _finalize(idx: Any) -> None:
    _FUNCS.pop(idx or 0, None)


def define_host_facts(hf: _capi.LinkerInstance, functions: dict[str, Fact]) -> None:
    """Defines ``functions`` (:func:`._hostfacts.fact_functions`) in linker
    instance ``hf``, converting through wasmtime-py."""
    for name, fact in functions.items():
        idx = next(_ids)
        _FUNCS[idx] = (fact, SIGNATURES[name][1])
        b = name.encode()
        _capi._check(
            ffi.wasmtime_component_linker_instance_add_func(
                hf.ptr(), ctypes.create_string_buffer(b), len(b), _call, idx, _finalize
            )
        )
