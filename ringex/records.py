"""The records that cross process boundaries and the codes they carry, defined once.

Every record is 64 bytes (one cache line), ``align=True``, little-endian native
integers. Every process imports them from here; nothing else defines a layout or a code.

COMMAND: what a gateway (or a test, a replay, a benchmark) asks the matcher to do.
EVENT:   what the matcher answers; also reused for market data (TRADE, BOOK_LEVEL).
AUDIT:   a gateway's session lifecycle step, for the writer.

The enums (``CommandKind``, ``EventKind``, ``RejectCode`` ...) are the one table of codes.
Numba kernels use them as plain ints, generated from the enums below as
``<PREFIX>_<MEMBER>`` (``CMD_NEW``, ``EV_FILL``, ``E_INVALID_QTY``, ``R_STP``, ``TIF_IOC``
...): numba folds int globals into the machine code, while IntEnum members cost about 10 %
of matcher throughput (measured). Python code that reads EVENT tuples
(``events.tolist()``) indexes them with ``F_SEQ`` ... ``F_INFO``.

Units are exact integers: price in ticks, quantity in lots, amounts in an asset's
minor units (see docs/api.md). No float ever appears in a record.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np

# ---------------------------------------------------------------- command record
COMMAND = np.dtype(
    [
        ("order_id", "<i8"),         # gateway: cancel/modify target; matcher ignores it on NEW
        ("client_order_id", "<i8"),  # gateway: account-scoped id, 0 = none
        ("price", "<i8"),            # gateway: limit price in ticks (0 for market)
        ("qty", "<i8"),              # gateway: lots; DEPOSIT/WITHDRAW: minor units of the asset
        ("ts_ns", "<i8"),            # gateway: receive time (time.perf_counter_ns), latency only
                                     # (CLIENT_ID: the text's last 8 bytes, see CommandKind)
        ("account", "<u4"),          # gateway: authenticated account
        ("session", "<u4"),          # gateway: (gateway_index << 24) | connection number
        ("ref", "<u4"),              # gateway: request number, echoed in direct replies
        ("symbol", "<u2"),           # gateway: symbol id; DEPOSIT/WITHDRAW: asset id; ALL_SYMBOLS
        ("kind", "u1"),              # CommandKind
        ("side", "u1"),              # Side
        ("order_type", "u1"),        # OrderType
        ("tif", "u1"),               # TimeInForce
        ("stp", "u1"),               # SelfTradePrevention
        ("flags", "u1"),             # CMD_POST_ONLY | ...
        ("_pad", "<u4"),
    ],
    align=True,
)

# ------------------------------------------------------------------ event record
EVENT = np.dtype(
    [
        ("seq", "<u8"),              # matcher: per-symbol sequence, 1, 2, 3 ... (0: no symbol)
        ("order_id", "<i8"),         # matcher: the order this event is about
        ("other_id", "<i8"),         # FILL: counter order id; else client_order_id
        ("price", "<i8"),            # ticks (FILL: trade price = maker's price)
        ("qty", "<i8"),              # lots: order qty (ACK/MODIFIED), filled (FILL), cancelled
                                     # (CANCELLED); BALANCE: available minor units
        ("leaves", "<i8"),           # lots still open after this event; BALANCE: locked units
        ("account", "<u4"),          # account the event belongs to (fee account never appears)
        ("session", "<u4"),          # session that placed the order (routing back to gateway)
        ("ref", "<u4"),              # request number of the command that caused it
        ("symbol", "<u2"),           # symbol id; BALANCE: asset id
        ("kind", "u1"),              # EventKind
        ("info", "u1"),              # low 6 bits: RejectCode or CancelReason; INFO_SELL, INFO_MAKER
    ],
    align=True,
)

assert COMMAND.itemsize == 64 and EVENT.itemsize == 64

# Positions of the fields in an EVENT tuple (``events.tolist()[i]``, the fast way through
# a batch in Python): ``ev[F_SESSION]``.
(F_SEQ, F_ORDER_ID, F_OTHER_ID, F_PRICE, F_QTY, F_LEAVES, F_ACCOUNT, F_SESSION, F_REF,
 F_SYMBOL, F_KIND, F_INFO) = range(12)
assert EVENT.names == ("seq", "order_id", "other_id", "price", "qty", "leaves", "account",
                       "session", "ref", "symbol", "kind", "info")

U32_MAX = 0xFFFFFFFF      # largest account, session and ref
INT64_MAX = (1 << 63) - 1  # largest price, qty and id

ALL_SYMBOLS = 0xFFFF      # CANCEL_ALL for every symbol
CMD_POST_ONLY = 0x01      # COMMAND.flags bit
CMD_DISCONNECT = 0x02     # COMMAND.flags bit on CANCEL_ALL: only this session's orders,
                          # reason DISCONNECT (cancel-on-disconnect)

INFO_CODE_MASK = 0x3F     # EVENT.info low bits: reject code or cancel reason
INFO_SELL = 0x80          # EVENT.info: the order is a sell
INFO_MAKER = 0x40         # EVENT.info (FILL): this side was the resting order


class CommandKind(IntEnum):
    NEW = 1
    CANCEL = 2
    MODIFY = 3
    CANCEL_ALL = 4
    DEPOSIT = 5
    WITHDRAW = 6
    QUERY_BALANCES = 7     # answered with one BALANCE event per asset
    QUERY_ORDERS = 8       # answered with one OPEN_ORDER event per live order
    QUERY_BOOK = 9         # answered with one BOOK_LEVEL event per level of `symbol`
    ACCOUNT_STREAM = 10    # gateway ``session >> 24`` wants (qty 1) or no longer wants
                           # (qty 0) every event of ``account``; no event, never journaled
    CLIENT_ID = 11         # the text of a long client_order_id, sent right before the NEW
                           # that uses it: order_id, client_order_id, price, qty, ts_ns hold
                           # its 36 ASCII bytes NUL-padded to 40 (protocol/client_ids.py);
                           # answered by one CLIENT_ID event, nothing else changes


class Side(IntEnum):
    BUY = 0
    SELL = 1


class OrderType(IntEnum):
    LIMIT = 0
    MARKET = 1


class TimeInForce(IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2


class SelfTradePrevention(IntEnum):
    CANCEL_TAKER = 0       # the default: a zeroed record gets it
    NONE = 1
    CANCEL_MAKER = 2
    CANCEL_BOTH = 3


class EventKind(IntEnum):
    ACK = 1                # order accepted (before any fill)
    REJECT = 2             # info = RejectCode; nothing changed
    FILL = 3               # one per side per match; info has INFO_MAKER on the resting side
    CANCELLED = 4          # info = CancelReason; qty = lots cancelled
    MODIFIED = 5           # price/qty = new values, leaves = open lots
    BALANCE = 6            # symbol = asset, qty = available, leaves = locked
    OPEN_ORDER = 7         # reply to QUERY_ORDERS: one per live order
    TRADE = 8              # market data: public trade (account/session 0)
    BOOK_LEVEL = 9         # qty = total lots at (symbol, side, price), leaves = orders there;
                           # seq = the symbol's sequence the level is current as of
    CLOCK = 10             # rings only: order_id = the engine's wall clock (ns since the
                           # epoch) of the group whose events follow; session = the
                           # gateway's own (connection 0); never in the journal or database
    CLIENT_ID = 11         # echo of a CLIENT_ID command: the text's 40 bytes in order_id,
                           # other_id, price, qty, leaves; account/session/ref of the
                           # command; seq 0, symbol 0


class RejectCode(IntEnum):
    OK = 0
    UNKNOWN_COMMAND = 1
    UNKNOWN_SYMBOL = 2
    UNKNOWN_ACCOUNT = 3
    UNKNOWN_ASSET = 4
    INVALID_SIDE = 5
    INVALID_ORDER_TYPE = 6
    INVALID_TIF = 7
    INVALID_STP = 8
    INVALID_QTY = 9
    INVALID_PRICE = 10            # outside the symbol's price band
    INSUFFICIENT_FUNDS = 11
    DUPLICATE_CLIENT_ORDER_ID = 12
    UNKNOWN_ORDER = 13            # not resting (filled, cancelled, never existed, not yours)
    TOO_MANY_ORDERS = 14          # order pool full
    BOOK_FULL = 15                # no free price-level page
    OVERFLOW = 16                 # price x qty does not fit int64
    POST_ONLY_WOULD_TAKE = 17     # modify of a post-only order that would cross
    INVALID_AMOUNT = 18           # deposit/withdraw amount <= 0


class CancelReason(IntEnum):
    USER = 1
    IOC_REMAINDER = 2
    FOK = 3
    STP = 4
    DISCONNECT = 5
    POST_ONLY = 6
    NO_FUNDS = 7                  # market buy ran out of quote funds
    CANCEL_ALL = 8


# ------------------------------------------------------------ plain ints for kernels
KERNEL_PREFIXES: dict[type[IntEnum], str] = {
    CommandKind: "CMD", EventKind: "EV", RejectCode: "E", CancelReason: "R",
    SelfTradePrevention: "STP", TimeInForce: "TIF", OrderType: "OT", Side: "SIDE",
}
for _enum, _prefix in KERNEL_PREFIXES.items():
    globals().update({f"{_prefix}_{m.name}": int(m) for m in _enum})


def __getattr__(name: str) -> int:
    """Tells type checkers that the generated ``<PREFIX>_<MEMBER>`` names are ints (they
    are module globals, so this runs only for a name that does not exist)."""
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------ constructors
def commands(n: int) -> np.ndarray:
    """A zeroed COMMAND array of length n (fill fields in place)."""
    return np.zeros(n, dtype=COMMAND)


def events(n: int) -> np.ndarray:
    """A zeroed EVENT array of length n."""
    return np.zeros(n, dtype=EVENT)


def _one(kind: CommandKind, symbol: int, account: int, **fields) -> np.ndarray:
    rec = np.zeros(1, dtype=COMMAND)
    rec["kind"] = kind
    rec["symbol"] = symbol
    rec["account"] = account
    for name, value in fields.items():
        rec[name] = value
    return rec


def new_order(
    symbol: int,
    account: int,
    side: int,
    price: int,
    qty: int,
    *,
    tif: int = TimeInForce.GTC,
    order_type: int = OrderType.LIMIT,
    post_only: bool = False,
    stp: int = SelfTradePrevention.CANCEL_TAKER,
    client_order_id: int = 0,
    session: int = 0,
    ref: int = 0,
) -> np.ndarray:
    """One NEW command (a length-1 COMMAND array; concatenate to batch)."""
    return _one(
        CommandKind.NEW, symbol, account, side=side, price=price, qty=qty, tif=tif,
        order_type=order_type, flags=CMD_POST_ONLY if post_only else 0, stp=stp,
        client_order_id=client_order_id, session=session, ref=ref,
    )


def cancel(symbol: int, account: int, *, order_id: int = 0, client_order_id: int = 0,
           session: int = 0, ref: int = 0) -> np.ndarray:
    """Cancel by engine order id, or by the account's client_order_id when order_id is 0."""
    return _one(CommandKind.CANCEL, symbol, account, order_id=order_id,
                client_order_id=client_order_id, session=session, ref=ref)


def modify(symbol: int, account: int, order_id: int, price: int, qty: int, *,
           session: int = 0, ref: int = 0) -> np.ndarray:
    """Change a resting order to (price, qty open lots)."""
    return _one(CommandKind.MODIFY, symbol, account, order_id=order_id, price=price,
                qty=qty, session=session, ref=ref)


def cancel_all(account: int, symbol: int = ALL_SYMBOLS, *, session: int = 0,
               ref: int = 0, disconnect: bool = False) -> np.ndarray:
    """Cancel the account's resting orders (in one symbol, or all); with disconnect=True
    only those placed by ``session``, with reason DISCONNECT."""
    return _one(CommandKind.CANCEL_ALL, symbol, account, session=session, ref=ref,
                flags=CMD_DISCONNECT if disconnect else 0)


def deposit(account: int, asset: int, amount: int, *, ref: int = 0) -> np.ndarray:
    return _one(CommandKind.DEPOSIT, asset, account, qty=amount, ref=ref)


def withdraw(account: int, asset: int, amount: int, *, ref: int = 0) -> np.ndarray:
    return _one(CommandKind.WITHDRAW, asset, account, qty=amount, ref=ref)


def query_balances(account: int, *, session: int = 0, ref: int = 0) -> np.ndarray:
    return _one(CommandKind.QUERY_BALANCES, 0, account, session=session, ref=ref)


def query_orders(account: int, *, session: int = 0, ref: int = 0) -> np.ndarray:
    return _one(CommandKind.QUERY_ORDERS, 0, account, session=session, ref=ref)


def account_stream(account: int, on: bool, *, session: int) -> np.ndarray:
    """Gateway ``session >> 24`` starts (``on``) or stops getting every event of
    ``account``, whichever gateway's session it is for."""
    return _one(CommandKind.ACCOUNT_STREAM, 0, account, session=session, qty=int(on))


def client_id_text(account: int, words: tuple[int, ...], *, session: int = 0,
                   ref: int = 0) -> np.ndarray:
    """The CLIENT_ID command carrying a long client id's text as five int64 ``words``
    (``ringex.protocol.client_ids.text_words``)."""
    w0, w1, w2, w3, w4 = words
    return _one(CommandKind.CLIENT_ID, 0, account, order_id=w0, client_order_id=w1,
                price=w2, qty=w3, ts_ns=w4, session=session, ref=ref)


def query_book(symbol: int, *, session: int = 0, ref: int = 0) -> np.ndarray:
    return _one(CommandKind.QUERY_BOOK, symbol, 0, session=session, ref=ref)


def batch(*records: np.ndarray) -> np.ndarray:
    """Concatenate single-command arrays into one batch."""
    return np.concatenate(records) if records else commands(0)


def info_code(info: int) -> int:
    """The reject code or cancel reason packed in EVENT.info."""
    return info & INFO_CODE_MASK


def event_side(info: int) -> Side:
    return Side.SELL if info & INFO_SELL else Side.BUY


# ------------------------------------------------------------------ audit record
# Gateways -> writer (through the trade queue): one per session lifecycle step.
AUDIT = np.dtype(
    [
        ("ts_ns", "<i8"),            # gateway: time.time_ns() wall clock
        ("session", "<u4"),          # gateway: (gateway_index << 24) | connection number
        ("account", "<u4"),          # 0 until authenticated
        ("kind", "u1"),              # AuditKind
        ("code", "u1"),              # AUTH_FAILED/CLOSED: protocol error code number
        ("port", "<u2"),             # peer port
        ("addr", "u1", (16,)),       # peer address: IPv4 in the first 4 bytes, or IPv6
        ("_pad", "u1", (28,)),
    ],
    align=True,
)
assert AUDIT.itemsize == 64


class AuditKind(IntEnum):
    CONNECT = 1
    LOGIN = 2
    AUTH_FAILED = 3
    DISCONNECT = 4
    CLOSED_ABUSE = 5               # closed by the gateway: rate limit, frame size
