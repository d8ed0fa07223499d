"""The projection's hot-table rows against a plain-Python reference, over random groups.

The reference reads the events one at a time, as docs/storage.md describes the projection;
``Projector.project`` (numpy, vectorised over a batch) must give exactly its rows,
problems included, for any mix of well-formed and broken FILL pairs.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from ringex.config import Config
from ringex.records import COMMAND, EVENT, INFO_CODE_MASK, INFO_MAKER, INFO_SELL, EventKind
from ringex.storage.projection import Projector
from ringex.storage.schema import OrderStatus
from ringex.storage.trade_queue import Payload, PayloadKind

CONFIG = Config.default()
SYMBOLS = {s.id: s for s in CONFIG.symbols}
ACK, REJECT, FILL = EventKind.ACK, EventKind.REJECT, EventKind.FILL
CANCELLED, MODIFIED = EventKind.CANCELLED, EventKind.MODIFIED
ORDER_KINDS = (ACK, FILL, CANCELLED, MODIFIED)
FIELDS = EVENT.names
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def signed(v: int) -> int:
    """An unsigned 64-bit seq as the int64 column stores it."""
    return v - (1 << 64) if v >= 1 << 63 else v


def reference_events(ev: list[dict], ts: int) -> tuple[str | None, list, list]:
    """(problem, trades, order_changes) of one batch, one event at a time."""
    trades, changes = [], []
    i = 0
    while i < len(ev):
        e = ev[i]
        if e["kind"] in ORDER_KINDS and e["symbol"] not in SYMBOLS:
            return "event names an unknown symbol", [], []
        if e["kind"] == FILL:                        # a taker's FILL, its maker's next
            m = ev[i + 1] if i + 1 < len(ev) else None
            if e["info"] & INFO_MAKER or m is None or m["kind"] != FILL \
                    or not m["info"] & INFO_MAKER:
                return "FILL events are not in taker/maker pairs", [], []
            if (m["seq"] != (e["seq"] + 1) % (1 << 64) or m["symbol"] != e["symbol"]
                    or m["order_id"] != e["other_id"] or m["other_id"] != e["order_id"]
                    or m["price"] != e["price"] or m["qty"] != e["qty"]):
                return "a taker FILL and its maker FILL disagree", [], []
            s = SYMBOLS[e["symbol"]]
            notional = e["price"] * e["qty"] * s.tick_lot_value
            trades.append((s.id, signed(e["seq"]), e["price"], e["qty"], notional,
                           e["order_id"], m["order_id"], e["account"], m["account"],
                           int(bool(e["info"] & INFO_SELL)), e["leaves"], m["leaves"],
                           notional * s.taker_fee_bps // 10000,
                           notional * s.maker_fee_bps // 10000, ts))
            i += 2
            continue
        if e["kind"] in (CANCELLED, MODIFIED, REJECT) and e["seq"] != 0:
            changes.append((e["symbol"], signed(e["seq"]), e["kind"], e["order_id"],
                            e["account"], int(bool(e["info"] & INFO_SELL)), e["price"],
                            e["qty"], e["leaves"], e["info"] & INFO_CODE_MASK,
                            e["other_id"], e["session"], e["ref"], ts))
        i += 1
    return None, trades, changes


def reference_orders(ev: list[dict], ts: list[int]) -> tuple[list, list]:
    """(orders rows by order_id, whether each was ACKed in the group)."""
    orders: dict[int, dict] = {}
    for e, t in zip(ev, ts):
        if e["kind"] not in ORDER_KINDS or e["order_id"] <= 0:
            continue
        o = orders.get(e["order_id"])
        if o is None:                          # the first event names the order
            ack = e["kind"] == ACK
            o = orders[e["order_id"]] = dict(
                symbol=e["symbol"], account=e["account"], session=e["session"],
                side=int(bool(e["info"] & INFO_SELL)), acked=ack, filled=0, coid=0,
                limit_known=False, qty=e["qty"] if ack else None,
                created=(signed(e["seq"]), e["price"], e["ref"], t) if ack else (0,) * 4)
        if e["kind"] == FILL:
            o["filled"] += e["qty"]
            if not o["limit_known"]:           # a maker's fills are at its limit price
                o["price"] = e["price"]
        else:
            o["price"], o["coid"], o["limit_known"] = e["price"], e["other_id"], True
        o["leaves"], o["seq"], o["last"], o["info"] = (e["leaves"], signed(e["seq"]),
                                                      e["kind"], e["info"])
    rows, acked = [], []
    for oid in sorted(orders):
        o = orders[oid]
        if o["last"] == CANCELLED:
            status, reason = OrderStatus.CANCELLED, o["info"] & INFO_CODE_MASK
        else:
            reason = 0
            status = (OrderStatus.FILLED if o["leaves"] == 0 else
                      OrderStatus.PARTIALLY_FILLED if o["filled"] else OrderStatus.OPEN)
        qty = o["qty"] if o["acked"] else o["filled"] + o["leaves"]
        rows.append((oid, o["symbol"], o["account"], o["side"], o["price"], qty,
                     o["leaves"], o["filled"], status, reason, o["coid"], o["session"],
                     o["created"][0], o["seq"], *o["created"][1:]))
        acked.append(o["acked"])
    return rows, acked


# ---------------------------------------------------------------- random groups
_amount = st.one_of(st.integers(0, 3), st.integers(0, 10**6))
_ids = st.integers(-1, 12)                      # few ids: orders get several events
_seq = st.one_of(st.integers(0, 50), st.sampled_from([(1 << 63) - 1, (1 << 64) - 1]))
# mostly ACKs and cancels, so that orders have a history; a lone FILL (rare: it makes the
# whole batch a dead letter) is unpaired
_kind = st.sampled_from([ACK] * 15 + [CANCELLED] * 10 + [MODIFIED, REJECT] * 5
                        + [0, 7, 10] + [FILL] * 2)
_symbol = st.integers(0, 40).map(lambda i: {39: 3, 40: 65535}.get(i, i % len(SYMBOLS)))


@st.composite
def _event(draw, kind=None) -> dict:
    return dict(
        seq=draw(_seq), order_id=draw(_ids), other_id=draw(_ids),
        price=draw(_amount), qty=draw(_amount),
        leaves=draw(st.integers(0, 10)), account=draw(st.integers(0, (1 << 32) - 1)),
        session=draw(st.integers(0, 3)), ref=draw(st.integers(0, (1 << 32) - 1)),
        symbol=draw(_symbol), info=draw(st.integers(0, 255)),
        kind=draw(_kind) if kind is None else kind)


@st.composite
def _fill_pair(draw) -> list[dict]:
    """A taker FILL and its maker's; sometimes one field of the maker is off."""
    t = draw(_event(FILL))
    t["info"] &= ~INFO_MAKER
    m = dict(t, seq=(t["seq"] + 1) % (1 << 64), order_id=t["other_id"],
             other_id=t["order_id"], account=draw(st.integers(0, 1000)),
             leaves=draw(st.integers(0, 10)), info=(t["info"] ^ INFO_SELL) | INFO_MAKER)
    broken = draw(st.sampled_from(["seq", "symbol", "order_id", "other_id", "price", "qty",
                                   "info", "kind"] + [None] * 72))
    if broken:
        m[broken] = {"info": m["info"] & ~INFO_MAKER, "kind": CANCELLED}.get(
            broken, m[broken] ^ 1)
    return [t, m]


_batch = st.lists(st.one_of(_event().map(lambda e: [e]), _fill_pair()), max_size=30).map(
    lambda items: [e for item in items for e in item])


def _payload(ev: list[dict], batch: int, ts: int) -> Payload:
    arr = np.array([tuple(e[f] for f in FIELDS) for e in ev], EVENT) if ev else \
        np.zeros(0, EVENT)
    return Payload(PayloadKind.EVENTS, 0, batch, ts, np.zeros(0, COMMAND), arr, arr.nbytes)


@SETTINGS
@given(st.lists(st.tuples(_batch, st.integers(0, 1 << 62)), min_size=1, max_size=3))
def test_the_projection_gives_the_reference_rows(batches):
    rows = Projector(CONFIG).project(
        [_payload(ev, b + 1, ts) for b, (ev, ts) in enumerate(batches)])
    problems, trades, changes, kept, stamps = [], [], [], [], []
    for ev, ts in batches:
        problem, t, c = reference_events(ev, ts)
        if problem:
            problems.append(problem)
            continue
        trades += t
        changes += c
        kept += ev
        stamps += [ts] * len(ev)
    orders, acked = reference_orders(kept, stamps)
    assert [d[2] for d in rows.dead_letters] == problems
    assert rows.trades.tolist() == trades
    assert rows.order_changes.tolist() == changes
    assert rows.orders.tolist() == orders
    assert rows.orders_new.tolist() == acked
