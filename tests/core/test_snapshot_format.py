"""Compact snapshots (FORMAT 2): only live slots and pages are stored, and loading gives
back byte for byte the state of the engine that took them; the old full format still loads."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ringex import records
from ringex.core import snapshot_format as fmt
from ringex.core.order_book import LIVE, PAGE, PAGE_TOP
from ringex.core.order_service import OrderService
from ringex.core.snapshot import FORMAT, FORMAT_FULL, StateStore
from ringex.core.snapshot_format import config_fingerprint, digest
from ringex.errors import StorageError
from ringex.records import CommandKind as K, EventKind as E
from tests.util.exchange import rule_config

ACCOUNTS = range(1, 9)


class Flow:
    """Seeded commands that touch every part of the state: resting orders on two symbols
    spread over several level pages, client order ids, fills, IOC takers, cancels by id and
    by client id, modifies in place and repriced, cancel-alls, deposits and withdrawals.
    Order ids come from the events (``observe``)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.live: dict[int, tuple[int, int, int]] = {}     # id -> (symbol, account, coid)
        self.coid = 1

    def batch(self, n: int = 64) -> np.ndarray:
        rng, c = self.rng, records.commands(n)
        ids = list(self.live)
        for i in range(n):
            r = rng.random()
            sym, acct = int(rng.integers(0, 2)), int(rng.choice(ACCOUNTS))
            if ids and r < 0.10:
                oid = ids[int(rng.integers(len(ids)))]
                sym, acct, coid = self.live[oid]
                c[i]["kind"], c[i]["symbol"], c[i]["account"] = K.CANCEL, sym, acct
                if rng.random() < 0.5:
                    c[i]["order_id"] = oid
                else:
                    c[i]["client_order_id"] = coid
            elif ids and r < 0.18:
                oid = ids[int(rng.integers(len(ids)))]
                sym, acct, _ = self.live[oid]
                c[i]["kind"], c[i]["symbol"], c[i]["account"] = K.MODIFY, sym, acct
                c[i]["order_id"], c[i]["qty"] = oid, int(rng.integers(1, 5))
                c[i]["price"] = 500 + int(rng.integers(-300, 301))
            elif r < 0.183:
                c[i]["kind"], c[i]["account"] = K.CANCEL_ALL, acct
                c[i]["symbol"] = sym if rng.random() < 0.5 else records.ALL_SYMBOLS
            elif r < 0.20:
                kind = K.DEPOSIT if rng.random() < 0.6 else K.WITHDRAW
                c[i]["kind"], c[i]["account"], c[i]["symbol"] = kind, acct, int(rng.integers(2))
                c[i]["qty"] = int(rng.integers(1, 10**9))
            else:
                side = int(rng.integers(0, 2))
                taker = rng.random() < 0.2
                away = int(rng.geometric(0.02))
                price = 500 + (away if side else -away) * (-1 if taker else 1)
                c[i]["kind"], c[i]["symbol"], c[i]["account"] = K.NEW, sym, acct
                c[i]["side"], c[i]["price"] = side, min(max(price, 1), 1000)
                c[i]["qty"] = int(rng.integers(1, 30))
                c[i]["tif"] = 1 if taker else 0
                if rng.random() < 0.7:
                    c[i]["client_order_id"] = self.coid
                    self.coid += 1
        return c

    def observe(self, events: np.ndarray) -> None:
        for e in events:
            k, oid = int(e["kind"]), int(e["order_id"])
            if k == E.ACK:                  # other_id: the client order id
                self.live[oid] = (int(e["symbol"]), int(e["account"]), int(e["other_id"]))
            elif (k == E.FILL and int(e["leaves"]) == 0) or k == E.CANCELLED:
                self.live.pop(oid, None)


def funded(config=None) -> OrderService:
    svc = OrderService(config or rule_config())
    for acct in ACCOUNTS:
        svc.deposit(acct, "USD", 10**14)
        svc.deposit(acct, "X", 10**14)
    return svc


def run_flow(svc: OrderService, flow: Flow, batches: int) -> list[np.ndarray]:
    out = []
    for _ in range(batches):
        cmds = flow.batch()
        ev = svc.submit(cmds)
        flow.observe(ev)
        out.append(cmds)
    return out


def state_bytes(svc) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in svc.state_arrays().items()}


def busy_engine(batches: int = 120, seed: int = 1) -> tuple[OrderService, Flow]:
    svc, flow = funded(), Flow(seed)
    run_flow(svc, flow, batches)
    return svc, flow


def test_fill_values_are_what_a_new_service_holds():
    arrays = OrderService(rule_config()).state_arrays()
    n_slots, n_pages = len(arrays["book.o_id"]), len(arrays["book.page_live"])
    kinds = {}
    for name, arr in arrays.items():
        kind = fmt.kind_of(name, arr, n_slots, n_pages)
        kinds.setdefault(kind, []).append(name)
        if kind in ("pool", "pages", "sparse"):
            assert (arr == fmt.fill_of(name)).all(), name
        elif kind == "stack":
            assert np.array_equal(arr, np.arange(len(arr) - 1, -1, -1)), name
    assert len(kinds["pool"]) >= 15 and len(kinds["pages"]) == 4 and len(kinds["stack"]) == 2
    assert "book.coid_tab" in kinds["sparse"] and "wallets.locked" in kinds["sparse"]


def test_compact_snapshot_restores_identical_state_and_events(tmp_path):
    svc, flow = busy_engine()
    arrays = svc.state_arrays()
    # the state the test means to cover: resting orders on both symbols over several
    # pages, locked funds, client ids, dead slots of filled and cancelled orders
    symbols = set(arrays["book.o_symbol"][arrays["book.o_id"] != 0])
    assert svc.live_orders() > 200 and symbols == {0, 1}
    assert len(np.flatnonzero(arrays["book.page_live"])) >= 4
    assert (arrays["wallets.locked"] > 0).sum() >= 10 and arrays["book.coid_tab"].any()
    assert int(arrays["book.meta"][fmt.ORDER_SEQ]) > 2 * svc.live_orders()
    store = StateStore(tmp_path, svc.config)
    store.save_snapshot(svc, 120)
    restored = OrderService(svc.config)
    assert StateStore(tmp_path, svc.config).load_snapshot(store.snapshots()[-1][1], restored) == 120
    assert state_bytes(restored) == state_bytes(svc)
    # both go on alike: same events, same state
    for _ in range(40):
        cmds = flow.batch()
        a, b = svc.submit(cmds), restored.submit(cmds)
        assert a.tobytes() == b.tobytes()
        flow.observe(a)
    assert state_bytes(restored) == state_bytes(svc)


def test_snapshot_stores_only_what_is_in_use(tmp_path):
    config = rule_config(max_orders=200_000, max_accounts=4096, max_level_pages=2048)
    svc = funded(config)
    full = sum(a.nbytes for a in svc.state_arrays().values())
    store = StateStore(tmp_path, config)
    empty = store.capture(svc, 1).nbytes
    n = 1000
    cmds = records.commands(n)
    side, away = np.arange(n) % 2, np.arange(n) % 50
    cmds["kind"], cmds["account"], cmds["side"] = K.NEW, 1 + np.arange(n) % 8, side
    cmds["price"] = np.where(side == 0, 400 - away, 600 + away)      # never crossing
    cmds["qty"], cmds["client_order_id"] = 3, 1 + np.arange(n)
    svc.submit(cmds)
    assert svc.live_orders() == n
    busy = store.capture(svc, 2).nbytes
    assert full > 25_000_000 and empty < 5_000, (full, empty)
    assert (busy - empty) / n < 200, busy          # per resting order: its row and indexes


def test_capture_resets_dead_slots_incrementally_as_a_full_reset_would(tmp_path):
    svc, flow = busy_engine(60, seed=3)
    store = StateStore(tmp_path, svc.config)

    def copy():
        return {k: v.copy() for k, v in svc.state_arrays().items()}

    for _ in range(6):
        store.capture(svc, 0)                       # marks where the pool was clean
        run_flow(svc, flow, 15)
        incremental, full = copy(), copy()
        mark = fmt.canonicalize(incremental, store._marks[svc])
        assert mark == fmt.canonicalize(full, None)
        assert all(np.array_equal(incremental[k], full[k]) for k in full)


def test_a_free_slot_reads_back_as_new_after_a_snapshot(tmp_path):
    svc, _ = busy_engine(30, seed=4)
    svc.submit(records.batch(*[records.cancel_all(acct) for acct in (1, 2, 3)]))
    a = svc.state_arrays()
    dead = (a["book.o_id"] == 0) & (a["book.o_account"] != 0)   # slots of gone orders
    assert dead.any()
    StateStore(tmp_path, svc.config).capture(svc, 1)
    free = a["book.o_id"] == 0
    for name in ("book.o_account", "book.o_price", "book.o_leaves", "book.o_next"):
        assert (a[name][free] == fmt.fill_of(name)).all(), name
    pages, top = a["book.free_pages"], int(a["book.meta"][PAGE_TOP])
    assert np.array_equal(pages[top:], np.arange(len(pages) - 1 - top, -1, -1))
    live = a["book.o_id"] != 0
    assert live.sum() == a["book.meta"][LIVE] and (a["book.o_account"][live] > 0).all()


def write_full_format(path, svc, batch: int) -> None:
    """A snapshot as the previous ringex wrote it (FORMAT 1: every array whole)."""
    arrays = svc.state_arrays()
    meta = {"format": FORMAT_FULL, "batch": batch, "config": config_fingerprint(svc.config),
            "sha256": digest(arrays)}
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


def test_a_full_format_snapshot_still_loads(tmp_path):
    svc, flow = busy_engine(40, seed=5)
    store = StateStore(tmp_path, svc.config)
    write_full_format(store.snap_dir / f"snap-{40:020d}.npz", svc, 40)
    journal = store.open_journal(41)
    later = run_flow(svc, flow, 10)
    for cmds in later:
        journal.append(cmds)
    store.close()
    restored = OrderService(svc.config)
    rec = StateStore(tmp_path, svc.config).recover(restored)
    assert (rec.snapshot_batch, rec.snapshot_format, rec.replayed_batches) == (40, FORMAT_FULL, 10)
    assert not rec.problems and state_bytes(restored) == state_bytes(svc)
    # the next snapshot is compact, and equal again once taken (dead slots reset on both)
    again = StateStore(tmp_path, svc.config)
    again.capture(svc, 50)
    path = again.write(again.capture(restored, 50))
    assert json.loads(bytes(np.load(path)["__meta__"]))["format"] == FORMAT
    assert state_bytes(restored) == state_bytes(svc)


def test_an_unknown_format_or_a_changed_layout_is_refused_clearly(tmp_path):
    svc, _ = busy_engine(10, seed=6)
    store = StateStore(tmp_path, svc.config)
    path = store.save_snapshot(svc, 10)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays.pop("__meta__")))

    def rewrite(m):
        with open(path, "wb") as f:
            np.savez(f, __meta__=np.frombuffer(json.dumps(m).encode(), np.uint8), **arrays)

    rewrite({**meta, "format": 3})
    with pytest.raises(StorageError, match="unknown format 3 .*reads formats 1 and 2"):
        store.load_snapshot(path, OrderService(svc.config))
    layout = json.loads(json.dumps(meta["layout"]))
    layout["book.free_slots"]["prefix"] -= 1          # a flipped digit in the layout
    rewrite({**meta, "layout": layout})
    with pytest.raises(StorageError, match="checksum mismatch"):
        store.load_snapshot(path, OrderService(svc.config))


def test_loading_checks_everything_before_writing(tmp_path):
    svc, _ = busy_engine(20, seed=7)
    store = StateStore(tmp_path, svc.config)
    cap = store.capture(svc, 20)
    stored = dict(cap.stored)
    stored[fmt.SLOTS] = stored[fmt.SLOTS][::-1].copy()       # out of order
    target = funded()
    before = state_bytes(target)
    with pytest.raises(ValueError, match="out of order"):
        fmt.decode_into(target.state_arrays(), stored, cap.layout, None)
    stored = dict(cap.stored)
    stored["book.lv_qty"] = stored["book.lv_qty"][:-1]        # a page short
    with pytest.raises(ValueError, match="book.lv_qty"):
        fmt.decode_into(target.state_arrays(), stored, cap.layout, None)
    assert state_bytes(target) == before
    assert cap.stored["book.lv_qty"].shape[1] == PAGE


def test_client_ids_are_found_by_their_hash_where_a_scan_finds_them():
    svc, _ = busy_engine(60, seed=8)
    arrays = svc.state_arrays()
    found = fmt._coid_entries(arrays, np.flatnonzero(arrays["book.o_id"]))
    tab = arrays["book.coid_tab"]
    assert found is not None and len(found[0]) > 100
    assert np.array_equal(found[0], np.flatnonzero(tab))
    assert np.array_equal(found[1], tab[found[0]])
