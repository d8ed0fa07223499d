"""Past one box: the journal replicated on a NATS JetStream stream (docs/cluster.md).

``settings`` (the ``[cluster]`` section) imports nothing heavy; ``stream`` (connection and
stream set-up), ``tail`` (the local journal, entry by entry), ``appender`` (fenced,
pipelined appends), ``replicator`` (the process) and ``reader`` (the stream from sequence
1) use nats-py.
"""
