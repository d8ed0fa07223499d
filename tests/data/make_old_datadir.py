"""Make a data-dir archive with the ringex of the current directory (an old checkout):
two funded accounts, a trade, two resting buys and a resting ask, then a clean stop.

    cd /tmp/old && python <repo>/tests/data/make_old_datadir.py <rev> <out.tar.gz>

``made.json`` in the archive says what it holds (API keys, order ids, the buyer's
totals); tests/e2e/test_old_data_dir.py checks a new ringex against it.
"""
from __future__ import annotations

import json
import shutil
import sys
import tarfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, ".")        # the old checkout's ringex and test rig

from ringex.client import Fill, connect  # noqa: E402
from tests.faults.rig import Run, Seen, fund, make_accounts, run_async  # noqa: E402


async def _trade(url: str, buyer_key: str, seller_key: str):
    buyer, seller = await connect(url, buyer_key), await connect(url, seller_key)
    try:
        rest = []
        for px in ("99.50", "99.60"):
            r = await buyer.place("BTC-USD", "buy", Decimal("0.0100"), Decimal(px),
                                  client_order_id=f"o{px}")
            rest.append(r.order_id)
        ask = await seller.place("BTC-USD", "sell", Decimal("0.0200"), Decimal("100.50"))
        await seller.place("BTC-USD", "sell", Decimal("0.0040"), Decimal("99.60"))
        await buyer.next_event(Fill)                 # the trade reached the buyer
        bal = await buyer.balances()
        return rest, ask.order_id, {k: str(v.available + v.locked) for k, v in bal.items()}
    finally:
        await buyer.close()
        await seller.close()


def main(rev: str, out: Path) -> None:
    work = Path("/tmp/old-datadir")
    shutil.rmtree(work, ignore_errors=True)
    run = Run(work / "data", db=str(work / "data" / "ringex.db"))
    run.start()
    try:
        keys = make_accounts(run, 2)
        run_async(fund(run, keys, Seen()))
        (a, ka), (b, kb) = sorted(keys.items())
        rest, ask, totals = run_async(_trade(run.url, ka, kb))
        assert run.stop() == 0, run.log()
    finally:
        run.cleanup()
    for log in (work / "data").glob("run-*.log"):
        log.unlink()
    meta = {"rev": rev, "keys": {str(a): ka, str(b): kb}, "buyer": a, "seller": b,
            "resting_buys": rest, "resting_ask": ask, "buyer_totals": totals}
    (work / "data" / "made.json").write_text(json.dumps(meta, indent=1))
    with tarfile.open(out, "w:gz") as t:
        t.add(work / "data", arcname="data")
    print(json.dumps(meta))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
