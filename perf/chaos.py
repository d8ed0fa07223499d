"""Chaos for minutes: random faults under a steady order flow on two gateways, an
operator's restart after each kill, the full convergence check after every round
(tests/faults/chaos.py says what a round does and checks).

    .venv/bin/python perf/chaos.py --minutes 10                     # SQLite
    .venv/bin/python perf/chaos.py --minutes 5 --db postgres        # a throwaway cluster
    .venv/bin/python perf/chaos.py --seed 1234 --only-fault gateway --rounds 1   # replay

Prints one JSON line per round (``name`` ``chaos_round``: seed, fault, plan, orders
acknowledged this round and checked so far, lost, duplicated, recovery_s = fault -> a
fresh connection's order acknowledged, the old run's exit code, segments swept, notable
log lines), then ``chaos`` (the summary: rounds, faults by kind, acknowledged orders
checked, losses, duplicates, worst and median recovery). A failing round prints
``chaos_failure`` (why, the run's log tail, how to replay it), keeps the work dir and
exits 1. Progress goes to stderr.
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
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import machine  # noqa: E402
from tests.faults.chaos import FAULTS, Chaos, RoundFailed, faults_for  # noqa: E402


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="start rounds until this much time has passed (default 10)")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--seed", type=int, default=None,
                    help="the first round's seed (default: random); each round logs its own")
    ap.add_argument("--only-fault", default=None,
                    help=f"comma-separated faults to draw from: {', '.join(FAULTS)}")
    ap.add_argument("--rounds", type=int, default=None, help="stop after this many rounds")
    ap.add_argument("--workdir", default=None, help="default: a temp dir, removed if all pass")
    args = ap.parse_args(argv)

    seed = first_seed = (args.seed if args.seed is not None
                         else random.SystemRandom().getrandbits(32))
    allowed = faults_for(args.db == "postgres")
    only = [f.strip() for f in args.only_fault.split(",")] if args.only_fault else None
    if only and set(only) - set(allowed):
        ap.error(f"--only-fault: {sorted(set(only) - set(allowed))} not in {allowed}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ringex-chaos-"))
    kinds: Counter = Counter()
    recoveries: list[tuple[float, str, int]] = []
    rounds, acks_checked, lost, duplicated = 0, 0, 0, 0
    failed = None
    t0 = time.monotonic()
    with ExitStack() as stack:
        pg = None
        if args.db == "postgres":
            from tests.db import PG_BIN, throwaway_cluster
            if not os.path.exists(f"{PG_BIN}/initdb"):
                ap.error(f"no PostgreSQL binaries in {PG_BIN}")
            pg = stack.enter_context(throwaway_cluster())
        chaos = Chaos(workdir, pg=pg, say=_say)
        if only:
            chaos.faults = tuple(only)
        stack.callback(chaos.cleanup)
        _say(f"chaos: {args.db}, seed {seed}, {args.minutes} min, work dir {workdir}")
        chaos.start()
        deadline = t0 + args.minutes * 60
        try:
            while time.monotonic() < deadline and (args.rounds is None or rounds < args.rounds):
                res = chaos.round(seed)
                rounds += 1
                kinds[res.fault] += 1
                acks_checked = res.orders_checked
                lost += res.lost
                duplicated += res.duplicated
                recoveries.append((res.recovery_s, res.fault, res.seed))
                row = res.as_dict()
                row["plan"] = {k: v for k, v in row["plan"].items() if k != "client_seeds"}
                _emit({"name": "chaos_round", "db": args.db, **row})
                seed = res.next_seed
            final = chaos.finish()
        except RoundFailed as exc:
            failed = exc
            kinds[exc.result.fault] += 1
            _emit({"name": "chaos_failure", "db": args.db, "round": exc.result.round,
                   "seed": exc.result.seed, "fault": exc.result.fault,
                   "plan": {k: v for k, v in exc.result.plan.items() if k != "client_seeds"},
                   "why": exc.why, "log_tail": exc.log_tail.splitlines()[-40:],
                   "replay": f"perf/chaos.py --db {args.db} --seed {exc.result.seed} "
                             f"--only-fault {exc.result.fault} --rounds 1",
                   "workdir": str(workdir)})
            final = {}
    worst = max(recoveries, default=(0.0, "", 0))
    _emit({"name": "chaos", "db": args.db, "first_seed": first_seed,
           "minutes": round((time.monotonic() - t0) / 60, 2),
           "rounds": rounds, "failed_rounds": int(failed is not None),
           "faults": dict(sorted(kinds.items())), "acks_checked": acks_checked,
           "lost": lost, "duplicated": duplicated,
           "worst_recovery_s": worst[0], "worst_recovery_fault": worst[1],
           "worst_recovery_seed": worst[2],
           "median_recovery_s": round(statistics.median(r for r, *_ in recoveries), 3)
           if recoveries else None, "final": final, **machine()})
    if failed is None and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
