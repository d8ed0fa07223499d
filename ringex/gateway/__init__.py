"""The WebSocket gateway: ``server`` (one gateway process), ``connection`` (a client's
socket), ``pump`` (engine events and market data to connections) and its ``pump_wait``,
``auth`` (API keys) and ``audit`` (session records for the writer). The protocol itself is
``ringex.protocol`` (sans-I/O)."""
