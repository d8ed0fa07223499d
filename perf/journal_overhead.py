"""Matcher throughput with the journal off, with fsync "none" and with fsync "batch".

    .venv/bin/python perf/journal_overhead.py            # 2,000 batches per mode
    .venv/bin/python perf/journal_overhead.py --quick    # 300 batches per mode

Each mode replays the same seeded workload (perf/workload.py, wallets on) in 1,024-command
batches through ``Journal.append`` + ``OrderService.submit``, as the matcher process does
per batch; the journal lives in a temporary folder on the data disk. Each journal mode
runs side by side with a run without a journal, in alternating turns of ``--turn``
batches: on a shared machine the speed drifts by tens of percent between runs a few
seconds apart, more than the overhead measured, and turns make the drift hit both alike.
Prints JSON lines (perf/_report.py): ``journal_batch`` latency (append + submit) and
``journal`` commands/s, plus ``overhead_pct`` against the run without a journal beside
it. Target: fsync "none" costs < 5%.
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from perf._report import emit_latency, emit_throughput, machine  # noqa: E402
from perf.workload import Workload  # noqa: E402
from ringex.config import Config  # noqa: E402
from ringex.core.journal import Journal  # noqa: E402
from ringex.core.order_service import OrderService  # noqa: E402


def stream(batches: int, batch: int, seed: int) -> list[np.ndarray]:
    """The command batches, generated once (ids come from a scratch engine run)."""
    cfg = Config.default()
    svc, wl = OrderService(cfg, wallets=True), Workload(cfg, seed=seed, wallets=True)
    out = [wl.funding()]
    svc.submit(out[0])
    for _ in range(batches):
        cmds = wl.next_batch(batch)
        wl.observe(svc.submit(cmds))
        out.append(cmds)
    return out


def run_beside(mode: str, batches: list[np.ndarray], folder: Path,
               turn: int) -> dict[str, np.ndarray]:
    """No journal ("off") and ``mode`` over the same batches, each with its own engine,
    taking turns of ``turn`` batches (who goes first alternates); per-batch times in ns."""
    with Journal.open(folder / "warm.rxj") as warm:   # the kernel's first call loads it
        warm.append(batches[1])                        # from numba's cache: ms, untimed
    runs = {}
    for m in ("off", mode):
        svc = OrderService(Config.default(), wallets=True)
        svc.submit(batches[0])
        journal = None if m == "off" else Journal.open(folder / f"{m}.rxj", fsync=m)
        runs[m] = (svc, journal, np.empty(len(batches) - 1, dtype=np.int64))
    body, clock = batches[1:], time.perf_counter_ns
    gc.collect()
    gc.freeze()
    for k, start in enumerate(range(0, len(body), turn)):
        for m in (("off", mode) if k % 2 == 0 else (mode, "off")):
            svc, journal, samples = runs[m]
            for i in range(start, min(start + turn, len(body))):
                cmds = body[i]
                t0 = clock()
                if journal is not None:
                    journal.append(cmds)
                svc.submit(cmds)
                samples[i] = clock() - t0
    gc.unfreeze()
    for _, journal, _ in runs.values():
        if journal is not None:
            journal.close()
    return {m: samples for m, (_, _, samples) in runs.items()}


def report(mode: str, samples: np.ndarray, batches: list[np.ndarray]) -> float:
    n = sum(len(b) for b in batches[1:])
    params = dict(fsync=mode, batch=len(batches[1]), batches=len(samples), **machine())
    emit_latency("journal_batch", samples, unit="us", **params)
    return emit_throughput("journal", n, samples.sum() / 1e9, unit="commands/s", **params)["per_s"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--turn", type=int, default=20, help="batches per turn (default 20)")
    args = ap.parse_args(argv)
    batches = stream(300 if args.quick else args.batches, args.batch, args.seed)
    with tempfile.TemporaryDirectory(prefix="ringex-journal-", dir=ROOT) as tmp:
        for mode in ("none", "batch"):
            samples = run_beside(mode, batches, Path(tmp), args.turn)
            base = report("off", samples["off"], batches)
            rate = report(mode, samples[mode], batches)
            print(f'{{"name": "journal_overhead", "fsync": "{mode}", '
                  f'"overhead_pct": {round(100 * (1 - rate / base), 1)}}}', flush=True)


if __name__ == "__main__":
    main()
