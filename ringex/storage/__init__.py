"""Persistence: the ``trade_queue`` from the matcher and gateways to the ``writer``, the
``projection`` of events into rows (kernels in ``row_kernels``), the ``schema``, and the
repositories (``repository`` base, ``sqlite_store``, ``pg_store``; ``stores`` opens one)."""
