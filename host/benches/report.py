#!/usr/bin/env python3
"""Regenerates BENCHMARKS.md from the criterion results of this run
(target/criterion) and, when present, the Python suite's results
(target/python-bench.json). Every ratio compares timings taken side by side
in the same run."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
CRITERION = ROOT / "target" / "criterion"
PYTHON_RESULTS = ROOT / "target" / "python-bench.json"


def criterion_medians() -> dict[str, float]:
    """Median time in ns of every criterion benchmark, by full id."""
    out: dict[str, float] = {}
    for bench in CRITERION.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        out[meta["full_id"]] = est["median"]["point_estimate"]
    return out


def fmt(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


Row = tuple[str, str, str, str, str, str]


def compare(
    t: dict[str, float],
    name: str,
    a: str,
    b: str,
    goal: str,
    met: Optional[Callable[[float, float], bool]],
) -> Optional[Row]:
    """A row comparing benchmark `a` with `b` (ratio = a / b)."""
    if a not in t or b not in t:
        return None
    ratio = t[a] / t[b]
    verdict = "—" if met is None else ("met" if met(t[a], t[b]) else "**missed**")
    systems = f"{a.split('/')[-1]} vs {b.split('/')[-1]}"
    return (name, systems, f"{fmt(t[a])} / {fmt(t[b])}", f"{ratio:.2f}x", goal, verdict)


def rust_rows(t: dict[str, float]) -> list[Row]:
    rows: list[Optional[Row]] = []
    for fn in ["base36_encode", "format_float", "truncate_long_string"]:
        goal, met = ("≤ 3x native (≤ ~300 ns overhead)", lambda a, b: a <= 3 * b) if fn == "base36_encode" else ("informative", None)
        rows.append(compare(t, f"{fn} per call", f"pure/{fn}/component", f"pure/{fn}/native", goal, met))
    rows.append(compare(t, "string echo per call (wasmtime's floor for a string call)", "pure/string_echo/component", "pure/string_echo/native", "informative", None))
    if "pure/base36_encode/component" in t and "pure/base36_encode/native" in t:
        over = t["pure/base36_encode/component"] - t["pure/base36_encode/native"]
        floor = t.get("pure/string_echo/component", float("nan")) - t.get("pure/string_echo/native", float("nan"))
        rows.append(("base36_encode overhead (component − native)", "vs string echo overhead", f"{fmt(over)} / {fmt(floor)}",
                     f"{over / floor:.2f}x", "≤ ~300 ns overhead", "met" if over <= 300 else "**missed**"))
    rows.append(compare(t, "load precompiled vs compile", "instantiate/load_precompiled", "instantiate/compile_from_wasm", "informative", None))
    if "instantiate/instance_pre/pooling" in t:
        v = t["instantiate/instance_pre/pooling"]
        rows.append(("InstancePre instantiate (new store + instance, dropped)", "pooling allocator", fmt(v), "—", "≤ 20 µs", "met" if v <= 20_000 else "**missed**"))
    rows.append(compare(t, "InstancePre instantiate", "instantiate/instance_pre/on_demand", "instantiate/instance_pre/pooling", "informative (does pooling help?)", None))
    rows.append(compare(t, "is_process_alive per call", "instantiate/is_process_alive/fresh_instance", "instantiate/is_process_alive/reused_instance", "informative", None))
    for alg, tool in [("sha256", "sha256sum"), ("md5", "md5sum")]:
        rows.append(compare(t, f"hash_file {alg} 256 MiB", f"hash_256MiB/{alg}/native", f"hash_256MiB/{alg}/component",
                            "component ≥ 0.8x native speed", lambda a, b: a / b >= 0.8))
        rows.append(compare(t, f"hash_file {alg} 256 MiB", f"hash_256MiB/{alg}/{tool}", f"hash_256MiB/{alg}/component", "informative (speed ratio)", None))
    for n in [10, 1000]:
        rows.append(compare(t, f"read_last_n_lines n={n}: 1 GiB vs 100 MiB", f"read_last_n_lines/1GiB_n{n}/component",
                            f"read_last_n_lines/100MiB_n{n}/component", "no growth with file size (≤ 1.5x)", lambda a, b: a <= 1.5 * b))
        goal, met = ("≤ 2.5x native", lambda a, b: a <= 2.5 * b) if n == 10 else ("informative", None)
        rows.append(compare(t, f"read_last_n_lines 1 GiB n={n}", f"read_last_n_lines/1GiB_n{n}/component", f"read_last_n_lines/1GiB_n{n}/native", goal, met))
    rows.append(compare(t, "read_last_n_lines 1 GiB n=10: the floor", "read_last_n_lines/1GiB_n10/native_with_sandbox_syscalls", "read_last_n_lines/1GiB_n10/native",
                        "informative (the native tail plus the sandbox's system calls)", None))
    rows.append(compare(t, "read_last_n_lines 1 GiB n=10", "read_last_n_lines/1GiB_n10/component", "read_last_n_lines/1GiB_n10/native_with_sandbox_syscalls",
                        "informative (component vs its floor)", None))
    rows.append(compare(t, "the tail's four WASI operations (open-at, stat, 8 KiB read, close)", "read_last_n_lines/1GiB_n10/wasi_operations",
                        "read_last_n_lines/1GiB_n10/native_operations", "informative (wasmtime-wasi from Rust, no wasm, vs the same system calls)", None))
    # The floor with wasmtime-wasi: the native tail, the sandbox's system
    # calls and what wasmtime-wasi adds to the guest's four operations.
    keys = ["read_last_n_lines/1GiB_n10/" + k for k in ["component", "native_with_sandbox_syscalls", "wasi_operations", "native_operations"]]
    if all(k in t for k in keys):
        comp, floor, wasi, native_ops = (t[k] for k in keys)
        floor += wasi - native_ops
        rows.append(("read_last_n_lines 1 GiB n=10: the floor with wasmtime-wasi",
                     "component vs native_with_sandbox_syscalls + (wasi_operations − native_operations)",
                     f"{fmt(comp)} / {fmt(floor)}", f"{comp / floor:.2f}x",
                     "informative (what is left: the component call, lifting, wasm code)", "—"))
    rows.append(compare(t, "estimate_fd_for_directory 10k entries", "dir_10k/estimate_fd_for_directory/component", "dir_10k/estimate_fd_for_directory/native", "≤ 3x native", lambda a, b: a <= 3 * b))
    rows.append(compare(t, "estimate_fd_for_directory 10k entries: the floor", "dir_10k/estimate_fd_for_directory/native_listing_with_metadata", "dir_10k/estimate_fd_for_directory/native",
                        "informative (wasmtime-wasi's listing stats every entry)", None))
    rows.append(compare(t, "estimate_fd_for_directory 10k entries", "dir_10k/estimate_fd_for_directory/component", "dir_10k/estimate_fd_for_directory/native_listing_with_metadata",
                        "informative (component vs its floor)", None))
    return [r for r in rows if r is not None]


def python_rows(t: dict[str, float]) -> list[Row]:
    if not PYTHON_RESULTS.exists():
        return []
    data = json.loads(PYTHON_RESULTS.read_text())
    rows: list[Row] = [tuple(r) for r in data.get("rows", [])]  # type: ignore[misc]
    # The Python host's sha256 against the same component's speed through
    # the Rust host (its 256 MiB median scaled to 16 MiB), from this run.
    py = data.get("medians_ns", {}).get("wasm", {}).get("hash_file_sha256_16MiB")
    rust = t.get("hash_256MiB/sha256/component")
    if py and rust:
        per16 = rust / 16
        rows.append(("hash_file sha256 16 MiB", "Python host vs Rust host (component; 256 MiB / 16)",
                     f"{fmt(py)} / {fmt(per16)}", f"{py / per16:.2f}x", "≤ 1.25x",
                     "met" if py <= 1.25 * per16 else "**missed**"))
        # Its floor: wasmtime-wasi reads at most 64 KiB per `read`, so 16 MiB
        # are 256 reads, each a round trip to a worker thread in the C API
        # (one round trip measured in this run: a third of the tail's floor).
        trips = data.get("medians_ns", {}).get("wasm", {}).get("thread_round_trips_3")
        if trips:
            floor = per16 + 256 * trips / 3
            rows.append(("hash_file sha256 16 MiB: the floor",
                         "Python host vs Rust host + 256 thread round trips (64 KiB reads)",
                         f"{fmt(py)} / {fmt(floor)}", f"{py / floor:.2f}x",
                         "informative (the host vs its floor)", "—"))
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    import os

    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; {rustc}; wasmtime 48.0.8; Python {platform.python_version()}"


def table(rows: list[Row]) -> str:
    head = "| benchmark | compared | median times | ratio | goal | goal met |\n|---|---|---|---|---|---|\n"
    return head + "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"


def main() -> int:
    t = criterion_medians()
    rust = rust_rows(t)
    py = python_rows(t)
    text = [
        "# Benchmarks\n",
        "Generated by `make bench` (`host/benches/report.py`) from one run; every ratio compares",
        "timings measured side by side in that run. Absolute times are informative only (shared,",
        "noisy 2-core machine). Ratio = first median / second median.\n",
        f"Machine: {machine()}\n",
        "## Rust host (criterion, `host/benches/component.rs`)\n",
        table(rust) if rust else "_no criterion results found_\n",
    ]
    notes = ROOT / "host" / "benches" / "NOTES.md"
    if notes.exists():
        text.append(notes.read_text())
    text.append("\n## Python host (`python-host/benchmarks/`)\n")
    text.append(table(py) if py else "_Python benchmarks not run in this report._\n")
    py_notes = ROOT / "python-host" / "benchmarks" / "NOTES.md"
    if py_notes.exists():
        text.append(py_notes.read_text())
    (ROOT / "BENCHMARKS.md").write_text("\n".join(text))
    print((ROOT / "BENCHMARKS.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
