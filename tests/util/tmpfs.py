"""A small tmpfs for disk-full tests: mount it, fill it, free it, always unmount it.

    with small_tmpfs(path, 4 << 20):          # root only (CI runs the suite as root)
        filler = fill(path, leave=64 << 10)   # a file taking all but ``leave`` bytes
        ...
        filler.unlink()                       # space is back
"""
from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@contextmanager
def small_tmpfs(path: Path, size: int, inodes: int | None = None):
    """Mount a tmpfs of ``size`` bytes (and at most ``inodes`` files) on ``path``
    (created); unmount it afterwards, even after a failure (lazily if something still
    holds a file open on it)."""
    if os.geteuid() != 0:
        msg = "mounting a tmpfs needs root"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: the disk-full tests must run)")
        pytest.skip(msg)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        deadline = time.monotonic() + 10
        while subprocess.run(["umount", str(path)], capture_output=True).returncode:
            if time.monotonic() > deadline:
                subprocess.run(["umount", "-l", str(path)], check=True)
                break
            time.sleep(0.1)


def fill(path: Path, leave: int = 0, name: str = "filler") -> Path:
    """Write a file into ``path`` until at most ``leave`` bytes stay free."""
    filler = Path(path) / name
    block = b"\0" * (64 << 10)
    with open(filler, "wb", buffering=0) as f:
        while free_bytes(path) > leave:
            want = min(len(block), free_bytes(path) - leave)
            try:
                f.write(block[:max(want, 4096)])
            except OSError:
                break
    return filler


def fill_inodes(path: Path) -> list[Path]:
    """Empty files in ``path`` until no more can be made (a file system out of inodes)."""
    made = []
    while True:
        f = Path(path) / f"inode-filler-{len(made)}"
        try:
            f.touch()
        except OSError:
            return made
        made.append(f)
