"""What a starting engine continues from, read from the repository (docs/architecture.md §7).

Until the journal exists the database is the only memory between runs:

- balances: the ledger total of every (account, asset), loaded into the wallets as
  available funds (books are empty at start: the last clean stop cancelled every order);
- sequences: each symbol's largest stored seq (a trade's maker FILL is seq + 1), so new
  events never reuse a stored (symbol, seq) key;
- order ids: the largest stored id, so new ids are larger;
- the engine's next trade-queue batch number: after the writer's last committed one.
"""
from __future__ import annotations

from ringex.config import Config
from ringex.core.engine import ENGINE_PRODUCER, StartState


def load_start_state(repo, config: Config, transfers=()) -> StartState:
    """StartState from ``repo`` (a ringex.io.repository.Repository) plus pending transfers."""
    balances = [(int(r["account"]), int(r["asset"]), int(r["total"]))
                for r in repo.balances() if int(r["total"]) != 0]
    seqs = [0] * len(config.symbols)
    # Repository has no public query for these two yet (asked for in docs/architecture.md).
    for sql in ("SELECT symbol, MAX(seq) AS seq FROM order_events GROUP BY symbol",
                "SELECT symbol, MAX(seq) + 1 AS seq FROM trades GROUP BY symbol"):
        for r in repo._fetch(sql):
            s = int(r["symbol"])
            if 0 <= s < len(seqs):
                seqs[s] = max(seqs[s], int(r["seq"]))
    rows = repo._fetch("SELECT MAX(order_id) AS m FROM orders")
    last_order_id = int(rows[0]["m"] or 0) if rows else 0
    last_batch = repo.last_batches().get(ENGINE_PRODUCER, 0)
    return StartState(balances=balances, seqs=seqs, last_order_id=last_order_id,
                      transfers=list(transfers), first_batch=last_batch + 1)
