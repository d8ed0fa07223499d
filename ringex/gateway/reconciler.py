"""The gateway's half of ``order_status`` and ``my_trades`` (ringex/protocol/reconcile.py),
and of a reply that names long client ids the gateway does not know (``open_orders``, a
``cancelled`` or ``modified`` by ``order_id``): database reads on a worker thread,
answers queued to the connection.

A not-live order's end reaches the database a few milliseconds after the engine ended
it (the writer's batch): ``order_status`` reads again every ``RETRY_S`` until the stored
row is done, for at most ``PATIENCE_S``, then answers ``overloaded`` (the database is
behind). The text of a long client id (the ``client_ids`` table) is read the same way,
when the gateway's ``ClientIdTexts`` lacks it (after a restart, or for an order placed
through another gateway), and taught to it. Without a database only live orders can be
told, unknown long ids show as null, and ``my_trades`` is refused.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

import orjson

from ringex.config import Config
from ringex.gateway.connection import Connection
from ringex.gateway.repo_worker import RepoWorker
from ringex.protocol.actions import StoreQuery
from ringex.protocol.client_texts import ClientIdTexts
from ringex.protocol.codes import ErrorCode as E
from ringex.protocol.events import with_req_id
from ringex.protocol.messages import error
from ringex.protocol.reconcile import (
    DONE, OrderLookup, answer_key, my_trades_message, order_status_message,
)
from ringex.protocol.symbols import tables_for
from ringex.storage.account_queries import account_trades, client_texts, stored_order

log = logging.getLogger("ringex.gateway")

RETRY_S = 0.02
PATIENCE_S = 2.0


class Reconciler:
    def __init__(self, db_url: str | None, config: Config,
                 send: Callable[[Connection, bytes], None], spawn: Callable,
                 client_ids: ClientIdTexts | None = None):
        self._t = tables_for(config)
        self._texts = client_ids if client_ids is not None else ClientIdTexts()
        self._store = RepoWorker(db_url, "store") if db_url is not None else None
        self._send, self._spawn = send, spawn

    def order_status(self, conn: Connection, msg: dict) -> None:
        """Finish an order_status the engine has answered (``msg``: the session's lookup
        message with ``lookup``, ``req_id`` and ``ts``)."""
        self._spawn(self._order_status(conn, msg))

    def resolve(self, conn: Connection, msg: dict) -> None:
        """Send a reply once the texts of its long client ids are known (``msg``: the
        session's lookup message with the reply in ``resolve`` and ``ts``; an unknown id
        is still its int key in the reply)."""
        self._spawn(self._resolve(conn, msg))

    def store_query(self, conn: Connection, q: StoreQuery) -> None:
        self._spawn(self._my_trades(conn, q))

    async def _order_status(self, conn: Connection, msg: dict) -> None:
        lookup: OrderLookup = msg["lookup"]
        account = cast(int, conn.session.account)      # order_status is a private op
        texts = self._texts
        row = None
        deadline = time.monotonic() + PATIENCE_S
        while self._store is not None:
            try:
                row = await self._store.run(stored_order, account, lookup.order_id,
                                            lookup.client_order_id)
                key = answer_key(lookup, row)
                if key is not None and texts.missing(account, key):
                    await self._learn(account, [key])
            except Exception:
                log.exception("gateway: order_status read failed")
                return self._reply(conn, error(E.OVERLOADED, "cannot read the database now; "
                                               "retry later", msg.get("req_id")))
            found = lookup.live is not None or (row is not None and row["status"] in DONE)
            if (found and not (key is not None and texts.missing(account, key))) \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(RETRY_S)
        key = answer_key(lookup, row)
        if key is not None and self._store is not None and texts.missing(account, key):
            return self._reply(conn, error(E.OVERLOADED, "the database has not stored this "
                                           "order's client_order_id yet; retry later",
                                           msg.get("req_id")))
        reply = order_status_message(self._t, lookup, row,
                                     lambda k: texts.text(account, k))
        if reply is None:
            return self._reply(conn, error(E.UNKNOWN_ORDER, "no such order of yours",
                                           msg.get("req_id")))
        if lookup.live is None and reply["status"] not in ("filled", "cancelled"):
            return self._reply(conn, error(E.OVERLOADED, "the database has not stored this "
                                           "order's end yet; retry later", msg.get("req_id")))
        reply["ts"] = msg.get("ts", 0)
        self._reply(conn, with_req_id(reply, msg.get("req_id")))

    async def _resolve(self, conn: Connection, msg: dict) -> None:
        reply = msg["resolve"]
        req_id = reply.get("req_id")
        orders = reply["orders"] if reply["type"] == "open_orders" else [reply]
        account = cast(int, conn.session.account)
        deadline = time.monotonic() + PATIENCE_S
        while True:
            missing = self._fill_texts(account, orders)
            if not missing or self._store is None or time.monotonic() > deadline:
                break
            try:
                await self._learn(account, missing)
            except Exception:
                log.exception("gateway: client id read failed")
                return self._reply(conn, error(E.OVERLOADED, "cannot read the database now; "
                                               "retry later", req_id))
            if self._fill_texts(account, orders):
                await asyncio.sleep(RETRY_S)        # placed moments ago: not stored yet
        if missing and self._store is not None:
            return self._reply(conn, error(E.OVERLOADED, "the database has not stored a "
                                           "client_order_id yet; retry later", req_id))
        for o in orders:
            if type(o["client_order_id"]) is int:   # no database to ask
                o["client_order_id"] = None
        reply["ts"] = msg.get("ts", 0)
        self._reply(conn, reply)

    def _fill_texts(self, account: int, orders: list[dict]) -> list[int]:
        """Put the known texts in place of the int keys; returns the keys still unknown."""
        missing = []
        for o in orders:
            key = o["client_order_id"]
            if type(key) is int:
                text = self._texts.text(account, key)
                if text is None:
                    missing.append(key)
                else:
                    o["client_order_id"] = text
        return missing

    async def _learn(self, account: int, keys: list[int]) -> None:
        """Read the texts of the account's long client ids ``keys`` from the database and
        teach them to the gateway (those it has)."""
        store = cast(RepoWorker, self._store)
        found = await store.run(client_texts, account, sorted(set(keys)))
        for key, text in found.items():
            self._texts.learn(account, key, text)

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
