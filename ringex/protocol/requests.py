"""Validate one decoded request and turn it into COMMAND fields (docs/protocol.md).

Pure functions over a :class:`Tables`; each raises :class:`Refused` with a stable
code at the first problem, in the order the doc's validation table lists. Nothing here
knows the account: the session adds account, session and ref (never the message).
"""
from __future__ import annotations

import math
import struct

import numpy as np
import orjson

from ringex.protocol.codes import ErrorCode as E, Refused
from ringex.protocol.book_views import DEPTHS
from ringex.protocol.client_ids import TEXT_BYTES, pack_client_id
from ringex.protocol.symbols import SymbolInfo, Tables
from ringex.units import MAX_DECIMAL_CHARS, parse_decimal
from ringex.records import (
    CMD_POST_ONLY, COMMAND, INT64_MAX, U32_MAX, CommandKind, OrderType,
    SelfTradePrevention as STP, Side, TimeInForce as TIF,
)

# wire name -> engine value, as plain ints (IntEnum members are slow on the hot path)
SIDES = {"buy": int(Side.BUY), "sell": int(Side.SELL)}
TYPES = {"limit": int(OrderType.LIMIT), "market": int(OrderType.MARKET)}
TIFS = {"gtc": int(TIF.GTC), "ioc": int(TIF.IOC), "fok": int(TIF.FOK)}
STPS = {"none": int(STP.NONE), "cancel_taker": int(STP.CANCEL_TAKER),
        "cancel_maker": int(STP.CANCEL_MAKER), "cancel_both": int(STP.CANCEL_BOTH)}
LIMIT, MARKET, GTC, IOC = TYPES["limit"], TYPES["market"], TIFS["gtc"], TIFS["ioc"]
DEFAULT_STP = STPS["cancel_taker"]
CHANNELS = ("book", "trades", "orders")     # orders: the account's own, no symbol
MAX_REQ_ID_CHARS = 64
MAX_API_KEY_CHARS = 256

_COMMON = ("op", "req_id")
FIELDS: dict[str, frozenset[str]] = {op: frozenset(_COMMON + extra) for op, extra in {
    "place": ("symbol", "side", "type", "price", "qty", "tif", "post_only",
              "client_order_id", "stp"),
    "cancel": ("symbol", "order_id", "client_order_id"),
    "modify": ("symbol", "order_id", "price", "qty"),
    "cancel_all": ("symbol",),
    "balances": (),
    "open_orders": (),
    "subscribe": ("channel", "symbol", "symbols", "resync", "depth"),
    "unsubscribe": ("channel", "symbol", "symbols"),
    "order_status": ("order_id", "client_order_id"),
    "my_trades": ("symbol", "from_trade_id", "since_ts", "limit"),
    "login": ("api_key", "cancel_on_disconnect"),
    "ping": (),
    "deposit": ("account", "asset", "amount"),
    "withdraw": ("account", "asset", "amount"),
}.items()}
ADMIN_OPS = frozenset({"deposit", "withdraw"})
PRIVATE_OPS = frozenset({"place", "cancel", "modify", "cancel_all", "balances",
                         "open_orders", "order_status", "my_trades"}) | ADMIN_OPS


# The integers the JSON parser (orjson) keeps exact; it reads a larger integer literal
# as a float, so such a value can no longer be shown as the client wrote it.
JSON_INT_MIN, JSON_INT_MAX = -2**63, 2**64 - 1
MAX_ORDER_ID = INT64_MAX
MAX_ACCOUNT = U32_MAX
BEYOND_64_BITS = "a number beyond the 64-bit range"


def show(value: object) -> str:
    """A short rendering of a client value for an error message, spelled as JSON
    (``true``, ``null``, ``"7"``). A float of integer size beyond 64 bits is named, not
    shown: the parser rounded it (2**70 arrives as 1.1805916207174113e+21)."""
    if type(value) is float and (not math.isfinite(value) or abs(value) >= 2**63):
        return BEYOND_64_BITS
    try:
        text = orjson.dumps(value).decode()
    except TypeError:                       # not a JSON value (never from a frame)
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def valid_req_id(value: object) -> bool:
    t = type(value)
    return (t is int or (t is str and len(value) <= MAX_REQ_ID_CHARS))  # type: ignore[arg-type]


def bad_req_id(value: object) -> str:
    """The error message for a ``req_id`` that ``valid_req_id`` refused."""
    return (f"req_id must be an integer from {JSON_INT_MIN} to {JSON_INT_MAX} or a string "
            f"of at most {MAX_REQ_ID_CHARS} characters, not {show(value)}")


def check_fields(msg: dict, op: str) -> None:
    extra = msg.keys() - FIELDS[op]
    if extra:
        name = min(extra)
        raise Refused(E.UNKNOWN_FIELD, f"{op} does not take the field {show(name)}")


# ---------------------------------------------------------------- field readers
def required(msg: dict, name: str) -> object:
    value = msg.get(name)
    if value is None:
        raise Refused(E.MISSING_FIELD, f"missing field {show(name)}")
    return value


def symbol_field(msg: dict, t: Tables) -> SymbolInfo:
    name = required(msg, "symbol")
    if type(name) is not str:
        raise Refused(E.BAD_REQUEST, f"symbol must be a string, not {show(name)}")
    info = t.by_name.get(name)
    if info is None:
        raise Refused(E.UNKNOWN_SYMBOL, f"unknown symbol {show(name)}")
    return info


def choice(msg: dict, name: str, options: dict, code: E, default: int | None = None) -> int:
    value = msg.get(name)
    if value is None:
        if default is None:
            raise Refused(E.MISSING_FIELD, f"missing field {show(name)}")
        return default
    if type(value) is not str or value not in options:
        raise Refused(code, f"{name} must be one of {', '.join(options)}, not {show(value)}")
    return options[value]


def _positive_decimal(msg: dict, name: str, code, example: str):
    """(raw, parsed) of a required positive decimal-string field, or Refused(code): the
    same words for every such field (price, qty, amount)."""
    raw = required(msg, name)
    parsed = parse_decimal(raw)
    if parsed is None:
        raise Refused(code, f"{name} must be a JSON string holding a plain decimal "
                      f"like \"{example}\" (at most {MAX_DECIMAL_CHARS} chars), not {show(raw)}")
    if parsed[0] <= 0:
        raise Refused(code, f"{name} must be positive, not {show(raw)}")
    return raw, parsed


def price_field(msg: dict, s: SymbolInfo) -> int:
    raw, parsed = _positive_decimal(msg, "price", E.INVALID_PRICE, "101.25")
    ticks = s.price.count(*parsed)
    if ticks is None:
        raise Refused(E.OFF_TICK, f"price {raw} is not a multiple of the tick "
                      f"{s.price.format(1)} of {s.name}")
    sym = s.symbol
    if not sym.min_tick <= ticks <= sym.max_tick:
        raise Refused(E.PRICE_OUT_OF_BAND, f"price {raw} is outside the {s.name} band "
                      f"[{s.price.format(sym.min_tick)}, {s.price.format(sym.max_tick)}]")
    return ticks


def qty_field(msg: dict, s: SymbolInfo) -> int:
    raw, parsed = _positive_decimal(msg, "qty", E.INVALID_QTY, "0.5")
    lots = s.qty.count(*parsed)
    if lots is None:
        raise Refused(E.OFF_LOT, f"qty {raw} is not a multiple of the lot "
                      f"{s.qty.format(1)} of {s.name}")
    if lots > INT64_MAX:
        raise Refused(E.INVALID_QTY, f"qty {raw} is too large: at most "
                      f"{s.qty.format(INT64_MAX)} on {s.name}")
    return lots


def client_id_field(msg: dict) -> int:
    """The key of the message's ``client_order_id`` (0: none); a long id's text is
    ``msg["client_order_id"]`` itself."""
    raw = msg.get("client_order_id")
    if raw is None:
        return 0
    try:
        return pack_client_id(raw)
    except ValueError as exc:
        raise Refused(E.INVALID_CLIENT_ORDER_ID, f"{exc}, not {show(raw)}") from None


def order_id_field(msg: dict) -> int:
    raw = required(msg, "order_id")
    if type(raw) is not int or not 0 < raw <= MAX_ORDER_ID:
        raise Refused(E.INVALID_ORDER_ID, f"order_id must be an integer from 1 to "
                      f"{MAX_ORDER_ID}, not {show(raw)}")
    return raw


def bool_field(msg: dict, name: str) -> bool:
    raw = msg.get(name)
    if raw is None:
        return False
    if type(raw) is not bool:
        raise Refused(E.BAD_REQUEST, f"{name} must be true or false, not {show(raw)}")
    return raw


# ---------------------------------------------------------------- ops -> COMMAND fields
def place(msg: dict, t: Tables) -> dict[str, int]:
    """NEW: every field but account/session/ref/ts_ns/kind."""
    s = symbol_field(msg, t)
    side = choice(msg, "side", SIDES, E.INVALID_SIDE)
    order_type = choice(msg, "type", TYPES, E.INVALID_TYPE, LIMIT)
    market = order_type == MARKET
    tif = choice(msg, "tif", TIFS, E.INVALID_TIF, IOC if market else GTC)
    stp = choice(msg, "stp", STPS, E.INVALID_STP, DEFAULT_STP)
    post_only = bool_field(msg, "post_only")
    if market and tif == GTC:
        raise Refused(E.INVALID_TIF, "a market order is ioc or fok, not gtc")
    if post_only and (market or tif != GTC):
        raise Refused(E.INVALID_TIF, "post_only needs a gtc limit order")
    if market:
        if msg.get("price") is not None:
            raise Refused(E.INVALID_PRICE, "a market order takes no price")
        price = 0
    else:
        price = price_field(msg, s)
    return dict(symbol=s.id, side=side, order_type=order_type, tif=tif, stp=stp,
                flags=CMD_POST_ONLY if post_only else 0, price=price,
                qty=qty_field(msg, s), client_order_id=client_id_field(msg))


def cancel(msg: dict, t: Tables) -> dict[str, int]:
    s = symbol_field(msg, t)
    has_id, has_cid = msg.get("order_id") is not None, msg.get("client_order_id") is not None
    if has_id and has_cid:
        raise Refused(E.BAD_REQUEST, "give order_id or client_order_id, not both")
    if not has_id and not has_cid:
        raise Refused(E.MISSING_FIELD, 'missing field "order_id" (or "client_order_id")')
    if has_id:
        return dict(symbol=s.id, order_id=order_id_field(msg))
    return dict(symbol=s.id, client_order_id=client_id_field(msg))


def modify(msg: dict, t: Tables) -> dict[str, int]:
    s = symbol_field(msg, t)
    order_id = order_id_field(msg)
    return dict(symbol=s.id, order_id=order_id, price=price_field(msg, s), qty=qty_field(msg, s))


def cancel_all(msg: dict, t: Tables) -> SymbolInfo | None:
    return None if msg.get("symbol") is None else symbol_field(msg, t)


def subscription(msg: dict, t: Tables) -> tuple[str, list[str], bool]:
    """``(channel, symbol names, many)``: ``symbol`` names one (many False), ``symbols``
    a list of distinct known ones (many True); exactly one of the two."""
    channel = required(msg, "channel")
    if type(channel) is not str or channel not in CHANNELS:
        raise Refused(E.UNKNOWN_CHANNEL,
                      f"channel must be one of {', '.join(CHANNELS)}, not {show(channel)}")
    if channel == "orders":
        if msg.get("symbol") is not None or msg.get("symbols") is not None:
            raise Refused(E.BAD_REQUEST, "the orders channel takes no symbol: it streams "
                          "every order of your account")
        return channel, [], False
    names = msg.get("symbols")
    if names is None:
        return channel, [symbol_field(msg, t).name], False
    if msg.get("symbol") is not None:
        raise Refused(E.BAD_REQUEST, "give symbol or symbols, not both")
    if type(names) is not list or not names:
        raise Refused(E.BAD_REQUEST, f"symbols must be a non-empty list of symbol names, "
                      f"not {show(names)}")
    if len(names) > len(t.by_name):
        raise Refused(E.BAD_REQUEST, f"symbols lists {len(names)} names; there are only "
                      f"{len(t.by_name)} symbols")
    for name in names:
        if type(name) is not str:
            raise Refused(E.BAD_REQUEST, f"symbols must hold strings, not {show(name)}")
        if name not in t.by_name:
            raise Refused(E.UNKNOWN_SYMBOL, f"unknown symbol {show(name)}")
    if len(set(names)) != len(names):
        raise Refused(E.BAD_REQUEST, "symbols lists a symbol twice")
    return channel, list(names), True


def book_depth(msg: dict, channel: str) -> int | None:
    """A subscribe's ``depth``: None (every level) or one of DEPTHS, for ``book`` only."""
    depth = msg.get("depth")
    if depth is None:
        return None
    if channel != "book":
        raise Refused(E.BAD_REQUEST, f"depth applies to the book channel, not {channel}")
    if type(depth) is not int or depth not in DEPTHS:
        raise Refused(E.BAD_REQUEST, f"depth must be one of {', '.join(map(str, DEPTHS))} "
                      f"(or left out for every level), not {show(depth)}")
    return depth


def transfer(msg: dict, t: Tables) -> dict[str, int]:
    """DEPOSIT/WITHDRAW fields (admin only): the target ``account``, the ``asset`` id in
    COMMAND.symbol and the ``amount`` in the asset's minor units in COMMAND.qty."""
    account = required(msg, "account")
    if type(account) is not int or not 0 < account <= MAX_ACCOUNT:
        raise Refused(E.INVALID_ACCOUNT, f"account must be an integer from 1 to "
                      f"{MAX_ACCOUNT}, not {show(account)}")
    name = required(msg, "asset")
    if type(name) is not str:
        raise Refused(E.BAD_REQUEST, f"asset must be a string, not {show(name)}")
    asset = t.assets_by_name.get(name)
    if asset is None:
        raise Refused(E.UNKNOWN_ASSET, f"unknown asset {show(name)}")
    raw, parsed = _positive_decimal(msg, "amount", E.INVALID_AMOUNT, "100.5")
    units = asset.unit.count(*parsed)
    if units is None:
        raise Refused(E.INVALID_AMOUNT, f"amount {raw} is finer than {name}'s minor unit "
                      f"{asset.unit.format(1)}")
    if units > INT64_MAX:
        raise Refused(E.INVALID_AMOUNT, f"amount {raw} is too large: at most "
                      f"{asset.unit.format(INT64_MAX)} {name}")
    return dict(account=account, symbol=asset.asset.id, qty=units)


def api_key(msg: dict) -> str | None:
    """The key to look up, or None when it cannot be one (counts as a failed login)."""
    key = required(msg, "api_key")
    if type(key) is not str or not 0 < len(key) <= MAX_API_KEY_CHARS:
        return None
    return key


# ---------------------------------------------------------------- record
def command(kind: int, account: int, session: int, ref: int, ts_ns: int, *,
            symbol: int = 0, order_id: int = 0, client_order_id: int = 0, price: int = 0,
            qty: int = 0, side: int = 0, order_type: int = 0, tif: int = 0, stp: int = 0,
            flags: int = 0) -> np.ndarray:
    """One filled COMMAND record (length-1 array), built in a single allocation."""
    return np.array([(order_id, client_order_id, price, qty, ts_ns, account, session, ref,
                      symbol, kind, side, order_type, tif, stp, flags, 0)], dtype=COMMAND)


_CLIENT_ID = int(CommandKind.CLIENT_ID)
# a CLIENT_ID record's bytes after the text: account, session, ref, symbol, kind, then
# side .. flags and the padding (zero); packed directly, 3x faster than np.array of a tuple
_AFTER_TEXT = struct.Struct("<IIIHB5xI")
assert TEXT_BYTES + _AFTER_TEXT.size == COMMAND.itemsize
assert [COMMAND.fields[f][1] for f in ("account", "kind")] == [TEXT_BYTES, 54]  # type: ignore[index]


def client_id_command(account: int, session: int, ref: int, text: str) -> np.ndarray:
    """The CLIENT_ID record that carries a long id's text to the engine, the journal and
    the writer (``client_ids.text_words``: the text NUL-padded, as the record's first 40
    bytes); write it right before the NEW that uses the id (same ref)."""
    raw = text.encode("ascii").ljust(TEXT_BYTES, b"\0") + _AFTER_TEXT.pack(
        account, session, ref, 0, _CLIENT_ID, 0)
    return np.frombuffer(bytearray(raw), COMMAND)
