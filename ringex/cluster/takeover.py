"""The takeover marker: how a standby that took the lease claims the stream.

    data = marker_entry(batch)                   # an empty RXJ3 entry of that batch
    stored = await append_marker(nc, js, opts, seq_before, data, holder)

The marker is a journal entry without commands, so the stream stays a plain journal
(readers, replays and ``check_entry`` need nothing new) and replaying it changes no state.
It is appended with ``Nats-Expected-Last-Sequence`` set to the last entry the standby
applied: stored only if the stream ends exactly there. The old primary's next append then
expects an older last sequence and is refused, and its resync finds an entry that is not
its own: fenced (appender.py). The message's ``Ringex-Takeover`` header names the new
holder (the data is the same for any standby, the header tells whose marker it is).
"""
from __future__ import annotations

import json
import struct

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ringex.cluster.appender import EXPECTED_LAST_SEQ, WRONG_LAST_SEQUENCE
from ringex.cluster.settings import ClusterOptions
from ringex.core.checksum import crc32c
from ringex.core.journal import HEADER, MAGIC

TAKEOVER_HEADER = "Ringex-Takeover"


def marker_entry(batch: int) -> bytes:
    """The RXJ3 entry of ``batch`` with no commands (its check covers the header only)."""
    head = struct.pack("<IQI", MAGIC, batch, 0)
    return HEADER.pack(MAGIC, batch, 0, crc32c(head))


async def append_marker(nc: Client, js: JetStreamContext, opts: ClusterOptions, after: int,
                        data: bytes, holder: str) -> bool:
    """Append the marker at sequence ``after + 1``: True once stored, False when the
    stream no longer ends at ``after`` (it moved: catch up and try again)."""
    headers = {EXPECTED_LAST_SEQ: str(after), TAKEOVER_HEADER: holder}
    try:
        reply = await nc.request(opts.subject, data, timeout=opts.ack_timeout_ms / 1000,
                                 headers=headers)
    except nats.errors.TimeoutError:
        return await _is_ours(js, opts, after + 1, holder)    # stored after all?
    answer = json.loads(reply.data)
    error = answer.get("error")
    if error:
        if error.get("err_code") == WRONG_LAST_SEQUENCE:
            return False
        raise RuntimeError(f"standby: takeover marker refused: {error}")
    if answer.get("seq") != after + 1:
        raise RuntimeError(f"standby: takeover marker stored at sequence {answer.get('seq')}, "
                           f"not {after + 1}")
    return True


async def _is_ours(js: JetStreamContext, opts: ClusterOptions, seq: int, holder: str) -> bool:
    try:
        msg = await js.get_msg(opts.stream_name, seq)
    except NotFoundError:
        return False
    return (msg.headers or {}).get(TAKEOVER_HEADER) == holder
