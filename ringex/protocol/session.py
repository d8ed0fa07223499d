"""One WebSocket connection's protocol state machine (sans-I/O; docs/protocol.md).

The adapter owns the socket and the rings; per connection it calls:

- ``receive_text(frame)`` / ``receive_binary(frame)`` for each frame -> actions;
- ``authenticated(account)`` / ``auth_failed()`` after an :class:`Authenticate` action
  (or after checking an ``Authorization: Bearer`` key on the handshake) -> actions;
- ``event_to_messages(event)`` for each engine event whose ``session`` is this one ->
  messages to send, in order.

- ``disconnected()`` once the socket is gone -> actions (the cancel-on-disconnect
  command, if the session asked for it);
- ``commands_refused(records)`` when the command ring had no room for the records of
  one input's SendCommand actions -> the ``overloaded`` reply to send instead.

State: ANONYMOUS -> (login) LOGGING_IN -> AUTHENTICATED; any -> CLOSED after a Close
action. Only ``subscribe``, ``unsubscribe``, ``login`` and ``ping`` are served before
AUTHENTICATED. The account in every command is the session's, never the message's --
except the admin-only ``deposit``/``withdraw``, which name the account they credit.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum
from typing import cast

import numpy as np
import orjson

from ringex import fees
from ringex.config import Config, GatewayLimits
import ringex.protocol.requests as rq
from ringex.protocol.actions import (
    Action, Authenticate, Close, Reply, SendCommand, StoreQuery,
)
from ringex.protocol.client_texts import ClientIdTexts
from ringex.protocol.codes import CloseCode, ErrorCode as E, Refused
from ringex.protocol.events import EngineClock, EventTranslator, FeeFn, with_req_id
from ringex.protocol.messages import error
from ringex.protocol.pending import BARRIER, PendingRequests, Request
from ringex.protocol.ratelimit import Budgets, TokenBucket
from ringex.protocol.reconcile import my_trades_request, order_status_request
from ringex.protocol.subscriptions import Subscriptions
from ringex.protocol.symbols import tables_for
from ringex.records import ALL_SYMBOLS, CMD_DISCONNECT, U32_MAX, CommandKind as CK, EventKind as EK


_NEW, _CANCEL, _MODIFY, _CANCEL_ALL, _QUERY_BALANCES, _QUERY_ORDERS = map(int, (
    CK.NEW, CK.CANCEL, CK.MODIFY, CK.CANCEL_ALL, CK.QUERY_BALANCES, CK.QUERY_ORDERS))
_TRANSFERS = {"deposit": int(CK.DEPOSIT), "withdraw": int(CK.WITHDRAW)}


def session_number(gateway_index: int, connection: int) -> int:
    """COMMAND.session for a connection: ``(gateway_index << 24) | connection``."""
    return ((gateway_index & 0xFF) << 24) | (connection & 0xFFFFFF)


class State(IntEnum):
    ANONYMOUS = 0
    LOGGING_IN = 1       # Authenticate sent, waiting for authenticated()/auth_failed()
    AUTHENTICATED = 2
    CLOSED = 3


def _req_id_of(data: str | bytes) -> object:
    """The valid ``req_id`` of a frame, or None (not JSON, not an object, none, bad)."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    req_id = msg.get("req_id") if type(msg) is dict else None
    return req_id if req_id is not None and rq.valid_req_id(req_id) else None



RECV_TS_OPS = frozenset(("place", "cancel", "modify"))   # replies carry recv_ts
STREAMED_KINDS = frozenset((EK.ACK, EK.FILL, EK.CANCELLED, EK.MODIFIED))


class Session:
    """Protocol state of one connection. Public, read-only for the adapter:

    ``state`` (:class:`State`), ``account`` (None until authenticated), ``session_id``,
    ``subscriptions`` ({(channel, symbol name)}: drop them from the fan-out when the
    socket closes), ``orders`` (this session's live orders as learnt from events),
    ``admin`` (may deposit/withdraw), ``cancel_on_disconnect`` (set it from a
    connect-time option before the first frame; a ``login`` may set it too).
    """

    def __init__(self, config: Config, session_id: int, *,
                 limits: GatewayLimits = GatewayLimits(),
                 clock: Callable[[], int] = time.perf_counter_ns,
                 fill_fee: FeeFn = fees.fill_fee,
                 cancel_on_disconnect: bool = False,
                 budgets: Budgets | None = None, address: bytes = b"",
                 ack_times: Callable[[int], None] | None = None,
                 engine_clock: EngineClock | None = None,
                 wall_clock: Callable[[], int] = time.time_ns,
                 client_ids: ClientIdTexts | None = None):
        """``session_id``: this connection's COMMAND.session (see :func:`session_number`).
        ``clock``: monotonic nanoseconds, for the rate limit and COMMAND.ts_ns.
        ``fill_fee``: fee of one fill side; pass ``lambda *a: 0`` when wallets are off.
        ``budgets``: the gateway's shared budgets (per account, per remote ``address``);
        None: this connection's own limits only.
        ``ack_times``: called with each place's time to its ack or reject (``clock``
        units), or None. ``engine_clock``: the gateway's EngineClock, which gives each
        message made from an engine event its ``ts`` (None: a private one, ts 0).
        ``wall_clock``: ns since the epoch, for ``recv_ts``. ``client_ids``: the gateway's
        texts of long client ids (None: a private one), read and taught by the session."""
        if not 0 <= session_id <= U32_MAX:
            raise ValueError(f"session_id {session_id} does not fit u32")
        self.session_id = session_id
        self.limits = limits
        self.state = State.ANONYMOUS
        self.account: int | None = None
        self.admin = False
        self.cancel_on_disconnect = bool(cancel_on_disconnect)
        self._t = tables_for(config)
        self._clock = clock
        self._bucket = TokenBucket(limits.rate_per_s, limits.burst, clock())
        self._budgets = budgets
        self._address = budgets.address(address, clock()) if budgets is not None else None
        # the shared bucket each message also spends from: the address's while not logged
        # in, the account's after (none without budgets)
        self._shared = self._address.anonymous if self._address is not None else None
        self._shared_limit = "address"
        self._pending = PendingRequests()
        self.client_ids = client_ids if client_ids is not None else ClientIdTexts()
        self._events = EventTranslator(self._t, self._pending, fill_fee,
                                       (clock, ack_times) if ack_times else None,
                                       engine_clock, self.client_ids)
        self._wall = wall_clock
        self._subs = Subscriptions(self._t, limits, clock(), lambda: EventTranslator(
            self._t, PendingRequests(), fill_fee, None, engine_clock, self.client_ids))
        self.subscriptions = self._subs.keys      # (fan-out channel, symbol name)
        self._login_req_id: object = None
        self._login_cod = False
        self._gone = False
        self._auth_failures = 0
        self._ops = {
            "place": self._place, "cancel": self._cancel, "modify": self._modify,
            "cancel_all": self._cancel_all, "balances": self._balances,
            "open_orders": self._open_orders, "subscribe": self._subscribe,
            "order_status": self._order_status, "my_trades": self._my_trades,
            "unsubscribe": self._unsubscribe, "login": self._login, "ping": self._ping,
            "deposit": self._transfer, "withdraw": self._transfer,
        }

    # ------------------------------------------------------------ input from the client
    def receive_text(self, data: str | bytes) -> list[Action]:
        """Handle one text frame (``str``, or its UTF-8 ``bytes``). Never raises."""
        if self.state is State.CLOSED:
            return []
        limit = self.limits.max_frame_bytes
        if len(data) > limit or (type(data) is str and len(data) * 4 > limit
                                 and len(data.encode("utf-8", "surrogatepass")) > limit):
            return self._close(CloseCode.MESSAGE_TOO_BIG, E.FRAME_TOO_LARGE,
                               f"frames are limited to {limit} bytes")
        now = self._clock()
        if not self._bucket.take(now):
            if self._bucket.flooding:
                return self._close(CloseCode.POLICY_VIOLATION, E.RATE_LIMITED,
                                   "rate limit exceeded")
            # the refusal names the request it answers: a client waiting for a reply must
            # not wait for good (parsing costs little: frames are small, floods are closed)
            return [Reply(error(E.RATE_LIMITED, f"more than {self.limits.rate_per_s} "
                                "messages per second; this one was dropped",
                                _req_id_of(data), limit="messages",
                                retry_after_ms=self._bucket.retry_after_ms(now)))]
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            return [Reply(error(E.BAD_JSON, "the frame is not valid UTF-8 JSON"))]
        if type(msg) is not dict:
            return [Reply(error(E.BAD_REQUEST, "a request must be a JSON object"))]
        req_id = msg.get("req_id")
        if req_id is not None and not rq.valid_req_id(req_id):
            return [Reply(error(E.BAD_REQUEST, rq.bad_req_id(req_id)))]
        shared = self._shared
        if shared is not None and not shared.try_take(now):
            who = "your account" if self._shared_limit == "account" else "your address"
            return [Reply(error(E.RATE_LIMITED, f"{who} sends more messages than its budget; "
                                "this one was dropped", req_id, limit=self._shared_limit,
                                retry_after_ms=shared.retry_after_ms(now)))]
        try:
            return self._dispatch(msg, req_id, now)
        except Refused as r:
            return [Reply(error(r.code, r.message, req_id, **r.extra))]

    def receive_binary(self, data: bytes) -> list[Action]:
        """Handle one binary frame: not part of the protocol, the connection is closed."""
        if self.state is State.CLOSED:
            return []
        return self._close(CloseCode.UNSUPPORTED_DATA, E.BINARY_FRAME,
                           "binary frames are not supported; send JSON text frames")

    def _dispatch(self, msg: dict, req_id: object, now: int) -> list[Action]:
        op = msg.get("op")
        if op is None:
            raise Refused(E.MISSING_FIELD, 'missing field "op"')
        if type(op) is not str:
            raise Refused(E.BAD_REQUEST, "op must be a string")
        handler = self._ops.get(op)
        if handler is None:
            raise Refused(E.UNKNOWN_OP, f"unknown op {rq.show(op)}")
        if op in rq.PRIVATE_OPS and self.state is not State.AUTHENTICATED:
            raise Refused(E.NOT_AUTHENTICATED, f"log in before {op}")
        if op in rq.ADMIN_OPS and not self.admin:
            raise Refused(E.NOT_AUTHORIZED, f"{op} needs an admin connection")
        rq.check_fields(msg, op)
        return handler(msg, req_id, now)

    # ------------------------------------------------------------ ops
    def _place(self, msg, req_id, now):
        fields = rq.place(msg, self._t)
        actions = self._send(now, (req_id, "place", _NEW, fields))
        key = fields["client_order_id"]
        if key < 0:
            # a long id: its text goes first, in the same write (same ref)
            text = msg["client_order_id"]
            self.client_ids.learn(cast(int, self.account), key, text)
            ref = int(cast(SendCommand, actions[0]).record["ref"][0])
            actions.insert(0, SendCommand(rq.client_id_command(
                cast(int, self.account), self.session_id, ref, text)))
        return actions

    def _cancel(self, msg, req_id, now):
        fields = rq.cancel(msg, self._t)
        self._learn_text(msg, fields.get("client_order_id", 0))
        return self._send(now, (req_id, "cancel", _CANCEL, fields))

    def _learn_text(self, msg: dict, key: int) -> None:
        """A request naming a long client id teaches the gateway its text."""
        if key < 0:
            self.client_ids.learn(cast(int, self.account), key, msg["client_order_id"])

    def _modify(self, msg, req_id, now):
        return self._send(now, (req_id, "modify", _MODIFY, rq.modify(msg, self._t)))

    def _balances(self, msg, req_id, now):
        return self._send(now, (req_id, "balances", _QUERY_BALANCES, {}))

    def _open_orders(self, msg, req_id, now):
        return self._send(now, (req_id, "open_orders", _QUERY_ORDERS, {}), barrier=True)

    def _order_status(self, msg, req_id, now):
        lookup = order_status_request(msg)
        self._learn_text(msg, lookup.client_order_id or 0)
        return self._send(now, (req_id, "order_status", _QUERY_ORDERS, {}), barrier=True,
                          items=lookup)

    def _my_trades(self, msg, req_id, now):
        return [StoreQuery("my_trades", req_id, my_trades_request(msg, self._t))]

    def _cancel_all(self, msg, req_id, now):
        s = rq.cancel_all(msg, self._t)
        return self._send(now, (req_id, "cancel_all", _CANCEL_ALL,
                                {"symbol": ALL_SYMBOLS if s is None else s.id}), barrier=True)

    def _transfer(self, msg, req_id, now):
        op = msg["op"]
        fields = rq.transfer(msg, self._t)
        if len(self._pending) + 1 > self.limits.max_pending:
            raise Refused(E.OVERLOADED, "too many requests awaiting the engine; retry later")
        ref = self._pending.add(Request(req_id, op, (fields["symbol"], fields["qty"])))
        return [SendCommand(rq.command(_TRANSFERS[op], fields["account"], self.session_id,
                                       ref, now, symbol=fields["symbol"], qty=fields["qty"]))]

    def _subscribe(self, msg, req_id, now):
        return self._subs.subscribe(msg, req_id, now, self.state is State.AUTHENTICATED)

    def account_event_to_messages(self, event) -> list[dict]:
        """Messages for an order event of this account that another session caused
        (``orders`` channel): the pushes of docs/protocol.md section 4, never a
        ``req_id``. Only ACK, FILL, CANCELLED and MODIFIED are streamed."""
        ev = event if isinstance(event, tuple) else cast(tuple, event.item())
        stream = self._subs.stream
        if stream is None or ev[6] != self.account or ev[7] == self.session_id \
                or ev[10] not in STREAMED_KINDS:
            return []
        return stream.messages(ev)

    def _unsubscribe(self, msg, req_id, now):
        return self._subs.unsubscribe(msg, req_id)

    def _ping(self, msg, req_id, now):
        return [Reply(with_req_id({"type": "pong"}, req_id))]

    def _login(self, msg, req_id, now):
        if self.state is State.AUTHENTICATED:
            raise Refused(E.ALREADY_AUTHENTICATED, "this connection is logged in already")
        if self.state is State.LOGGING_IN:
            raise Refused(E.LOGIN_PENDING, "a login is being checked already")
        key = rq.api_key(msg)
        if key is None:
            return self._auth_failure(req_id)
        wait_ms = self.login_backoff_ms(now)
        if wait_ms:
            return self._auth_failure(req_id, wait_ms)
        self._login_cod = rq.bool_field(msg, "cancel_on_disconnect")
        self.state = State.LOGGING_IN
        self._login_req_id = req_id
        return [Authenticate(key)]

    def _send(self, now: int, request: tuple, barrier: bool = False,
              items: object = None) -> list[Action]:
        """Queue a command (and, when ``barrier``, a QUERY_BALANCES after it whose first
        event proves every event of the command has arrived: the engine handles one
        gateway's commands in order and answers a balance query with >= 1 event)."""
        if len(self._pending) + 1 + barrier > self.limits.max_pending:
            raise Refused(E.OVERLOADED, "too many requests awaiting the engine; retry later")
        account = self.account
        assert account is not None          # private ops run only once authenticated
        req_id, op, kind, fields = request
        if items is None:
            items = {} if op == "balances" else [] if op == "open_orders" \
                else fields.get("symbol")
        ref = self._pending.add(Request(req_id, op, items, sent_ns=now,
                                        recv_ts=self._wall() if op in RECV_TS_OPS else 0))
        actions: list[Action] = [SendCommand(rq.command(
            kind, account, self.session_id, ref, now, **fields))]
        if barrier:
            b = self._pending.add(Request(None, BARRIER, target=ref))
            actions.append(SendCommand(rq.command(
                _QUERY_BALANCES, account, self.session_id, b, now)))
        return actions

    # ------------------------------------------------------------ authentication results
    def authenticated(self, account: int, admin: bool = False) -> list[Action]:
        """The adapter verified the key of this connection and found ``account``
        (``admin``: the key is the exchange's admin key, which may deposit and withdraw).
        After a ``login`` message this returns the ``login`` reply; after a handshake
        ``Authorization`` header (call it before the first frame) it returns nothing."""
        if self.state is State.CLOSED:
            return []
        if self.state is State.AUTHENTICATED:
            raise ValueError("session is authenticated already")
        if not 0 <= account <= U32_MAX or (account == 0 and not admin):
            raise ValueError(f"account {account} cannot trade")
        logging_in = self.state is State.LOGGING_IN
        self.state = State.AUTHENTICATED
        self.account = account
        self.admin = bool(admin)
        if self._budgets is not None and not admin:
            self._shared = self._budgets.account(account, self._clock())
            self._shared_limit = "account"
        elif self._budgets is not None:
            self._shared = None                  # the admin's transfers are not budgeted
        if not logging_in:
            return []
        self.cancel_on_disconnect = self.cancel_on_disconnect or self._login_cod
        return [Reply(with_req_id({"type": "login", "ok": True, "account": account,
                                   "admin": self.admin,
                                   "cancel_on_disconnect": self.cancel_on_disconnect},
                                  self._login_req_id))]

    def auth_failed(self) -> list[Action]:
        """The key of the pending ``login`` is unknown: an ``auth_failed`` error, and a
        Close after ``max_auth_failures`` failures on this connection."""
        if self.state is State.CLOSED or self.state is State.AUTHENTICATED:
            return []
        self.state = State.ANONYMOUS
        return self._auth_failure(self._login_req_id)

    def login_backoff_ms(self, now: int) -> int:
        """0, or how long this connection's address must wait before its next login is
        checked: it failed more logins than its budget (``ip_login_failures_per_min``)."""
        if self._address is None:
            return 0
        return self._address.login_failures.retry_after_ms(now)

    def _auth_failure(self, req_id: object, backoff_ms: int = 0) -> list[Action]:
        """A failed login (``backoff_ms``: refused unchecked, the address must wait)."""
        self._auth_failures += 1
        if self._address is not None and not backoff_ms:
            self._address.login_failures.try_take(self._clock())
        if self._auth_failures >= self.limits.max_auth_failures:
            return self._close(CloseCode.POLICY_VIOLATION, E.AUTH_FAILED,
                               "too many failed logins", req_id)
        if backoff_ms:
            return [Reply(error(E.RATE_LIMITED, "too many failed logins from your address; "
                                "this one was not checked", req_id, limit="login_failures",
                                retry_after_ms=backoff_ms))]
        return [Reply(error(E.AUTH_FAILED, "unknown api key", req_id))]

    def _close(self, code: CloseCode, err: E, reason: str, req_id: object = None) -> list[Action]:
        self.state = State.CLOSED
        return [Reply(error(err, reason, req_id)), Close(int(code), reason)]

    # ------------------------------------------------------------ adapter-side outcomes
    def close(self, code: CloseCode, err: E, reason: str) -> list[Action]:
        """The adapter closes the connection for a reason of its own (a client that does
        not read, a shutdown): the ``error`` to send (if the socket still takes it) and
        the Close. The session ignores all further input."""
        if self.state is State.CLOSED:
            return [Close(int(code), reason)]
        return self._close(code, err, reason)

    def disconnected(self) -> list[Action]:
        """The socket is gone (closed by either side). Returns the cancel-on-disconnect
        command when this session asked for it: a CANCEL_ALL of every symbol with
        CMD_DISCONNECT, which the engine applies to this session's orders only. The
        adapter must deliver it (wait for ring room rather than drop it)."""
        self.state = State.CLOSED
        if self.account is None or not self.cancel_on_disconnect or self._gone:
            return []
        self._gone = True
        return [SendCommand(rq.command(_CANCEL_ALL, self.account, self.session_id, 0,
                                       self._clock(), symbol=ALL_SYMBOLS,
                                       flags=CMD_DISCONNECT))]

    def commands_refused(self, records: list[np.ndarray], code: E = E.OVERLOADED,
                         message: str = "the engine is not keeping up; retry later",
                         ) -> list[Reply]:
        """The adapter did not write ``records`` (the SendCommand records of one input):
        forget their requests and return the error for the client instead -- by default
        ``overloaded`` (no room in the command ring); the gateway also refuses an admin
        transfer to an account that does not exist (``unknown_account``)."""
        req_id = None
        for rec in records:
            request = self._pending.pop(int(rec["ref"][0]))
            if request is not None and request.op != BARRIER and req_id is None:
                req_id = request.req_id
        return [Reply(error(code, message, req_id))]

    # ------------------------------------------------------------ engine events
    def pending_count(self) -> int:
        """Requests awaiting the engine."""
        return len(self._pending)

    @property
    def orders(self) -> dict[int, tuple[int, str | None, str]]:
        """This session's live orders learnt from events: order_id -> (symbol id,
        client_order_id, side). Read-only for callers."""
        return self._events.orders

    def event_to_messages(self, event: np.void | tuple) -> list[dict]:
        """Messages for one EVENT record routed to this session (by ``event.session``);
        an event of another session or account, or before login, gives [].
        ``event`` is a record (``batch[i]``) or its tuple (``batch.tolist()[i]``,
        the faster way through a batch).

        Resolves the request's ``req_id`` for direct replies, gathers multi-event
        answers (balances, open_orders, cancel_all) and tracks this session's orders.
        Send the returned messages in order, each with ``encode``.
        """
        # isinstance (not type() is) so mypy narrows; a record's item() is a tuple
        ev = event if isinstance(event, tuple) else cast(tuple, event.item())
        if self.state is not State.AUTHENTICATED or ev[7] != self.session_id:
            return []
        if ev[6] != self.account and not (self.admin and self._is_transfer(ev[8])):
            return []
        if ev[10] == EK.OPEN_ORDER and self._subs.stream is not None:
            # the orders channel's fills of orders placed before it was subscribed
            self._subs.stream.remember(ev)
        return self._events.messages(ev)

    def _is_transfer(self, ref: int) -> bool:
        request = self._pending.get(ref)
        return request is not None and request.op in rq.ADMIN_OPS
