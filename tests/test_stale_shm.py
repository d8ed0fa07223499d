"""The start-up sweep of shared memory left by runs that are gone (ringex.ops.stale_shm)."""
import multiprocessing
import os

from ringex.ops import stale_shm


def _dead_pid() -> int:
    p = multiprocessing.get_context("spawn").Process(target=os.getpid)
    p.start()
    p.join()
    return p.pid


def test_removes_only_the_segments_of_processes_that_are_gone(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    names = {f"ringex-{dead}-ab12-g0-cmd": 4096, f"ringex-{dead}x3-ring-0": 100,
             f"ringex-{live}-cd34-md": 10, "ringex-notapid-x": 1, "other-123-x": 1}
    for name, size in names.items():
        (tmp_path / name).write_bytes(b"\0" * size)
    assert stale_shm.stale_segments(str(tmp_path)) == sorted(
        [f"ringex-{dead}-ab12-g0-cmd", f"ringex-{dead}x3-ring-0"])
    removed, nbytes = stale_shm.sweep(str(tmp_path))
    assert sorted(removed) == sorted([f"ringex-{dead}-ab12-g0-cmd", f"ringex-{dead}x3-ring-0"])
    assert nbytes == 4196
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"ringex-{live}-cd34-md", "ringex-notapid-x", "other-123-x"])


def test_keeps_segments_of_another_users_live_process(tmp_path):
    (tmp_path / "ringex-1-ab12-md").write_bytes(b"x")     # pid 1: alive, not ours
    assert stale_shm.sweep(str(tmp_path)) == ([], 0)
    assert os.listdir(tmp_path) == ["ringex-1-ab12-md"]


def test_an_empty_or_missing_folder_has_nothing_stale(tmp_path):
    assert stale_shm.sweep(str(tmp_path)) == ([], 0)
    assert stale_shm.stale_segments(str(tmp_path / "missing")) == []
