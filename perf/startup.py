"""Seconds from launching ``ringex demo`` to its first trade, with an empty kernel cache
(cold: numba compiles every kernel) and with the cache that run filled (warm).

    .venv/bin/python perf/startup.py                      # cold, then warm
    .venv/bin/python perf/startup.py --runs warm,warm --cache ~/.cache/ringex/numba/<hash>
    .venv/bin/python perf/startup.py --logs /tmp/startup-logs     # keep each ringex.log

Each run: a fresh temporary data dir, ``python -m ringex.cli demo --port 0 --http-port -1``
with ``RINGEX_NUMBA_CACHE`` naming the kernel cache under test (cold: a new empty folder;
warm: the folder the cold run of this invocation filled, or ``--cache``). Measured from the
launch: ``ready_s``, when ``ringex.run`` appears (every process runs); ``first_trade_s``,
when the first trade reaches a client subscribed to every demo symbol's trades (it
connects as soon as ``ringex.run`` appears; the demo's bots still have to fund their
accounts and quote, so none is missed). Then SIGINT, and the exit code is checked.
``progress_lines``: the engine's ``compiling kernels`` lines in the run's ringex.log.

Output: one JSON line per run (perf/_report.py's shape: name, unit, figures, machine).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from perf._report import machine  # noqa: E402
from ringex.client import Trade, connect  # noqa: E402
from ringex.ops.datadir import RUN_FILE  # noqa: E402
from ringex.ops.demo import SYMBOLS  # noqa: E402

TIMEOUT_S = 900.0          # a cold start on a busy 2-core machine takes minutes


def _run_info(data_dir: Path, pid: int, deadline: float, proc) -> dict:
    path = data_dir / RUN_FILE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ringex demo exited with {proc.returncode} while starting; "
                               f"see {data_dir / 'ringex.log'}")
        try:
            info = json.loads(path.read_text())
            if info.get("pid") == pid:
                return info
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    raise TimeoutError(f"no {RUN_FILE} after {TIMEOUT_S:.0f} s")


async def _first_trade(url: str, deadline: float) -> float:
    c = await connect(url)
    try:
        for name in SYMBOLS:
            await c.subscribe("trades", name)

        async def wait() -> float:
            async for ev in c.events():
                if isinstance(ev, Trade):
                    return time.monotonic()
            raise RuntimeError("the exchange closed the connection before a trade")
        return await asyncio.wait_for(wait(), max(1.0, deadline - time.monotonic()))
    finally:
        await c.close()


def run_once(cache: Path, label: str, keep_log: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="ringex-startup-") as tmp:
        data_dir = Path(tmp)
        env = {**os.environ, "RINGEX_NUMBA_CACHE": str(cache)}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ringex.cli", "demo", "--data-dir", str(data_dir),
             "--port", "0", "--http-port", "-1"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            deadline = t0 + TIMEOUT_S
            info = _run_info(data_dir, proc.pid, deadline, proc)
            ready = time.monotonic() - t0
            first = asyncio.run(_first_trade(info["url"], deadline)) - t0
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        log = (data_dir / "ringex.log").read_text(errors="replace")
    if keep_log is not None:
        keep_log.parent.mkdir(parents=True, exist_ok=True)
        keep_log.write_text(log)
    return {"name": "startup_to_first_trade", "unit": "s", "cache": label,
            "ready_s": round(ready, 2), "first_trade_s": round(first, 2),
            "progress_lines": log.count("compiling kernels:"), "exit_code": code,
            **machine()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="cold,warm",
                    help="comma-separated cold/warm runs, in order (default: cold,warm)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="the kernel cache of the warm runs (default: the cold run's)")
    ap.add_argument("--logs", type=Path, default=None,
                    help="keep each run's ringex.log in this folder (<n>-<cold|warm>.log)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ringex-startup-cache-") as tmp:
        warm: Path | None = args.cache
        for i, kind in enumerate(args.runs.split(",")):
            keep = args.logs / f"{i}-{kind}.log" if args.logs else None
            if kind == "cold":
                cache = Path(tmp) / f"cold-{i}"
                result = run_once(cache, "cold", keep)
                if args.cache is None:
                    warm = cache                   # the next warm run uses what it filled
            elif kind == "warm":
                if warm is None:
                    raise SystemExit("--runs: a warm run needs a cold one before it, or --cache")
                result = run_once(warm, "warm", keep)
            else:
                raise SystemExit(f"--runs: {kind!r} is neither cold nor warm")
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
