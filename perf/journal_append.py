"""The journal's write path alone: ``append_entry`` of one-command entries (the smallest,
where any extra work per entry shows most), fsync "none", a file on the data disk.

    .venv/bin/python perf/journal_append.py [--entries 100000] [--repeats 5]

Prints ``journal_append``: ns per append, the best and the median of the repeats (a
shared machine drifts; the best is the code's cost). Run it on two checkouts to compare
a change to the kernel (the full-disk handling added one branch on the write's result).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf._report import _emit, machine  # noqa: E402
from ringex import records  # noqa: E402
from ringex.core.journal import Journal, append_entry  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    cmds = records.commands(1)
    per = []
    with tempfile.TemporaryDirectory(dir=ROOT) as folder:
        for r in range(args.repeats):
            j = Journal.open(Path(folder) / f"seg-{r}.rxj")
            append_entry(j.state, j.head, j.iov, cmds, 0, 1)     # compiled, file open
            t0 = time.perf_counter_ns()
            for _ in range(args.entries):
                append_entry(j.state, j.head, j.iov, cmds, 0, 1)
            per.append((time.perf_counter_ns() - t0) / args.entries)
            j.close(sync=False)
    _emit({"name": "journal_append", "unit": "ns", "entries": args.entries,
           "best": round(min(per)), "median": round(statistics.median(per)),
           "loadavg": [round(x, 2) for x in os.getloadavg()], **machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
