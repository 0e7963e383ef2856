"""Closing a node's Socket.IO connections at the transport, so that clients reconnect."""

from __future__ import annotations

import asyncio
from typing import Any


async def close_all(eio: Any, within: float) -> int:
    """Close every engine.io connection of this node; how many had not closed within ``within`` s.

    Clients see the transport close and reconnect (to this node or another), re-subscribing with
    ``epoch`` and ``since``. Bounded: a peer that is already gone, a client that stopped reading,
    or a polling client that never polls again, would keep its close waiting forever.
    """
    closing = {asyncio.create_task(socket.close()): socket for socket in eio.sockets.values()}
    if not closing:
        return 0
    _, stuck = await asyncio.wait(closing, timeout=within)
    for task in stuck:
        task.cancel()
        # A client that stopped reading: its close waits behind a send it never takes, and the
        # connection would stay open as long as its peer keeps TCP alive (tidings' sockets
        # reset it: ``transport._Socket.cut``).
        cut = getattr(closing[task], "cut", None)
        if cut is not None:
            cut()
    await asyncio.gather(*stuck, return_exceptions=True)
    return len(stuck)
