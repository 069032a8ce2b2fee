"""The wasm engines and the runtime of one component: engine, compiled
component (through :mod:`._cache`) and a linker with WASIp2 and the
``host-facts`` import (:mod:`._hostfacts`; through wasmtime-py's value
conversion, :mod:`._public`, when :data:`._val.LAYOUT_OK` is false)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wasmtime

from . import _cache, _capi
from ._facts import HostFacts
from ._hostfacts import define_host_facts, fact_functions
from ._policy import CAPABILITIES
from ._session import EPOCH_TICK_S, PKG, VER, Session
from ._val import LAYOUT_OK

if TYPE_CHECKING:
    from ._policy import Policy

#: The packaged component.
COMPONENT_PATH = Path(__file__).with_name("skyutils.wasm")

_engines: dict[bool, wasmtime.Engine] = {}
_engines_lock = threading.Lock()


def engine(metered: bool = False) -> wasmtime.Engine:
    """The process-wide engine (epoch interruption; with fuel metering when
    ``metered``), with its epoch ticker thread. Metered code is slower, so
    only metered plugins use the metered engine."""
    with _engines_lock:
        e = _engines.get(metered)
        if e is None:
            cfg = wasmtime.Config()
            cfg.epoch_interruption = True
            cfg.cranelift_opt_level = "speed"
            if metered:
                cfg.consume_fuel = True
            e = _engines[metered] = wasmtime.Engine(cfg)
            _start_ticker(e)
        return e


def _start_ticker(engine: wasmtime.Engine) -> None:
    def tick() -> None:
        stop = threading.Event()
        while not stop.wait(EPOCH_TICK_S):
            engine.increment_epoch()

    threading.Thread(target=tick, name="skyutils-epoch", daemon=True).start()


class Runtime:
    """Engine, compiled component and a linker whose ``host-facts`` import is
    gated by ``capabilities``."""

    def __init__(
        self,
        wasm: Path | bytes = COMPONENT_PATH,
        *,
        metered: bool = False,
        capabilities: frozenset[str] = CAPABILITIES,
        facts: HostFacts | None = None,
        cgroup_root: Callable[[], str | None] | None = None,
    ) -> None:
        self.metered = metered
        self.engine = engine(metered)
        packaged = isinstance(wasm, Path) and wasm == COMPONENT_PATH
        digest = _cache.packaged_digest(COMPONENT_PATH) if packaged else None
        if isinstance(wasm, Path):
            wasm = wasm.read_bytes()
        self.component_sha256 = digest or _cache.sha256_hex(wasm)
        self.cache = _cache.ComponentCache(self.component_sha256, metered)
        self.component = self.cache.load(self.engine, wasm)
        #: What happened to the compiled component (for ``backend_info``).
        self.cache_note = self.cache.note
        #: Where this component's export type descriptions are cached.
        self.types_path = self.cache.types_path
        #: Export type descriptions (``iface#name`` -> [params, result]).
        self.types: dict[str, Any] = self.cache.load_types()
        self._types_lock = threading.Lock()
        self.linker = _capi.Linker(self.engine)
        self.linker.add_wasip2()
        root = self.linker.root()
        try:
            hf = root.add_instance(f"{PKG}/host-facts@{VER}")
            try:
                if LAYOUT_OK:
                    define_host_facts(hf, capabilities, facts, cgroup_root)
                else:
                    from ._public import define_host_facts as define_public

                    define_public(hf, fact_functions(capabilities, facts, cgroup_root))
            finally:
                hf.close()
        finally:
            root.close()

    def func_type(self, key: str, func: Any, store: wasmtime.Store) -> Any:
        """``[params, result]`` of export ``key``: from the cache, else
        described once (importing wasmtime-py's type reflection) and cached."""
        ty = self.types.get(key)
        if isinstance(ty, list) and len(ty) == 2 and isinstance(ty[0], list):
            return ty
        ty = list(_capi.describe_func(func, store))
        with self._types_lock:
            self.types[key] = ty
            self.cache.store_types(self.types)
        return ty

    def session(
        self,
        preopens: list[tuple[bytes, str]],
        env: dict[str, str],
        limits: Policy,
    ) -> Session:
        """A new sandbox instance with exactly these read-only grants."""
        return Session(self, preopens, env, limits)
