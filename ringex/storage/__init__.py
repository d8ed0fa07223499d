"""Persistence: the ``trade_queue`` from the matcher and gateways to the ``writer``, the
``projection`` of events into rows (``event_rows``, ``order_rows``), the ``schema``, and the
repositories (``repository`` base, ``sqlite_store``, ``pg_store``; ``stores`` opens one)."""
