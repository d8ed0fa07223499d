"""Where the engine keeps its own state, ``<data-dir>/state`` (``snapshot.StateStore``).

Numba-free: the supervisor asks whether the engine will continue from it.

    snapshots/snap-<batch>.npz    the state after batch <batch>
    journal/seg-<first>.rxj       journal entries from batch <first> on
"""
from __future__ import annotations

from pathlib import Path

SNAPSHOTS = "snapshots"
JOURNAL = "journal"
SNAPSHOT_GLOB = "snap-*.npz"
SEGMENT_GLOB = "seg-*.rxj"


def numbered(folder: Path, pattern: str) -> list[tuple[int, Path]]:
    """Files named <prefix>-<batch>.<ext>, by batch."""
    out = []
    for p in folder.glob(pattern):
        try:
            out.append((int(p.stem.split("-")[1]), p))
        except ValueError:
            continue
    return sorted(out)


def has_engine_state(root: str | Path) -> bool:
    """True when an engine started on ``root`` recovers from its snapshots and journal
    (and so needs no balances or sequences from the database)."""
    root = Path(root)
    return bool(numbered(root / SNAPSHOTS, SNAPSHOT_GLOB) or numbered(root / JOURNAL, SEGMENT_GLOB))
