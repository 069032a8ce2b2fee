"""The WebAssembly backend: one engine and one compiled component per
process (cached on disk, :mod:`._cache`), and sandbox sessions
(:mod:`._session`) reused only where that is provably safe.

Session kinds:

* the *pure* session (no WASI preopens; a plugin's policy environment,
  none for the module functions): text functions and the host-fact-only
  functions (``find_free_port``, ``is_process_alive``,
  ``get_parallel_threads``); one long-lived instance;
* *system* sessions keyed by the ``SKYPILOT_POD_*`` environment
  (``get_cpu_count``, ``get_mem_size_gb``; cgroup files are host facts);
* *file* sessions keyed by the identity (device, inode) of the pre-opened
  directories.

A trap discards the session; the next call builds a new one.
"""

from __future__ import annotations

import atexit
import collections
import gc
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from . import _tails
from ._config import SETTINGS
from ._errors import CapabilityDeniedError, MissingExportError, raise_component_error
from ._grants import (
    PathArg,
    PathGrant,
    display_error,
    display_error_among,
    grant,
    guest_label,
    is_utf8,
    preopen_dirs,
)
from ._policy import CPU_VARS, MEMORY_VARS, Policy
from ._runtime import Runtime
from ._session import Session

if TYPE_CHECKING:
    from ._backend import Backend
    from ._policy import Policy


_MAX_FILE_SESSIONS = 16


class WasmBackend:
    """The twelve functions, with clean argument types, through the component."""

    name = "wasm"

    def __init__(self, rt: Runtime | None = None, policy: Policy | None = None) -> None:
        """The default backend (``SETTINGS``-driven) or, with ``policy``, a
        plugin's backend: every instance sees the policy's environment,
        grants follow ``policy.allow_dirs``."""
        self.rt = Runtime() if rt is None else rt
        self.policy = policy
        #: Whether Python-only argument types must stay away from the host
        #: filesystem (a plugin's policy applies to every path).
        self.confined = policy is not None
        #: The limits every call runs under: the policy's, else the module
        #: functions' (``SETTINGS``, read at each call).
        self.limits: Policy = SETTINGS if policy is None else policy
        roots = None if policy is None else policy.allowed_roots()
        self._allowed = None if roots is None else tuple(os.fsencode(r) for r in roots)
        self._allowed_preopens = [(r, guest_label(r)) for r in self._allowed or ()]
        self._lock = threading.Lock()
        self._pure: Session | None = None
        self._system: dict[Any, Session] = {}
        self._files: collections.OrderedDict[Any, Session] = collections.OrderedDict()
        #: Whether the component exports ``tails``; None until first asked.
        self._tails: bool | None = None
        if policy is None:
            atexit.register(self._close)
        else:
            ref = weakref.ref(self)

            def close_at_exit() -> None:
                b = ref()
                if b is not None:
                    b._close()

            atexit.register(close_at_exit)

    def _close(self) -> None:
        """Frees wasmtime objects before interpreter teardown."""
        self.reset_sessions()
        gc.collect()
        for obj in (self.rt.linker, self.rt.component):
            try:
                obj.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass

    # -- sessions -------------------------------------------------------
    def reset_sessions(self) -> None:
        """Forgets every cached session: later calls build new instances
        (at exit, before the wasmtime objects are freed; tests use it too)."""
        with self._lock:
            self._pure = None
            self._system.clear()
            self._files.clear()

    def _new_session(self, preopens: list[tuple[bytes, str]], env: dict[str, str]) -> Session:
        return self.rt.session(preopens, env, self.limits)

    def _usable(self, s: Session) -> bool:
        """Whether ``s`` may serve a call: alive, and built with the memory
        cap the limits have now (a store's cap is fixed at creation)."""
        return s.dead is None and s.memory == self.limits.memory_limit

    def _pure_session(self) -> Session:
        s = self._pure
        # :meth:`_usable`, inline: this is every text call's path.
        if s is None or s.dead is not None or s.memory != self.limits.memory_limit:
            # A plugin sees its policy's environment in every instance (as
            # of the instance's creation).
            s = self._new_session([], {} if self.policy is None else self._policy_env())
            self._pure = s
        return s

    def _env(self, names: tuple[str, ...]) -> dict[str, str]:
        """The environment a system call's instance gets: the drop-in's
        variables ``names`` (the ones the call reads), or a plugin's."""
        if self.policy is None:
            return SETTINGS.component_env(names)
        return self._policy_env()

    def _policy_env(self) -> dict[str, str]:
        """A plugin's environment: its policy's variables that can cross
        into the component (UTF-8 names and values)."""
        assert self.policy is not None
        return {k: v for k, v in self.policy.guest_env().items() if is_utf8(k) and is_utf8(v)}

    def _system_session(self, names: tuple[str, ...]) -> Session | None:
        """The session for the environment as it is now (the drop-in's
        variables ``names``, the ones the call reads); None when one of
        those ``SKYPILOT_POD_*`` values cannot cross into the component (a
        ``str`` with surrogate escapes): the pure backend parses it and
        shows it as upstream does."""
        env = self._env(names)
        key: tuple[tuple[str, str], ...] = ()  # the common case: none set
        if env:
            if self.policy is None and not all(is_utf8(v) for v in env.values()):
                return None
            key = tuple(sorted(env.items()))
        s = self._system.get(key)  # the common case, without the lock
        if s is not None and self._usable(s):
            return s
        with self._lock:
            s = self._system.get(key)
            if s is None or not self._usable(s):
                if len(self._system) > 8:
                    self._system.clear()
                s = self._system[key] = self._new_session([], env)
            return s

    def _file_session(self, grants: list[PathGrant]) -> Session:
        env: dict[str, str] = {}
        extra: Any = None
        if self.policy is None:
            dirs = preopen_dirs(grants)
        else:
            env = self._policy_env()
            extra = tuple(sorted(env.items()))
            dirs = preopen_dirs(grants) if self._allowed is None else self._allowed_preopens
        try:
            key = (tuple(_dir_key(d) + (g,) for d, g in dirs), extra)
        except OSError:
            return self._new_session(dirs, env)
        with self._lock:
            s = self._files.get(key)
            if s is not None and self._usable(s):
                self._files.move_to_end(key)
                return s
            s = self._files[key] = self._new_session(dirs, env)
            while len(self._files) > _MAX_FILE_SESSIONS:
                self._files.popitem(last=False)
            return s

    def _grant(self, path: PathArg) -> PathGrant:
        return grant(path, self._allowed)

    def _unnamed(self, g: PathGrant) -> Backend:
        """The backend for a path the guest cannot be given: the pure one for
        the drop-in, a refusal under a plugin's policy."""
        if self.confined:
            raise CapabilityDeniedError(
                f"{g.display!r}: a path that is not valid UTF-8 cannot be passed to the sandbox"
            )
        return self._python_backend()

    @staticmethod
    def _python_backend() -> Backend:
        from ._backend import load

        return load("python")

    # -- helpers --------------------------------------------------------
    @staticmethod
    def _ok(result: Any, g: PathGrant | None = None) -> Any:
        ok, value = result
        if ok:
            return value
        raise_component_error(display_error(value, g) if g is not None else value)

    # -- text -----------------------------------------------------------
    def base36_encode(self, hex_str: str) -> str:
        ok, value = self._pure_session().call("text", "base36-encode", hex_str)
        if ok:
            return value  # type: ignore[no-any-return]
        raise_component_error(value)

    def format_float(self, num: Any, precision: int) -> str:
        arg = ("float", num) if type(num) is float else ("int", num)
        ok, value = self._pure_session().call("text", "format-float", arg, precision)
        if ok:
            return value  # type: ignore[no-any-return]
        raise_component_error(value)

    def truncate_long_string(self, s: str, max_length: int, truncate_middle: bool) -> str:
        return self._pure_session().call(  # type: ignore[no-any-return]
            "text", "truncate-long-string", s, max_length, truncate_middle
        )

    # -- files ----------------------------------------------------------
    def read_last_n_lines(self, path: PathArg, n: int, chunk: int, errors: str) -> list[str]:
        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).read_last_n_lines(path, n, chunk, errors)
        s = self._file_session([g])
        if not self._has_tails(s):  # a plugin exporting only ``files``
            r = s.call("files", "read-last-n-lines", g.guest, n, chunk, errors)
            return self._ok(r, g)  # type: ignore[no-any-return]
        page = _tails.PAGE_BYTES
        # The tail's resource lives in the session that ran the call.
        s, r = s.call_serving(
            "tails", "read-last-n-lines", g.guest, n, chunk, errors, page, _tails.PAGE_ITEMS
        )
        return self._pages(s, self._ok(r, g), "[method]tail.next-lines", page)

    def read_last_n_raw(self, path: PathArg, n: int, chunk: int) -> list[bytes]:
        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).read_last_n_raw(path, n, chunk)
        s = self._file_session([g])
        if not self._has_tails(s):
            r = s.call("files", "read-last-n-raw", g.guest, n, chunk)
            return self._ok(r, g)  # type: ignore[no-any-return]
        page = _tails.RAW_PAGE_BYTES
        s, r = s.call_serving(
            "tails", "read-last-n-raw", g.guest, n, chunk, page, _tails.PAGE_ITEMS
        )
        items = self._pages(s, self._ok(r, g), "[method]tail.next-raw", page)
        # Each piece crossed as the Latin-1 characters of its bytes.
        return [item.encode("latin-1") for item in items]

    def _has_tails(self, s: Session) -> bool:
        """Whether the component exports ``tails`` (paged results); plugins
        built for the original interface export only ``files``."""
        has = self._tails
        if has is None:
            try:
                s.func("tails", "read-last-n-lines")
                has = True
            except MissingExportError:
                has = False
            self._tails = has
        return has

    def _pages(self, s: Session, first: Any, method: str, max_bytes: int) -> list[str]:
        """The items of a paged result ``(page, rest)`` (:mod:`._tails`)."""
        page, rest = first
        if rest is None:  # the whole tail in one call: small results
            return page["items"]  # type: ignore[no-any-return]
        try:
            return _tails.take_pages(s, page, rest, method, max_bytes, self.limits.max_output)
        finally:
            # The instance's memory grew to hold this tail and never shrinks:
            # later calls get a fresh one (objects still using it keep it).
            self._forget(s)

    def _forget(self, s: Session) -> None:
        """Stops offering file session ``s`` to later calls."""
        with self._lock:
            for key, cached in list(self._files.items()):
                if cached is s:
                    del self._files[key]

    def hash_file(self, path: PathArg, hash_alg: str) -> Any:
        from ._hashobj import WasmHash

        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).hash_file(path, hash_alg)
        s = self._file_session([g])
        # The hasher lives in the session that ran the call.
        s, r = s.call_serving("files", "hash-file", g.guest, hash_alg)
        res = self._ok(r, g)
        info = s.call("files", "[method]hasher.info", res)
        return WasmHash(s, res, info)

    def estimate_fd_for_directory(self, path: PathArg) -> int:
        g = self._grant(path)
        if g.unnamed is not None:
            return self._unnamed(g).estimate_fd_for_directory(path)
        r = self._file_session([g]).call("files", "estimate-fd-for-directory", g.guest)
        return self._ok(r, g)  # type: ignore[no-any-return]

    # -- system ---------------------------------------------------------
    def get_cpu_count(self) -> int | None:
        s = self._system_session(CPU_VARS)
        if s is None:
            return self._python_backend().get_cpu_count()
        v = self._ok(s.call("system", "get-cpu-count"))
        return None if v is None else int(v)

    def get_mem_size_gb(self) -> float:
        s = self._system_session(MEMORY_VARS)
        if s is None:
            return self._python_backend().get_mem_size_gb()
        return self._ok(s.call("system", "get-mem-size-gb"))  # type: ignore[no-any-return]

    def get_parallel_threads(self, cloud_str: str | None) -> int:
        return self._ok(  # type: ignore[no-any-return]
            self._pure_session().call("system", "get-parallel-threads", cloud_str)
        )

    def get_max_workers_for_file_mounts(
        self, mounts: list[tuple[str, PathArg]], cloud_str: str | None
    ) -> tuple[int, str | None]:
        grants = [self._grant(src) for _, src in mounts]
        for g in grants:
            if g.unnamed is not None:
                return self._unnamed(g).get_max_workers_for_file_mounts(mounts, cloud_str)
        # Destinations are ignored (upstream only reads the values).
        pairs = [
            (dst if is_utf8(dst) else "", g.guest)
            for (dst, _), g in zip(mounts, grants, strict=True)
        ]
        r = self._file_session(grants).call(
            "system", "get-max-workers-for-file-mounts", pairs, cloud_str
        )
        ok, value = r
        if not ok:
            raise_component_error(display_error_among(value, grants))
        return value["count"], value["low-fd-warning"]

    def is_process_alive(self, pid: int) -> bool:
        return self._ok(self._pure_session().call("system", "is-process-alive", pid))  # type: ignore[no-any-return]

    def find_free_port(self, start_port: int) -> int:
        return self._ok(self._pure_session().call("system", "find-free-port", start_port))  # type: ignore[no-any-return]


def _dir_key(d: str | bytes) -> tuple[str | bytes, int, int]:
    st = os.stat(d)
    return (d, st.st_dev, st.st_ino)
