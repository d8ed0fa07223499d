"""A data dir written by an earlier ringex (tests/data/datadir-68c12eb.tar.gz: journal,
snapshots and SQLite database from before the schema versions, the engine clock and
BALANCE causes) starts under today's ``ringex run``: the database is migrated in place,
the engine recovers the old state exactly, and trading goes on (docs/storage.md)."""
from __future__ import annotations

import json
import sqlite3
import tarfile
from decimal import Decimal
from pathlib import Path

import pytest

from ringex.client import Ack, Fill, connect
from ringex.storage.schema_version import SCHEMA_VERSION
from tests.faults.rig import Run, run_async

DATA = Path(__file__).resolve().parents[1] / "data" / "datadir-68c12eb.tar.gz"


@pytest.mark.timeout(240)
def test_a_data_dir_of_the_previous_release_starts_migrated_and_trades_on(tmp_path):
    with tarfile.open(DATA) as t:
        t.extractall(tmp_path, filter="data")
    data = tmp_path / "data"
    made = json.loads((data / "made.json").read_text())
    with sqlite3.connect(data / "ringex.db") as db:      # before: no schema_version
        assert not db.execute("SELECT name FROM sqlite_master "
                              "WHERE name = 'schema_version'").fetchall()
    run = Run(data)
    try:
        run.start()
        buyer, seller = str(made["buyer"]), str(made["seller"])

        async def go():
            a = await connect(run.url, made["keys"][buyer])
            b = await connect(run.url, made["keys"][seller])
            try:
                live = sorted(o.order_id for o in await a.open_orders())
                assert live == sorted(made["resting_buys"])
                totals = {k: str(v.available + v.locked) for k, v in (await a.balances())
                          .items()}
                assert totals == made["buyer_totals"]
                # the old resting ask trades with a new order, the old buys with a new sell
                took = await a.place("BTC-USD", "buy", Decimal("0.0010"), Decimal("100.50"))
                assert isinstance(took, Ack)
                fill = await a.next_event(Fill)
                assert fill.trade_id > 0 and fill.ts >= took.ts > 0
                sold = await b.place("BTC-USD", "sell", Decimal("0.0010"), Decimal("99.50"))
                assert isinstance(sold, Ack) and sold.order_id > max(made["resting_buys"])
            finally:
                await a.close()
                await b.close()
        run_async(go())
        assert run.stop() == 0, run.log()
        with run.repo() as repo:
            versions = [r["version"] for r in repo._fetch("SELECT version FROM "
                                                          "schema_version ORDER BY version")]
            assert versions == list(range(2, SCHEMA_VERSION + 1))
            # the old rows read as before: the trade made by the old run is still there
            assert len(repo._fetch("SELECT * FROM trades")) >= 2
    finally:
        run.cleanup()
