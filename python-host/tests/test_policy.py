"""One policy type: ``Policy`` (a plugin's, bounded by default) and
``SETTINGS`` (the module functions', ``Policy.drop_in()``), with the Rust
host's field names; the old names still work, with a DeprecationWarning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import skyutils_wasm
from skyutils_wasm import SETTINGS, Policy


@pytest.fixture
def restore() -> Iterator[None]:
    saved = {k: getattr(SETTINGS, k) for k in ("deadline", "memory_limit", "env_override")}
    yield
    skyutils_wasm.configure(**saved)


def test_settings_is_a_drop_in_policy() -> None:
    assert isinstance(SETTINGS, Policy)
    assert skyutils_wasm.configure() is SETTINGS
    with pytest.raises(AttributeError):
        SETTINGS.deadline = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError, match="unknown setting 'fuel'"):
        skyutils_wasm.configure(fuel=10)


def test_configure_takes_the_new_names(restore: None) -> None:
    skyutils_wasm.configure(deadline=2.5, memory_limit=1 << 30, env_override={"A": "b"})
    assert (SETTINGS.deadline, SETTINGS.memory_limit) == (2.5, 1 << 30)
    assert SETTINGS.env_override == {"A": "b"}
    with pytest.raises(ValueError, match="deadline must be positive"):
        skyutils_wasm.configure(deadline=0)
    assert SETTINGS.deadline == 2.5


def test_deprecated_names_still_work(restore: None) -> None:
    with pytest.deprecated_call(match="deadline_s"):
        skyutils_wasm.configure(deadline_s=3.0, memory_limit=2 << 30)
    assert SETTINGS.deadline == 3.0 and SETTINGS.memory_limit == 2 << 30
    with pytest.deprecated_call(match="env_override"):
        skyutils_wasm.configure(env={"SKYPILOT_POD_X": "1"})
    assert SETTINGS.guest_env() == {"SKYPILOT_POD_X": "1"}
    with pytest.deprecated_call(match="memory_limit"):
        p = Policy(memory=64 << 20)
    assert p.memory_limit == 64 << 20
    with pytest.deprecated_call():
        assert p.memory == 64 << 20
    with pytest.deprecated_call(match="Policy.drop_in"):
        s = skyutils_wasm.Settings()
    with pytest.deprecated_call():
        assert (s.deadline_s, s.memory_limit, s.max_output) == (None, 4 << 30, None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'memroy'"):
        Policy(memroy=1)


def test_policy_is_a_value() -> None:
    assert Policy(deadline=1.0) == Policy(deadline=1.0) != Policy()
    assert hash(Policy(allow_dirs=["/tmp"])) == hash(Policy(allow_dirs=("/tmp",)))
    assert repr(Policy()).startswith("Policy(allow_dirs=None, env_allow=('SKYPILOT_POD_*',)")
    drop_in = Policy.drop_in()
    assert (drop_in.deadline, drop_in.memory_limit, drop_in.max_output) == (None, 1 << 32, None)
    assert Policy(env_allow=("A*",), env_override={"AB": "1", "B": "2"}).guest_env() == {"AB": "1"}


def test_one_name_per_exception_class() -> None:
    errors = skyutils_wasm.DeadlineExceededError, skyutils_wasm.MemoryLimitExceededError
    assert [e.kind for e in errors] == ["DeadlineExceeded", "MemoryLimitExceeded"]
    assert issubclass(skyutils_wasm.MemoryLimitExceededError, MemoryError)
    assert issubclass(skyutils_wasm.CapabilityDeniedError, PermissionError)
    for old, new in [
        ("SandboxTimeout", skyutils_wasm.DeadlineExceededError),
        ("SandboxMemoryError", skyutils_wasm.MemoryLimitExceededError),
        ("CapabilityDenied", skyutils_wasm.CapabilityDeniedError),
    ]:
        with pytest.deprecated_call(match=new.__name__):
            assert getattr(skyutils_wasm, old) is new
        assert old not in skyutils_wasm.__all__


def test_memory_limit_none_means_the_wasm32_maximum() -> None:
    """``configure(memory_limit=None)`` (a natural "no cap") is wasm32's 4 GiB,
    and a bad value is refused before it can break later calls."""
    from skyutils_wasm._policy import WASM32_MAX_MEMORY

    saved = skyutils_wasm.configure().memory_limit
    try:
        assert skyutils_wasm.configure(memory_limit=None).memory_limit == WASM32_MAX_MEMORY
        assert skyutils_wasm.base36_encode("ff") == "73"
        with pytest.raises(TypeError, match="memory_limit must be an int"):
            skyutils_wasm.configure(memory_limit=1.5)
        assert skyutils_wasm.base36_encode("ff") == "73"
    finally:
        skyutils_wasm.configure(memory_limit=saved)
