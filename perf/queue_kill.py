"""kill -9 of the engine (the trade queue's producer) at random moments under load, many
rounds: an operator's restart and the full convergence check after each, the persistence
stall measured (tests/faults/queue_kill.py says what a round does and checks).

    .venv/bin/python perf/queue_kill.py --rounds 20 [--seed 7] [--traders 6]

Prints one JSON line per round (``queue_kill_round``: kill delay, exit code, whether the
kill left the queue locked, acks, shutdown_s, restart_s, stall_s = kill -> the restarted
run's database holds every journal entry), then ``queue_kill`` (rounds, rounds that hit a
locked queue, worst and median stall, the final check, the machine, load average).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import machine  # noqa: E402
from tests.faults.queue_kill import EngineKills  # noqa: E402


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--traders", type=int, default=6)
    ap.add_argument("--workdir", default=None, help="default: a temp dir, removed if all pass")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ringex-queue-kill-"))
    kills = EngineKills(workdir, seed, args.traders)
    rows: list[dict] = []
    try:
        kills.start()
        for i in range(args.rounds):
            rows.append(kills.round(i))
            _emit({"name": "queue_kill_round", "seed": seed, **rows[-1]})
        final = kills.finish()
    finally:
        kills.cleanup()
    stalls = [r["stall_s"] for r in rows]
    _emit({"name": "queue_kill", "seed": seed, "rounds": len(rows),
           "queue_locked_rounds": sum(r["queue_locked"] for r in rows),
           "acks_checked": sum(r["acks"] for r in rows),
           "worst_stall_s": max(stalls), "median_stall_s": statistics.median(stalls),
           "worst_shutdown_s": max(r["shutdown_s"] for r in rows), "final": final,
           "loadavg": os.getloadavg(), **machine()})
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
