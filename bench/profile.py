"""Sampling profiles of a running server process with py-spy (`pip install py-spy`), summarised.

    async with spy(server.pid, Path("profile.txt")):
        ...                                   # the load to profile
    print(summarise(Path("profile.txt")))     # top functions, inclusive and self

py-spy writes collapsed stacks (`frame;frame;frame count`); the summary groups them by function.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


@contextlib.asynccontextmanager
async def spy(pid: int, out: Path, rate: int = 250, *, gil: bool = False) -> AsyncIterator[None]:
    """Samples `pid` (idle time excluded; with `gil` only the thread holding the GIL) while the body runs;
    writes collapsed stacks to `out`."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    process = await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(rate),
        "--format",
        "raw",
        *(["--gil"] if gil else []),
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # attached
    try:
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


def _function(frame: str) -> str:
    """`name (path/to/file.py:123)` -> `name (file.py)` (line numbers vary within a function)."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def summarise(collapsed: Path, top: int = 30) -> str:
    """The functions with the most samples: inclusive (on the stack) and self (at the top)."""
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        self_time[frames[-1]] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - manual use
    print(summarise(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 30))
