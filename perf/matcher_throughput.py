"""Matcher throughput and per-batch latency on the perf/scenarios.py command mixes.

    .venv/bin/python perf/matcher_throughput.py            # full run (a few minutes)
    .venv/bin/python perf/matcher_throughput.py --quick    # well under a minute
    .venv/bin/python perf/matcher_throughput.py --scenarios normal,flash

Prints JSON lines (perf/_report.py):
- ``matcher_warmup_construct`` / ``matcher_warmup_first_submit``: a fresh process's first
  ``OrderService(config)`` and first ``submit``; ``cache=cold`` points numba at an empty
  cache folder (everything compiles; skipped with --quick), ``cache=warm`` uses the
  on-disk cache as it stands.
- ``matcher_batch``: latency of one call on a 1,024-command batch (p50/p99/p999,
  microseconds), per scenario (``scenario=``), wallets off and on. ``--api`` picks the
  call: ``submit_into`` (default: the events go into a preallocated buffer, as in the
  matcher process's loop) or ``submit`` (a fresh copy of the events per call; for 1,024
  commands the copy and its allocation add tens of microseconds).
- ``matcher``: commands per second over the same timed calls (generation and the
  generator's bookkeeping are outside the timed region), with the events they gave:
  ``trades``, ``rejects``, and the orders resting at the end (``live_orders``).
- ``matcher_worst``: per wallets setting, the scenario with the lowest commands/s (its
  ``matcher`` figures), and the highest ``matcher_batch`` p99.9 of any scenario
  (``p999_us``, ``p999_scenario``).
Each scenario runs in a fresh ``OrderService`` with the same seed.
Targets: >= 5 M commands/s wallets off, >= 3.5 M/s on in the worst scenario, p99.9 per
batch < 1 ms in every scenario.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from perf._report import emit_latency, emit_throughput, machine  # noqa: E402
from perf.scenarios import SCENARIOS  # noqa: E402
from perf.workload import Mix, Workload  # noqa: E402
from ringex import records  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.records import EventKind  # noqa: E402


def warmup_probe() -> None:
    """Run in a fresh process: time the first construction and the first submit."""
    t0 = time.perf_counter_ns()
    from ringex.core.order_service import OrderService
    t1 = time.perf_counter_ns()
    cfg = Config.default()
    svc = OrderService(cfg, wallets=True)
    t2 = time.perf_counter_ns()
    wl = Workload(cfg, seed=1, wallets=True)
    svc.submit(wl.funding())
    t3 = time.perf_counter_ns()
    print(json.dumps({"import_ns": t1 - t0, "construct_ns": t2 - t1, "first_submit_ns": t3 - t2}))


def warmup(cold: bool) -> None:
    """First-call times in fresh processes: with an empty numba cache (``cold``: every
    kernel compiles; ringex keys its cache folder on RINGEX_NUMBA_CACHE) and with the
    cache as it stands (``warm``: kernels load from disk)."""
    runs: list[tuple[str, str | None]] = [("warm", None)]
    if cold:
        runs.insert(0, ("cold", tempfile.mkdtemp(prefix="ringex-numba-")))
    for cache, folder in runs:
        env = dict(os.environ)
        if folder:
            env["RINGEX_NUMBA_CACHE"] = folder
        try:
            out = subprocess.run([sys.executable, __file__, "--warmup-probe"], env=env,
                                 capture_output=True, text=True, check=True, cwd=ROOT)
        finally:
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
        t = json.loads(out.stdout.strip().splitlines()[-1])
        emit_latency("matcher_warmup_construct", [t["import_ns"] + t["construct_ns"]],
                     unit="ms", cache=cache, note="import order_service + OrderService(config)")
        emit_latency("matcher_warmup_first_submit", [t["first_submit_ns"]], unit="ms",
                     cache=cache, note="first submit (a batch of deposits)")


def _submitter(svc, api: str):
    """``f(cmds) -> events`` through ``api``: ``submit`` (a fresh copy of the events) or
    ``submit_into`` (the engine loop's path: events written into one preallocated buffer;
    the result is a view of it, valid until the next call)."""
    if api == "submit":
        return svc.submit
    out = records.events(len(svc._out))

    def submit_into(cmds):
        done, n = svc.submit_into(cmds, out)
        if done == len(cmds):
            return out[:n]
        parts = [out[:n].copy()]
        while done < len(cmds):
            done, n = svc.submit_into(cmds, out, done)
            parts.append(out[:n].copy())
        return np.concatenate(parts)
    return submit_into


def run(scenario: str, mix: Mix, wallets: bool, batches: int, batch: int, seed: int,
        settle: int, api: str = "submit_into") -> tuple[dict, dict, float]:
    """One timed run; returns its (matcher_batch, matcher) lines and the seconds timed."""
    from ringex.core.order_service import OrderService
    cfg = Config.default()
    svc = OrderService(cfg, wallets=wallets)
    wl = Workload(cfg, seed=seed, wallets=wallets, mix=mix)
    svc.submit(wl.funding())
    for _ in range(settle):                       # reach a steady book before timing
        wl.observe(svc.submit(wl.next_batch(batch)))
    gc.collect()
    gc.freeze()
    samples = np.empty(batches, dtype=np.int64)
    n_events = n_trades = n_rejects = 0
    clock = time.perf_counter_ns
    submit = _submitter(svc, api)
    for i in range(batches):
        cmds = wl.next_batch(batch)
        t0 = clock()
        ev = submit(cmds)
        samples[i] = clock() - t0
        wl.observe(ev)
        kind = ev["kind"]
        n_events += ev.size
        n_trades += int(np.count_nonzero(kind == EventKind.FILL)) // 2
        n_rejects += int(np.count_nonzero(kind == EventKind.REJECT))
    gc.unfreeze()
    params = dict(scenario=scenario, wallets=wallets, api=api, batch=batch, batches=batches,
                  seed=seed,
                  events=n_events, trades=n_trades, rejects=n_rejects,
                  live_orders=svc.live_orders(), **machine())
    seconds = float(samples.sum()) / 1e9
    lat = emit_latency("matcher_batch", samples, unit="us", **params)
    thr = emit_throughput("matcher", batches * batch, seconds, unit="commands/s", **params)
    return lat, thr, seconds


def worst(results: list[tuple[dict, dict, float]]) -> None:
    """One ``matcher_worst`` line: the slowest scenario, and the worst p99.9 of any."""
    _, thr, seconds = min(results, key=lambda r: r[1]["per_s"])
    tail = max((r[0] for r in results), key=lambda x: x["p999"])
    keep = {k: v for k, v in thr.items()
            if k not in ("name", "unit", "count", "seconds", "per_s")}
    emit_throughput("matcher_worst", thr["count"], seconds, unit=thr["unit"], **keep,
                    p999_us=tail["p999"], p999_scenario=tail["scenario"],
                    scenarios=",".join(r[1]["scenario"] for r in results))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="300 batches per scenario and wallets setting")
    ap.add_argument("--batches", type=int, default=5000, help="timed batches per run")
    ap.add_argument("--batch", type=int, default=1024, help="commands per submit call")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated, of: {', '.join(SCENARIOS)} (default: all)")
    ap.add_argument("--api", default="submit_into", choices=("submit_into", "submit"),
                    help="submit_into: events into a preallocated buffer, as the engine "
                         "loop runs; submit: each batch's events copied out [%(default)s]")
    ap.add_argument("--no-warmup", action="store_true", help="skip the fresh-process probe")
    ap.add_argument("--warmup-probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.warmup_probe:
        warmup_probe()
        return
    names = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    unknown = [x for x in names if x not in SCENARIOS]
    if unknown or not names:
        ap.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    batches = 300 if args.quick else args.batches
    if not args.no_warmup:
        warmup(cold=not args.quick)
    results: dict[bool, list[tuple[dict, dict, float]]] = {False: [], True: []}
    for name in names:
        for wallets in (False, True):
            results[wallets].append(run(name, SCENARIOS[name], wallets, batches, args.batch,
                                        args.seed, settle=30 if args.quick else 200,
                                        api=args.api))
    for wallets in (False, True):
        worst(results[wallets])


if __name__ == "__main__":
    main()
