"""py-spy on the running workers during a phase: a flame graph (SVG) and the functions with the most self time.

Two samplers run side by side on each worker process, without pausing it
(`--nonblocking`): one writes the flame graph, the other the raw stacks from
which the self time of each function is counted (py-spy's flame graph gives
only totals). Idle threads (waiting on a socket or a lock) are not sampled,
so the figures are where the worker's CPU goes. Only samples of the thread holding the GIL count
(`--gil`): a thread waiting in C for PostgreSQL or a socket is idle too.
"""

import contextlib
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 250  # samples per second and process


def _pyspy() -> str:
    return str(Path(sys.executable).parent / "py-spy")


def _start(pid: int, output: Path, fmt: str) -> subprocess.Popen:
    return subprocess.Popen([_pyspy(), "record", "--pid", str(pid), "--rate", str(RATE), "--nonblocking", "--gil",
                             "--format", fmt, "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def self_time(raw: Path, top: int = 10) -> list[tuple[str, float]]:
    """Return the `top` functions by self time in py-spy raw stacks, as (function (file), share of samples)."""
    counts: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        # "function (path/to/file.py:123)" -> "function (file.py)": one row per function, whatever the line.
        name, _, where = leaf.partition(" (")
        where = where.rstrip(")").rsplit(":", 1)[0]
        counts[f"{name} ({'/'.join(where.split('/')[-2:])})"] += int(n)
        total += int(n)
    return [(name, n / total) for name, n in counts.most_common(top)] if total else []


def inclusive_time(raw: Path, *, under: tuple[str, ...] = ("delivery/",), top: int = 15) -> list[tuple[str, float]]:
    """Return the `top` functions of our own code (files under `under`) by inclusive time: where the time goes."""
    counts: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        total += int(n)
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            where = where.rstrip(")").rsplit(":", 1)[0]
            if any(part in where for part in under):
                key = f"{name} ({'/'.join(where.split('/')[-2:])})"
                if key not in seen:
                    seen.add(key)
                    counts[key] += int(n)
    return [(name, n / total) for name, n in counts.most_common(top)] if total else []


@contextlib.contextmanager
def profiled(phase: str, pids: list[int], outdir: Path, results: dict, enabled: bool):
    """Sample the workers while the block runs, if enabled; put {svg, top} under results["profiles"][phase]."""
    if not enabled:
        yield
        return
    outdir.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in pids:
        procs.append(_start(pid, outdir / f"{phase}-{pid}.svg", "flamegraph"))
        procs.append(_start(pid, outdir / f"{phase}-{pid}.txt", "raw"))
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(timeout=120)
        merged = outdir / f"{phase}.txt"
        merged.write_text("".join((outdir / f"{phase}-{pid}.txt").read_text() for pid in pids
                                  if (outdir / f"{phase}-{pid}.txt").exists()))
        results.setdefault("profiles", {})[phase] = {
            "svg": [str(outdir / f"{phase}-{pid}.svg") for pid in pids],
            "top": self_time(merged),
            "inclusive": inclusive_time(merged),
        }
        print(f"profile {phase}:", results["profiles"][phase], flush=True)
