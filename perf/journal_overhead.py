"""Matcher throughput with the journal off, with fsync "none" and with fsync "batch".

    .venv/bin/python perf/journal_overhead.py            # 2,000 batches per mode
    .venv/bin/python perf/journal_overhead.py --quick    # 300 batches per mode

Each mode replays the same seeded workload (perf/workload.py, wallets on) in 1,024-command
batches through ``Journal.append`` + ``OrderService.submit``, as the matcher process does
per batch; the journal lives in a temporary folder on the data disk. Prints JSON lines
(perf/_report.py): ``journal_batch`` latency (append + submit) and ``journal`` commands/s,
plus ``overhead_pct`` against the run without a journal. Target: fsync "none" costs < 10%.
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


def run(mode: str, batches: list[np.ndarray], folder: Path) -> float:
    svc = OrderService(Config.default(), wallets=True)
    svc.submit(batches[0])
    journal = None if mode == "off" else Journal.open(folder / f"{mode}.rxj", fsync=mode)
    samples = np.empty(len(batches) - 1, dtype=np.int64)
    clock = time.perf_counter_ns
    gc.collect()
    gc.freeze()
    for i, cmds in enumerate(batches[1:]):
        t0 = clock()
        if journal is not None:
            journal.append(cmds)
        svc.submit(cmds)
        samples[i] = clock() - t0
    gc.unfreeze()
    if journal is not None:
        journal.close()
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
    args = ap.parse_args(argv)
    batches = stream(300 if args.quick else args.batches, args.batch, args.seed)
    with tempfile.TemporaryDirectory(prefix="ringex-journal-", dir=ROOT) as tmp:
        base = run("off", batches, Path(tmp))
        for mode in ("none", "batch"):
            rate = run(mode, batches, Path(tmp))
            print(f'{{"name": "journal_overhead", "fsync": "{mode}", '
                  f'"overhead_pct": {round(100 * (1 - rate / base), 1)}}}', flush=True)


if __name__ == "__main__":
    main()
