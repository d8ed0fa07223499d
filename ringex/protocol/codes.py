"""Stable wire codes: protocol errors, engine rejects, cancel reasons, close codes.

Two kinds of refusal reach a client, never mixed:

- ``error`` -- the gateway refused the message; the engine never saw it. Codes are
  :class:`ErrorCode`.
- ``reject`` -- the engine refused the command. Codes come from
  :data:`REJECT_CODES` (one per ``records.RejectCode``).

Every code is lower-snake-case and stable: clients may switch on it. docs/protocol.md
holds the same tables and a test keeps the two in step.
"""
from __future__ import annotations

from enum import IntEnum, StrEnum

from ringex.records import CancelReason, RejectCode


class ErrorCode(StrEnum):
    """``error.code``: why the gateway refused a message."""

    BAD_JSON = "bad_json"                          # not valid UTF-8 JSON
    BAD_REQUEST = "bad_request"                    # not an object, or a field of the wrong type
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"                # a field the op does not take (e.g. account)
    UNKNOWN_OP = "unknown_op"
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_CHANNEL = "unknown_channel"
    INVALID_SIDE = "invalid_side"
    INVALID_TYPE = "invalid_type"
    INVALID_TIF = "invalid_tif"
    INVALID_STP = "invalid_stp"
    INVALID_PRICE = "invalid_price"                # not a positive plain decimal string
    INVALID_QTY = "invalid_qty"                    # not a positive plain decimal string, or too big
    OFF_TICK = "off_tick"
    OFF_LOT = "off_lot"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    INVALID_CLIENT_ORDER_ID = "invalid_client_order_id"
    INVALID_ORDER_ID = "invalid_order_id"
    NOT_AUTHENTICATED = "not_authenticated"
    ALREADY_AUTHENTICATED = "already_authenticated"
    LOGIN_PENDING = "login_pending"                # a login is being checked already
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"                      # too many requests awaiting the engine
    FRAME_TOO_LARGE = "frame_too_large"
    BINARY_FRAME = "binary_frame"
    NOT_AUTHORIZED = "not_authorized"              # an admin op on a non-admin connection
    INVALID_ACCOUNT = "invalid_account"            # deposit/withdraw: not a positive u32 integer
    UNKNOWN_ASSET = "unknown_asset"
    INVALID_AMOUNT = "invalid_amount"              # not a positive plain decimal string, finer
                                                   # than the asset's minor unit, or too big
    SLOW_CONSUMER = "slow_consumer"                # the client does not read its messages
    UNKNOWN_ACCOUNT = "unknown_account"            # deposit/withdraw: no such account (the
                                                   # gateway looks it up in the database)
    UNKNOWN_ORDER = "unknown_order"                # order_status: no such order of yours


# Numbers for AUDIT.code (one byte): 1-based declaration order, so append new codes only.
ERROR_NUMBERS: dict[str, int] = {str(c): i + 1 for i, c in enumerate(ErrorCode)}


class CloseCode(IntEnum):
    """WebSocket close codes the protocol asks for (RFC 6455 section 7.4.1)."""

    GOING_AWAY = 1001           # the gateway is shutting down
    UNSUPPORTED_DATA = 1003     # a binary frame
    POLICY_VIOLATION = 1008     # rate-limit flood, too many failed logins
    MESSAGE_TOO_BIG = 1009      # a frame above the size limit
    TRY_AGAIN_LATER = 1013      # the client reads too slowly: its output buffer is full
    INTERNAL_ERROR = 1011       # for the adapter: an unexpected exception


# -- engine reject codes (records.RejectCode) -> reject.code
REJECT_CODES: dict[int, str] = {
    RejectCode.UNKNOWN_COMMAND: "unknown_command",
    RejectCode.UNKNOWN_SYMBOL: "unknown_symbol",
    RejectCode.UNKNOWN_ACCOUNT: "unknown_account",
    RejectCode.UNKNOWN_ASSET: "unknown_asset",
    RejectCode.INVALID_SIDE: "invalid_side",
    RejectCode.INVALID_ORDER_TYPE: "invalid_type",
    RejectCode.INVALID_TIF: "invalid_tif",
    RejectCode.INVALID_STP: "invalid_stp",
    RejectCode.INVALID_QTY: "invalid_qty",
    RejectCode.INVALID_PRICE: "price_out_of_band",
    RejectCode.INSUFFICIENT_FUNDS: "insufficient_funds",
    RejectCode.DUPLICATE_CLIENT_ORDER_ID: "duplicate_client_order_id",
    RejectCode.UNKNOWN_ORDER: "unknown_order",
    RejectCode.TOO_MANY_ORDERS: "too_many_orders",
    RejectCode.BOOK_FULL: "book_full",
    RejectCode.OVERFLOW: "overflow",
    RejectCode.POST_ONLY_WOULD_TAKE: "post_only_would_take",
    RejectCode.INVALID_AMOUNT: "invalid_amount",
}
UNKNOWN_REJECT = "engine_error"   # a RejectCode this gateway does not know (newer engine)

REJECT_MESSAGES: dict[str, str] = {
    "unknown_command": "the engine does not serve this command here",
    "unknown_symbol": "unknown symbol",
    "unknown_account": "unknown account",
    "unknown_asset": "unknown asset",
    "invalid_side": "invalid side",
    "invalid_type": "invalid order type",
    "invalid_tif": "time in force not allowed for this order",
    "invalid_stp": "invalid self-trade prevention mode",
    "invalid_qty": "quantity must be positive",
    "price_out_of_band": "price outside the symbol's price band",
    "insufficient_funds": "not enough available balance",
    "duplicate_client_order_id": "client_order_id already used by a live order",
    "unknown_order": "no such resting order",
    "too_many_orders": "order capacity exhausted",
    "book_full": "no free price-level storage",
    "overflow": "price x quantity is too large",
    "post_only_would_take": "the modified post-only order would take liquidity",
    "invalid_amount": "amount must be positive",
    UNKNOWN_REJECT: "rejected by the engine",
}

# Where a code means something else for another op: (op, code) -> message.
OP_REJECT_MESSAGES: dict[tuple[str, str], str] = {
    ("deposit", "overflow"): "the account's balance of this asset (available + locked) "
                             "would exceed 2^62 minor units",
    **{(op, "unknown_account"): "the engine has no such account (its ids stop below the "
                                "config's [limits] max_accounts)"
       for op in ("deposit", "withdraw")},
}


def reject_message(code: str, op: str | None) -> str:
    """``reject.message`` for the wire ``code`` answering ``op`` (None: unknown)."""
    if op is not None:
        special = OP_REJECT_MESSAGES.get((op, code))
        if special is not None:
            return special
    return REJECT_MESSAGES[code]


# -- engine cancel reasons (records.CancelReason) -> cancelled.reason
CANCEL_REASONS: dict[int, str] = {
    CancelReason.USER: "user",
    CancelReason.IOC_REMAINDER: "ioc_remainder",
    CancelReason.FOK: "fok",
    CancelReason.STP: "stp",
    CancelReason.DISCONNECT: "disconnect",
    CancelReason.POST_ONLY: "post_only",
    CancelReason.NO_FUNDS: "no_funds",
    CancelReason.CANCEL_ALL: "cancel_all",
}
UNKNOWN_REASON = "other"


class Refused(Exception):
    """Internal: a request is refused with an ``error`` reply (``extra``: more fields of
    it). Never leaves the package."""

    def __init__(self, code: ErrorCode, message: str, **extra: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra
