"""Sans-I/O core of the WebSocket gateway (DESIGN section 5, docs/protocol.md).

No asyncio and no sockets here: the gateway adapter feeds frames and engine events in
and performs the returned actions.

    Session(config, session_id)              one per connection
      .receive_text(frame)   -> [Action]     each text frame (str or UTF-8 bytes)
      .receive_binary(frame) -> [Action]     each binary frame (closes 1003)
      .authenticated(account) / .auth_failed() -> [Action]   after Authenticate
      .event_to_messages(event) -> [dict]    each EVENT record for this session
    MarketFeed(config)                       one per gateway
      .apply(events) -> [(channel, symbol, dict)]   market-data events, per batch
      .snapshot(symbol) -> dict              book_snapshot for a new subscriber
    BookSync(feed, session_id)               loads the feed's books from the engine
      .request(symbol_ids) -> [record]       QUERY_BOOKs + marker to write
      .on_event(event) -> bool / .finish() -> [symbol]   see booksync
    encode(dict) -> bytes                    JSON to send as a text frame

Actions: SendCommand(record), Reply(message), Subscribe(channel, symbol),
Unsubscribe(channel, symbol), Authenticate(api_key), Close(code, reason).

Modules: session (the state machine), requests (JSON -> COMMAND fields), events
(EVENT -> messages), pending (refs awaiting the engine), feed (market data), booksync
(book snapshots from the engine), messages
(message builders), numbers (exact decimals, client ids), codes (wire codes),
ratelimit, symbols, actions.
"""
from ringex.io.protocol.actions import (
    Action, Authenticate, Close, Reply, SendCommand, Subscribe, Unsubscribe,
)
from ringex.io.protocol.codes import (
    CANCEL_REASONS, REJECT_CODES, CloseCode, ErrorCode,
)
from ringex.io.protocol.booksync import BookSync
from ringex.io.protocol.feed import MarketFeed
from ringex.io.protocol.messages import (
    book_snapshot_message, book_update_message, encode, trade_message,
)
from ringex.io.protocol.numbers import pack_client_id, unpack_client_id
from ringex.io.protocol.session import (
    Session, SessionLimits, State, kernel_fill_fee, session_number,
)

__all__ = [
    "Action", "Authenticate", "BookSync", "Close", "Reply", "SendCommand", "Subscribe", "Unsubscribe",
    "CANCEL_REASONS", "REJECT_CODES", "CloseCode", "ErrorCode", "MarketFeed",
    "book_snapshot_message", "book_update_message", "encode", "trade_message",
    "pack_client_id", "unpack_client_id", "Session", "SessionLimits", "State",
    "kernel_fill_fee", "session_number",
]
