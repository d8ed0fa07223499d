"""Engine EVENT records addressed to one session -> its private wire messages.

Used by :class:`~ringex.protocol.session.Session`; routing (is this event for this
session and account?) is checked there, before these methods run.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import cast

from ringex.config import Symbol
from ringex.protocol.codes import (
    CANCEL_REASONS, REJECT_CODES, UNKNOWN_REASON, UNKNOWN_REJECT, reject_message,
)
from ringex.protocol.messages import SIDE_NAMES, order_fields
from ringex.protocol.client_ids import unpack_client_id
from ringex.protocol.client_texts import ClientIdTexts
from ringex.protocol.pending import BARRIER, PendingRequests, Request
from ringex.protocol.reconcile import OrderLookup
from ringex.protocol.symbols import SymbolInfo, Tables
from ringex.records import INFO_CODE_MASK, INFO_MAKER, INFO_SELL, EventKind as EK

FeeFn = Callable[[Symbol, int, int, bool], int]
TRANSFER_OPS = ("deposit", "withdraw")     # admin ops answered by one BALANCE (or REJECT)
LOOKUP = "_order_lookup"        # not a wire message: an order_status ("lookup"), or a
                                # reply naming long client ids the gateway does not know
                                # ("resolve"), for the gateway to finish from the database


class EngineClock:
    """The engine time (ns since the epoch) of the group whose events are being read,
    from the CLOCK record before them; one per gateway, shared by its sessions: every
    message made from an engine event carries it as ``ts``."""

    __slots__ = ("ts",)

    def __init__(self) -> None:
        self.ts = 0


def trade_id(fill_seq: int, maker: bool) -> int:
    """A trade's id: its taker FILL's seq, which the public ``trade`` carries too; the
    matcher emits the maker's FILL right after the taker's (docs/rules.md)."""
    return fill_seq - 1 if maker else fill_seq


def with_req_id(msg: dict, req_id: object) -> dict:
    if req_id is not None:
        msg["req_id"] = req_id
    return msg


class EventTranslator:
    """Turns event tuples into messages; owns the session's order map."""

    def __init__(self, tables: Tables, pending: PendingRequests, fill_fee: FeeFn,
                 ack_times: tuple[Callable[[], int], Callable[[int], None]] | None = None,
                 engine_clock: EngineClock | None = None,
                 client_ids: ClientIdTexts | None = None):
        """``ack_times``: (clock, record) to time each place to its ack or reject;
        ``engine_clock``: the gateway's (a fresh one, ts 0, when None); ``client_ids``:
        the gateway's texts of long client ids (a private one when None)."""
        self._engine_clock = engine_clock if engine_clock is not None else EngineClock()
        self._t = tables
        self._ack_times = ack_times
        self._pending = pending
        self._fee = fill_fee
        self._texts = client_ids if client_ids is not None else ClientIdTexts()
        # live orders of this session: order_id -> (symbol id, client_order_id, side).
        # FILL events do not carry the client id; this map does.
        self.orders: dict[int, tuple[int, str | None, str]] = {}
        self._keys: dict[int, tuple[int, int]] = {}   # remembered: order -> (account, key)

    def messages(self, ev: tuple) -> list[dict]:
        """``ev``: ``EVENT.item()`` of an event already known to be this session's. Each
        message gets the engine's ``ts``."""
        out = self._messages(ev)
        if out:
            ts = self._engine_clock.ts
            for m in out:
                m["ts"] = ts
        return out

    def _messages(self, ev: tuple) -> list[dict]:
        seq, order_id, other_id, price, qty, leaves, account, _, ref, symbol, kind, info = ev
        request = self._pending.get(ref)
        if request is not None and request.op == BARRIER:
            return self._barrier_done(ref)
        s = self._t.symbols.get(symbol)
        if kind == EK.REJECT:
            # only an event that names a symbol has a sequence (docs/rules.md)
            return [self._reject(ref, request, s if seq else None, order_id,
                                 self._texts.text(account, other_id), info & INFO_CODE_MASK)]
        if kind == EK.BALANCE:
            return self._balance(ref, request, symbol, qty, leaves, ev[6])
        if s is None:
            return []
        sell = bool(info & INFO_SELL)
        if kind == EK.FILL:
            return [self._fill(s, seq, order_id, sell, price, qty, leaves,
                               bool(info & INFO_MAKER))]
        cid = unpack_client_id(other_id) if other_id >= 0 else \
            self._long_client_id(account, order_id, other_id)
        if kind == EK.ACK:
            self.orders[order_id] = (symbol, cid, SIDE_NAMES[sell])
            msg = {"type": "ack", **order_fields(s, order_id, cid, sell, price, qty)}
            return [self._direct(msg, ref, request, "place")]
        if kind == EK.CANCELLED:
            self.orders.pop(order_id, None)
            self._keys.pop(order_id, None)
            msg = {"type": "cancelled", **order_fields(s, order_id, cid, sell, price, qty),
                   "reason": CANCEL_REASONS.get(info & INFO_CODE_MASK, UNKNOWN_REASON)}
            return [self._direct_text(msg, ref, request, "cancel", cid, other_id)]
        if kind == EK.MODIFIED:
            msg = {"type": "modified", **order_fields(s, order_id, cid, sell, price, qty),
                   "leaves": s.qty.format(leaves)}
            return [self._direct_text(msg, ref, request, "modify", cid, other_id)]
        if kind == EK.OPEN_ORDER and request is not None and request.op == "open_orders":
            # an open_orders request gathers into a list (Session._send); a long id this
            # gateway does not know stays its int key until the gateway reads its text
            cast(list, request.items).append(order_fields(
                s, order_id, other_id if cid is None and other_id < 0 else cid, sell, price,
                qty))
        elif kind == EK.OPEN_ORDER and request is not None and request.op == "order_status":
            cast(OrderLookup, request.items).offer(symbol, order_id, other_id, sell, price,
                                                   leaves)
        return []

    def _long_client_id(self, account: int, order_id: int, key: int) -> str | None:
        """The text of an order's long client id: learnt by the gateway, or kept with
        this session's live order; None when neither knows it."""
        text = self._texts.text(account, key)
        if text is None:
            entry = self.orders.get(order_id)
            return entry[1] if entry is not None else None
        return text

    def remember(self, ev: tuple) -> None:
        """An OPEN_ORDER of the account (an ``open_orders`` answer): from now on its
        fills name its client id too, though this translator never saw its ack. A long
        id the gateway does not know yet is kept as its key, looked up at the fill (the
        gateway reads it from the database before it answers the open_orders)."""
        _, order_id, other_id, _, _, _, account, _, _, symbol, _, info = ev
        if order_id not in self.orders:
            cid = unpack_client_id(other_id) if other_id >= 0 else \
                self._texts.text(account, other_id)
            self.orders[order_id] = (symbol, cid, SIDE_NAMES[bool(info & INFO_SELL)])
            if cid is None and other_id < 0:
                self._keys[order_id] = (account, other_id)

    def _fill(self, s: SymbolInfo, seq, order_id, sell, price, qty, leaves, maker) -> dict:
        entry = self.orders.get(order_id)
        cid = entry[1] if entry else None
        if cid is None and order_id in self._keys:
            cid = self._texts.text(*self._keys[order_id])
        if leaves == 0:
            self.orders.pop(order_id, None)
            self._keys.pop(order_id, None)
        return {"type": "fill", "seq": seq, "trade_id": trade_id(seq, maker),
                **order_fields(s, order_id, cid, sell, price, qty),
                "leaves": s.qty.format(leaves),
                "liquidity": "maker" if maker else "taker",
                "fee": s.fee.format(self._fee(s.symbol, price, qty, maker)),
                "fee_asset": s.symbol.quote.name}

    def _direct_text(self, msg: dict, ref: int, request: Request | None, op: str,
                     cid: str | None, key: int) -> dict:
        """``_direct``; a direct reply naming a long id this gateway does not know (an
        order placed before a restart, cancelled or modified by ``order_id``) goes to the
        gateway to read the text first. A push goes as it is (null)."""
        direct = request is not None and request.op == op
        msg = self._direct(msg, ref, request, op)
        if direct and cid is None and key < 0:
            msg["client_order_id"] = key
            return {"type": LOOKUP, "resolve": msg}
        return msg

    def _direct(self, msg: dict, ref: int, request: Request | None, op: str) -> dict:
        """Add ``req_id`` when ``msg`` is the direct reply to a pending ``op``."""
        if request is not None and request.op == op:
            self._pending.pop(ref)
            if op == "place" and self._ack_times is not None:
                self._time_ack(request)
            if request.recv_ts:
                msg["recv_ts"] = request.recv_ts
            return with_req_id(msg, request.req_id)
        return msg

    def _time_ack(self, request: Request) -> None:
        clock, record = cast(tuple, self._ack_times)
        record(clock() - request.sent_ns)

    def _reject(self, ref, request, s, order_id, client_id, code) -> dict:
        wire = REJECT_CODES.get(code, UNKNOWN_REJECT)
        op = request.op if request is not None else None
        msg = {"type": "reject", "code": wire, "message": reject_message(wire, op),
               "op": None, "symbol": s.name if s else None, "order_id": order_id or None,
               "client_order_id": client_id}
        if request is not None:
            self._pending.pop(ref)
            if request.op == "place" and self._ack_times is not None:
                self._time_ack(request)
            msg["op"] = request.op
            if request.recv_ts:
                msg["recv_ts"] = request.recv_ts
            with_req_id(msg, request.req_id)
        return msg

    def _balance(self, ref, request, asset_id, available, locked, account) -> list[dict]:
        asset = self._t.assets.get(asset_id)
        if request is None or asset is None:
            return []
        if request.op in TRANSFER_OPS:
            self._pending.pop(ref)
            unit = asset.unit
            return [with_req_id({"type": request.op, "account": account,
                                 "asset": asset.asset.name, "amount": unit.format(request.items[1]),
                                 "available": unit.format(available),
                                 "locked": unit.format(locked)}, request.req_id)]
        if request.op != "balances":
            return []
        request.items[asset.asset.name] = {"available": asset.unit.format(available),
                                           "locked": asset.unit.format(locked)}
        if len(request.items) < len(self._t.assets):
            return []
        self._pending.pop(ref)
        return [with_req_id({"type": "balances", "balances": request.items}, request.req_id)]

    def _barrier_done(self, ref: int) -> list[dict]:
        target = self._pending.close_barrier(ref)
        if target is None:
            return []
        if target.op == "order_status":
            # the engine's part: the gateway finishes it (Session.order_lookup)
            msg = {"type": LOOKUP, "lookup": target.items}
        elif target.op == "open_orders":
            msg = {"type": "open_orders", "orders": target.items}
            if any(type(o["client_order_id"]) is int for o in cast(list, target.items)):
                return [{"type": LOOKUP, "resolve": with_req_id(msg, target.req_id)}]
        else:
            s = self._t.symbols.get(cast(int, target.items))     # cancel_all: a symbol id
            msg = {"type": "cancel_all", "symbol": s.name if s else None}
        return [with_req_id(msg, target.req_id)]
