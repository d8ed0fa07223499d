"""The gateway's half of ``order_status`` and ``my_trades`` (ringex/protocol/reconcile.py):
database reads on a worker thread, answers queued to the connection.

A not-live order's end reaches the database a few milliseconds after the engine ended
it (the writer's batch): ``order_status`` reads again every ``RETRY_S`` until the stored
row is done, for at most ``PATIENCE_S``, then answers ``overloaded`` (the database is
behind). Without a database only live orders can be told and ``my_trades`` is refused.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson

from ringex.config import Config
from ringex.gateway.connection import Connection
from ringex.gateway.repo_worker import RepoWorker
from ringex.protocol.actions import StoreQuery
from ringex.protocol.codes import ErrorCode as E
from ringex.protocol.events import with_req_id
from ringex.protocol.messages import error
from ringex.protocol.reconcile import (
    DONE, OrderLookup, my_trades_message, order_status_message,
)
from ringex.protocol.symbols import tables_for
from ringex.storage.account_queries import account_trades, stored_order

log = logging.getLogger("ringex.gateway")

RETRY_S = 0.02
PATIENCE_S = 2.0


class Reconciler:
    def __init__(self, db_url: str | None, config: Config,
                 send: Callable[[Connection, bytes], None], spawn: Callable):
        self._t = tables_for(config)
        self._store = RepoWorker(db_url, "store") if db_url is not None else None
        self._send, self._spawn = send, spawn

    def order_status(self, conn: Connection, msg: dict) -> None:
        """Finish an order_status the engine has answered (``msg``: the session's lookup
        message with ``lookup``, ``req_id`` and ``ts``)."""
        self._spawn(self._order_status(conn, msg))

    def store_query(self, conn: Connection, q: StoreQuery) -> None:
        self._spawn(self._my_trades(conn, q))

    async def _order_status(self, conn: Connection, msg: dict) -> None:
        lookup: OrderLookup = msg["lookup"]
        account = conn.session.account
        row = None
        deadline = time.monotonic() + PATIENCE_S
        while self._store is not None:
            try:
                row = await self._store.run(stored_order, account, lookup.order_id,
                                            lookup.client_order_id)
            except Exception:
                log.exception("gateway: order_status read failed")
                return self._reply(conn, error(E.OVERLOADED, "cannot read the database now; "
                                               "retry later", msg.get("req_id")))
            if lookup.live is not None or (row is not None and row["status"] in DONE) \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(RETRY_S)
        reply = order_status_message(self._t, lookup, row)
        if reply is None:
            return self._reply(conn, error(E.UNKNOWN_ORDER, "no such order of yours",
                                           msg.get("req_id")))
        if lookup.live is None and reply["status"] not in ("filled", "cancelled"):
            return self._reply(conn, error(E.OVERLOADED, "the database has not stored this "
                                           "order's end yet; retry later", msg.get("req_id")))
        reply["ts"] = msg.get("ts", 0)
        self._reply(conn, with_req_id(reply, msg.get("req_id")))

    async def _my_trades(self, conn: Connection, q: StoreQuery) -> None:
        if self._store is None:
            return self._reply(conn, error(E.OVERLOADED, "my_trades needs the database, and "
                                           "this exchange runs without one", q.req_id))
        symbol, from_id, since_ns, limit = q.params
        account = conn.session.account
        assert account is not None               # my_trades is a private op
        try:
            rows = await self._store.run(account_trades, account, symbol, from_id,
                                         since_ns, limit)
        except Exception:
            log.exception("gateway: my_trades read failed")
            return self._reply(conn, error(E.OVERLOADED, "cannot read the database now; "
                                           "retry later", q.req_id))
        self._reply(conn, with_req_id(my_trades_message(self._t, account, symbol, rows),
                                      q.req_id))

    def _reply(self, conn: Connection, msg: dict) -> None:
        if not conn.closed:
            self._send(conn, orjson.dumps(msg))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
