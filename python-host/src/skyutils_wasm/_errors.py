"""Exceptions of the sandbox and the mapping of component errors to the
Python exceptions SkyPilot raises."""

from __future__ import annotations

import re
from typing import Any, NoReturn


class SandboxError(RuntimeError):
    """The WebAssembly sandbox failed (trap, deadline, memory cap, refused
    capability). The next call runs in a fresh instance. ``kind`` names the
    failure as the Rust host's ``Error::kind`` does."""

    kind = "Sandbox"


class TrapError(SandboxError):
    """The component trapped (a panic, a stack overflow, a host error)."""

    kind = "Trap"


class DeadlineExceededError(SandboxError):
    """A call ran past its deadline (epoch interruption)."""

    kind = "DeadlineExceeded"


class MemoryLimitExceededError(SandboxError, MemoryError):
    """A call needed more linear memory than the cap allows (the caller's
    ``memory_limit``, or the 4 GiB a wasm32 guest can address).
    ``limit`` is that cap in bytes and ``requested`` the size of the guest
    allocation that failed, when known."""

    kind = "MemoryLimitExceeded"

    def __init__(
        self, message: str, limit: int | None = None, requested: int | None = None
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.requested = requested


class OutOfFuelError(SandboxError):
    """A metered call used up its fuel budget."""

    kind = "OutOfFuel"


class OutputTooLargeError(SandboxError):
    """A call returned more data than the policy's ``max_output``."""

    kind = "OutputTooLarge"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"call returned {size} bytes, more than the policy's limit of {limit}")
        self.size = size
        self.limit = limit


class MissingExportError(SandboxError):
    """The loaded component does not export the interface a call needs."""

    kind = "MissingExport"

    def __init__(self, interface: str) -> None:
        super().__init__(f"{interface} is not exported by the component")
        self.interface = interface


class PluginLoadError(SandboxError):
    """A component could not be compiled, loaded or linked."""

    kind = "LoadError"


class CapabilityDeniedError(SandboxError, PermissionError):
    """The host policy refused a capability or a path (also a
    ``PermissionError``)."""

    kind = "CapabilityDenied"


#: Deprecated names of the exception classes: ``old -> current``.
DEPRECATED_NAMES = {
    "SandboxTimeout": "DeadlineExceededError",
    "SandboxMemoryError": "MemoryLimitExceededError",
    "CapabilityDenied": "CapabilityDeniedError",
}


def make_os_error(o: dict[str, Any]) -> OSError:
    """Builds a real ``OSError`` subclass whose ``str()`` is ``o['message']``."""
    message: str = o["message"]
    errno: int | None = o.get("errno")
    strerror: str | None = o.get("strerror")
    filename: str | None = o.get("filename")
    exc: OSError
    if errno is not None and strerror is not None:
        if filename is not None:
            exc = OSError(errno, strerror, filename)
        else:
            exc = OSError(errno, strerror)
        if str(exc) == message:
            return exc
    exc = OSError(message)
    if errno is not None:
        exc.errno = errno
        exc.strerror = strerror
        exc.filename = filename
    return exc


_UDE_ONE = re.compile(
    r"'(.+)' codec can't decode byte 0x([0-9a-f]{2}) in position (\d+): (.*)$", re.S
)
_UDE_RANGE = re.compile(r"'(.+)' codec can't decode bytes in position (\d+)-(\d+): (.*)$", re.S)


def make_unicode_decode_error(message: str) -> Exception:
    """A ``UnicodeDecodeError`` whose ``str()`` equals the component's text."""
    m = _UDE_ONE.match(message)
    if m:
        start = int(m.group(3))
        obj = bytes(start) + bytes([int(m.group(2), 16)])
        return UnicodeDecodeError(m.group(1), obj, start, start + 1, m.group(4))
    m = _UDE_RANGE.match(message)
    if m:
        start, last = int(m.group(2)), int(m.group(3))
        obj = bytes(last + 1)
        return UnicodeDecodeError(m.group(1), obj, start, last + 1, m.group(4))
    return ValueError(message)


_OS_CASES = ("file-not-found", "permission-denied", "not-a-directory", "is-a-directory", "os-error")


def raise_component_error(err: Any) -> NoReturn:
    """Raises the Python exception for a lifted ``types.error`` variant."""
    tag, payload = err
    if tag in ("value-error", "unsupported-hash"):
        raise ValueError(payload)
    if tag == "overflow-error":
        raise OverflowError(payload)
    if tag == "type-error":
        raise TypeError(payload)
    if tag == "assertion-error":
        raise AssertionError(payload)
    if tag == "unicode-decode-error":
        raise make_unicode_decode_error(payload)
    if tag == "runtime-error":
        cause = payload.get("cause")
        exc = RuntimeError(payload["message"])
        if cause is not None:
            raise exc from make_os_error(cause)
        raise exc
    if tag in _OS_CASES:
        raise make_os_error(payload)
    if tag == "capability-denied":
        raise CapabilityDeniedError(payload)
    raise SandboxError(f"unknown component error {tag}: {payload!r}")
