"""Memory and idle CPU of an exchange at rest, per process.

    .venv/bin/python perf/footprint.py                  # default wait (spin), 60 s idle
    .venv/bin/python perf/footprint.py --seconds 20 --wait eventfd

Starts ``ringex run`` (shipped config, one gateway, a temp data dir, no clients), waits
until it runs and ``--settle`` seconds more, then reads every process's memory from
/proc/<pid>/smaps_rollup and its CPU time over ``--seconds``. Prints one ``footprint``
JSON line per process (perf/_report.py conventions) and a ``footprint_total`` line:

- ``rss_mb``: resident set, shared pages counted in every process that maps them (what
  ``ps`` and ``top`` show; the total over-counts shared memory);
- ``pss_mb``: proportional set, shared pages divided among their users (the total is
  what the exchange really holds);
- ``shmem_mb``: of the PSS, shared memory (rings, the trade queue's buffer);
- ``idle_cpu_pct``: CPU time over the idle window, % of one core.

Targets (issue "Operate it"): total RSS <= 400 MB, idle CPU <= 2 % for every process but
the matcher.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import _emit, machine  # noqa: E402
from tests.e2e.live_exchange import LiveExchange  # noqa: E402
from tests.e2e.procs import descendants  # noqa: E402

TICK_S = os.sysconf("SC_CLK_TCK")


def memory(pid: int) -> dict[str, float]:
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0].endswith(":"):
                fields[parts[0][:-1]] = int(parts[1]) / 1024     # kB -> MB
    return {"rss_mb": round(fields.get("Rss", 0), 1), "pss_mb": round(fields.get("Pss", 0), 1),
            "shmem_mb": round(fields.get("Pss_Shmem", 0), 1)}


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])            # utime + stime


def role(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    if cmd.startswith("ringex-"):
        return cmd.split(" (")[0]
    if "resource_tracker" in cmd:
        return "resource-tracker"
    return "supervisor" if " run " in f" {cmd} " else cmd[:40]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="idle window for CPU")
    ap.add_argument("--settle", type=float, default=5.0, help="wait this long after start")
    ap.add_argument("--wait", default="spin", help="--wait of ringex run")
    args = ap.parse_args()
    with LiveExchange(gateways=1, wait=args.wait) as ex:
        time.sleep(args.settle)                  # a benchmark, not a test: let start-up end
        assert ex.proc is not None
        pids = [ex.proc.pid, *sorted(descendants(ex.proc.pid))]
        before = {p: cpu_ticks(p) for p in pids}
        t0 = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - t0
        rows = []
        for p in pids:
            cpu = (cpu_ticks(p) - before[p]) / TICK_S / elapsed * 100
            row = {"name": "footprint", "process": role(p), **memory(p),
                   "idle_cpu_pct": round(cpu, 2), "wait": args.wait}
            rows.append(row)
            _emit(row)
        _emit({"name": "footprint_total", "wait": args.wait, "seconds": args.seconds,
               "rss_mb": round(sum(r["rss_mb"] for r in rows), 1),
               "pss_mb": round(sum(r["pss_mb"] for r in rows), 1),
               "load_avg_1m": os.getloadavg()[0], **machine()})


if __name__ == "__main__":
    main()
