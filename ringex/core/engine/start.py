"""What a starting engine continues from when its data dir has no journal yet.

The journal plus snapshots are the engine's memory between runs (``ringex.core.snapshot``);
on a data dir without them (the first run, or one from before the journal existed) the
database is all there is:

- balances: the ledger total of every (account, asset), loaded into the wallets as
  available funds (books start empty);
- sequences: each symbol's largest stored seq, so new events never reuse a stored
  (symbol, seq) key;
- order ids: the largest stored id, so new ids are larger;
- the engine's next trade-queue batch number: after the writer's last committed one.

Pending deposits and withdrawals (stored while no exchange ran) ride along as
``transfers``: the engine applies them as its first batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ringex.config import Config

ENGINE_PRODUCER = 0          # the matcher's trade-queue producer id (gateway i: 1 + i)


@dataclass
class StartState:
    """What the engine continues from (read from the repository by the supervisor)."""
    balances: list[tuple[int, int, int]] = field(default_factory=list)  # account, asset, units
    seqs: list[int] = field(default_factory=list)       # last sequence per symbol id
    last_order_id: int = 0                              # new ids are larger
    transfers: list[tuple[int, int, int, int]] = field(default_factory=list)
    # pending (CommandKind.DEPOSIT|WITHDRAW, account, asset id, minor units), applied first
    first_batch: int = 1                                # trade-queue batch number to start at


def load_start_state(repo, config: Config, transfers=(), *, from_database: bool = True
                     ) -> StartState:
    """StartState from ``repo`` (a ``ringex.storage.repository.Repository``) plus pending
    transfers (``(CommandKind, account, asset id, units)``).

    ``from_database=False`` when the engine continues from its own snapshots and journal
    (``state_layout.has_engine_state``): balances, sequences and the last order id are then
    left out, as the engine would not use them, and reading them scans the whole ledger
    and every event table (0.8 s for a 60 MB database)."""
    first_batch = repo.last_batches().get(ENGINE_PRODUCER, 0) + 1
    if not from_database:
        return StartState(transfers=list(transfers), first_batch=first_batch)
    balances = [(int(r["account"]), int(r["asset"]), int(r["total"]))
                for r in repo.balances() if int(r["total"]) != 0]
    stored = repo.last_sequences()
    seqs = [stored.get(s.id, 0) for s in config.symbols]
    return StartState(balances=balances, seqs=seqs, last_order_id=repo.last_order_id(),
                      transfers=list(transfers), first_batch=first_batch)
