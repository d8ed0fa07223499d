"""Transport between processes: shared-memory segments (``shm``), SPSC and broadcast rings,
wait strategies and the atomics they are built on. No business meaning lives here: the
records the rings carry are ``ringex.records``."""
