"""The SQLite stage image (ringex/storage/sqlite_image.py): SQLite reads back exactly the rows."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from ringex.storage.sqlite_image import MAX_ROWS, StageImage, _Cells, _widths

TABLES = {"wide": [f"c{i}" for i in range(17)], "narrow": ["a", "b"], "empty": ["x"]}


def _read(img, table, ncols):
    db = sqlite3.connect(":memory:")
    db.deserialize(img)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    return np.array(rows, np.int64).reshape(-1, ncols)


@pytest.fixture(scope="module")
def image():
    return StageImage(TABLES)


def _wide(n, seed=7):
    """17 columns needing 0, 1, 2, 3, 4, 6 and 8 bytes, with their boundary values."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-2**63, 2**63 - 1, (n, 17), dtype=np.int64, endpoint=True)
    for c, w in enumerate((0, 1, 2, 3, 4, 6, 1)):
        lo, hi = (0, 0) if w == 0 else (-(1 << (8 * w - 1)), (1 << (8 * w - 1)) - 1)
        a[:, c] = rng.integers(lo, hi, n, endpoint=True)
        if n >= 2:
            a[:2, c] = (lo, hi)
    a[:, 6] += 128 * (n >= 3)                       # one value past 1 byte: needs 2
    if n:
        a[0, 7:9] = (-2**63, 2**63 - 1)
    return a


@pytest.mark.parametrize("n", [0, 1, 2, "per_leaf", "per_leaf+1", 5_000])
def test_should_read_back_every_row_and_value(image, n):
    per_leaf = _Cells(_wide(10)).per_leaf
    n = {"per_leaf": per_leaf, "per_leaf+1": per_leaf + 1}.get(n, n)
    wide = _wide(n)
    narrow = np.random.default_rng(1).integers(-3, 3, (2 * n + 1, 2), dtype=np.int64)
    img = image.build({"wide": wide, "narrow": narrow})
    assert (_read(img, "wide", 17) == wide).all()
    assert (_read(img, "narrow", 2) == narrow).all()
    assert len(_read(img, "empty", 1)) == 0


def test_should_give_each_column_the_fewest_bytes():
    assert _widths(_wide(100))[0] == [0, 1, 2, 4, 4, 8, 2] + [8] * 10


def test_should_refuse_more_rows_than_one_image(image):
    with pytest.raises(ValueError, match="do not fit one stage image"):
        image.build({"empty": np.zeros((MAX_ROWS + 1, 1), np.int64)})
