"""The WebSocket protocol as a sans-I/O state machine (docs/protocol.md).

No asyncio, no sockets and no numba here: the gateway (``ringex.gateway``) feeds frames
and engine events in and performs the returned actions.

    Session(config, session_id)              session: one per connection
      .receive_text(frame)   -> [Action]     each text frame (str or UTF-8 bytes)
      .receive_binary(frame) -> [Action]     each binary frame (closes 1003)
      .authenticated(account) / .auth_failed() -> [Action]   after Authenticate
      .event_to_messages(event) -> [dict]    each EVENT record for this session
    MarketFeed(config)                       feed: one per gateway
      .apply(events) -> [(channel, symbol, dict)]   market-data events, per batch
      .snapshot(symbol) -> dict              book_snapshot for a new subscriber
    BookSync(feed, session_id)               booksync: loads the feed's books from the engine
    encode(dict) -> bytes                    messages: JSON to send as a text frame

Actions (``actions``): SendCommand(record), Reply(message), Subscribe(channel, symbol),
Unsubscribe(channel, symbol), Authenticate(api_key), Close(code, reason).

Other modules: requests (JSON -> COMMAND fields), events (EVENT -> messages), pending
(refs awaiting the engine), client_ids (client order id keys), client_texts (a gateway's
texts of long client ids), codes (wire codes), ratelimit, symbols. Import from the
modules themselves; this package exports nothing.
"""
