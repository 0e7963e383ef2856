"""Many nodes, one Redis: a node hears the channels of the jobs its clients watch, and no others.

The merge script publishes every stored update on the job's shard channel (``SPUBLISH``) and,
when the job has an owner, on the owner's channel (``PUBLISH``); see ``constants``. What this
manager adds to the local ``FanoutManager``, and why:

- Subscriptions follow the watchers. The first local watcher of a room (a socket joining
  ``job:<id>`` or ``user:<sub>``, or an SSE stream listening to it) subscribes the node to the
  room's channel; the last one leaving unsubscribes it. A node with no watcher of a job hears
  none of its messages, so the cost of a job is paid only where someone watches it.
- Join, then read. ``enter_room`` and ``listen`` return only once Redis has confirmed the
  subscription: whatever is published after the watcher's snapshot read is heard, whatever was
  published before is in the read (the client drops a repeat by ``seq``).
- What arrives is delivered to the local room only, never published again. A socket in both
  the job's room and its owner's room gets the event once, from the job's channel.
- One subscription connection on a single Redis; on a Redis Cluster, one per master that owns
  a watched job's slot (a shard channel is heard only there), the owners' channels and the
  probe on the master of the probe's slot (classic ``PUBLISH`` reaches every node of a
  cluster, so any one would do). Each is made again, with capped exponential backoff, after any
  failure, re-subscribing its channels on whichever master owns them then.
- A probe, published every ``probe_interval`` seconds on a channel of this node's own, which
  every connection subscribes. A subscription can stay connected yet stop receiving (a proxy or
  failover dropped it); when one has heard nothing for three intervals it is made afresh.
  ``listening`` is false until they hear again, and ``/readyz`` reports that.
- Catch-up after a gap. Events published while a node was not subscribed to a channel it needs
  (its connection failed, its master died, its slot moved) never reached it, and its clients
  cannot tell what they missed. So when the connection that subscribes such a channel again
  first answers, the node closes its Socket.IO connections at the transport (clients reconnect and
  re-subscribe with ``epoch`` and ``since``, as after a node's death) and tells its room
  listeners (SSE streams) to catch up from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import Counter
from typing import Any

from redis.asyncio.cluster import RedisCluster
from tidings.constants import NAMESPACE, job_room, probe_channel, room_channel
from tidings.errors import StoreUnavailable
from tidings.realtime.connections import close_all
from tidings.realtime.fanout import JOB_EVENTS, EventText, FanoutManager, plain
from tidings.realtime.subscription import Address, Channel, Link
from tidings.store.redis_store import Client, connect

logger = logging.getLogger(__name__)

#: Silent probe intervals after which a subscription counts as deaf.
DEAF_AFTER = 3
#: Longest wait between attempts to subscribe (python-socketio's own cap).
MAX_BACKOFF = 60.0
#: Bound on closing connections after a gap: a peer that is gone may never answer.
CLOSE_TIMEOUT = 3.0
#: Bound on waiting at startup for a subscription that neither hears nor fails.
START_TIMEOUT = 5.0
#: Bound on waiting for Redis to confirm a room's subscription before a watcher's read.
CONFIRM_TIMEOUT = 5.0


class RedisManager(FanoutManager):
    """The local fan-out, fed by the Redis channels of the rooms it has watchers in."""

    def __init__(self, url: str, *, probe_interval: float = 5.0) -> None:
        super().__init__()
        self.url = url
        self.probe_interval = probe_interval
        self.node_id = secrets.token_urlsafe(9)
        self.probe = probe_channel(self.node_id)
        self.resubscribes = 0
        #: Messages heard, by channel (the probe's included): what this node pays for.
        self.heard: Counter[str] = Counter()
        self._channels: dict[str, Channel] = {}
        #: Channels whose subscription ended after Redis had confirmed it, until their next
        #: link hears: events of that gap may be missing.
        self._lost: set[Channel] = set()
        #: The subscription connections, by the master they are on (one, None, without cluster).
        self._links: dict[Address, Link] = {}
        self._home: Address = None  # where the probe and the owners' channels are subscribed
        self._client: Client | None = None
        self._arranging = asyncio.Event()  # channels wait for a link, or a link ended
        self._failed = False  # wait before connecting again
        self._stale = True  # the cluster's slot table must be read again
        self._backoff = 1.0
        self._settled = asyncio.Event()  # the first subscription heard, or failed
        self._tasks: list[asyncio.Task[None]] = []
        self._ending: set[asyncio.Task[None]] = set()

    @property
    def _cluster(self) -> RedisCluster | None:
        return self._client if isinstance(self._client, RedisCluster) else None

    async def start(self) -> None:
        """Subscribe when the node starts, and wait until the subscription hears or fails: a
        client that connected before it might miss events."""
        self._client = await asyncio.to_thread(connect, self.url)  # it may ask Redis, blocking
        self._arranging.set()
        self._tasks = [
            asyncio.create_task(self._arrange_forever()),
            asyncio.create_task(self._probe_forever()),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT):
                await self._settled.wait()

    # Watchers: sockets in rooms, and the fan-out's listeners.

    async def enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        try:
            await self.watch(room)
        except StoreUnavailable:
            self.basic_leave_room(sid, namespace, room)
            raise

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # every way out of a room comes here
        self.unwatch(room)

    def _watched(self, room: str) -> bool:
        return room in self.rooms.get(NAMESPACE, {}) or room in self._listeners

    async def watch(self, room: Any) -> None:
        """Return once the room's channel is subscribed and confirmed; StoreUnavailable when
        Redis does not confirm in time (the watcher's read would not be safe)."""
        target = room_channel(room) if isinstance(room, str) else None
        if target is None:
            return
        channel = self._channels.get(target[0])
        if channel is None:
            channel = self._channels[target[0]] = Channel(target[0], room, target[1])
            self._assign(channel)
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await channel.confirmed.wait()
        except TimeoutError:
            raise StoreUnavailable(
                "This node could not subscribe to the job's events in Redis; try again shortly."
            ) from None

    def subscribed(self, room: str) -> bool:
        """Redis has confirmed the room's channel on this node's subscription."""
        target = room_channel(room)
        channel = self._channels.get(target[0]) if target is not None else None
        return channel is not None and channel.confirmed.is_set()

    def unwatch(self, room: Any) -> None:
        target = room_channel(room) if isinstance(room, str) else None
        if target is None or self._watched(room):
            return
        channel = self._channels.pop(target[0], None)
        if channel is None:
            return
        self._lost.discard(channel)
        link = channel.link
        if link is None:
            return
        link.remove(channel)
        if not link.channels and link.address != self._home:
            self._end(link)  # no channel of this node on that master any more

    # Where each channel is subscribed.

    def _address_of(self, channel: Channel) -> Address:
        """The master that owns a shard channel's slot; the home link for the others."""
        cluster = self._cluster
        if cluster is None:
            return None
        node = cluster.get_node_from_key(channel.name if channel.sharded else self.probe)
        if node is None:
            raise LookupError(f"no master owns the slot of {channel.name}")
        return (str(node.host), int(node.port))

    def _assign(self, channel: Channel) -> None:
        """Subscribe a new channel on the link of its master, if there is one now (a master
        that is down does not hold up the others); otherwise the arranging task makes that
        link, after the backoff if links are failing."""
        link = None
        with contextlib.suppress(Exception):  # no slot table yet: arranging reads it
            link = self._links.get(self._address_of(channel))
        if link is None:
            self._arranging.set()
        else:
            link.add(channel)

    async def _arrange_forever(self) -> None:
        """Give every channel a link, and make links again after failures, with backoff."""
        while True:
            await self._arranging.wait()
            if self._failed:
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)
                self._failed = False
            self._arranging.clear()
            try:
                await self._arrange()
            except Exception as exc:  # the cluster's slot table could not be read
                self._failing(f"Redis cluster topology unknown ({exc})")

    async def _arrange(self) -> None:
        cluster = self._cluster
        if cluster is not None and self._stale:
            await cluster.nodes_manager.initialize()
        self._stale = False
        self._home = self._address_of(Channel(self.probe, "", sharded=False))
        needed = {self._home}
        for channel in self._channels.values():
            address = self._address_of(channel)
            needed.add(address)
            if channel.link is None:
                self._link_to(address).add(channel)
        self._link_to(self._home)
        for address, link in list(self._links.items()):
            if address not in needed:
                self._end(link)

    def _link_to(self, address: Address) -> Link:
        link = self._links.get(address)
        if link is None:
            link = self._links[address] = Link(self, self.url, address, self.probe).start()
        return link

    def _end(self, link: Link) -> None:
        """Stop a link the node no longer needs (or one that went deaf)."""
        self._release(link)
        if link.task is not None:
            task = asyncio.get_running_loop().create_task(link.stop())
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    def _release(self, link: Link) -> None:
        """Its channels wait for another link; those it had confirmed now have a gap."""
        if self._links.get(link.address) is link:
            del self._links[link.address]
        for channel in link.channels.values():
            self._unsubscribed(channel)
        link.channels.clear()
        self._arranging.set()

    def _unsubscribed(self, channel: Channel) -> None:
        if channel.confirmed.is_set():
            self._lost.add(channel)
            channel.confirmed.clear()  # a watcher arriving now waits for the new link
        channel.link = None

    def _failing(self, reason: str) -> None:
        self._settled.set()
        self._failed = self._stale = True
        self._arranging.set()
        logger.warning("%s; subscribing again in %.0f s", reason, self._backoff)

    # What the links report (subscription.Owner).

    def ended(self, link: Link, error: BaseException) -> None:
        self._release(link)
        self._failing(f"Redis subscription failed ({error})")

    def taken(self, link: Link, name: str) -> None:
        self._unsubscribed(link.channels.pop(name))
        self._stale = True  # its slot moved: read the table again before subscribing it
        self._arranging.set()
        logger.warning("Redis moved %s off %s; subscribing it again", name, link.address)

    async def answered(self, link: Link) -> None:
        """Its first answer is the confirmation of the probe, subscribed first: the channels
        lost before it are subscribed (or about to be) on a connection that works."""
        self._settled.set()
        if link.fresh:
            link.fresh = False
            self._backoff = 1.0  # it works: a later failure starts over from short waits
        if self._lost:
            healed = {channel for channel in self._lost if channel.link is link}
            if healed:
                self._lost -= healed
                await self._catch_up_clients()

    async def message(self, link: Link, name: str, data: Any) -> None:
        self.heard[name] += 1
        channel = self._channels.get(name)
        if channel is None or channel.link is not link:
            return  # the probe, or a channel left since
        try:
            event, payload = split_message(data)
            besides = None
            if not channel.sharded:
                # The owner's channel: who watches the job itself has it from the job's channel.
                value = plain(payload)
                job = value.get("job_id") if isinstance(value, dict) else None
                if isinstance(job, str):
                    besides = job_room(job)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed message on %s", name)
            return
        await self.deliver(event, payload, channel.room, besides=besides)

    async def _catch_up_clients(self) -> None:
        """Make this node's clients fill what it may have missed before this subscription."""
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.overflowed = True
        eio = self.server.eio
        if not eio.sockets:
            return
        logger.warning(
            "subscribed to Redis again: closing %d connections so their clients catch up",
            len(eio.sockets),
        )
        await close_all(eio, CLOSE_TIMEOUT)

    # The probe.

    @property
    def listening(self) -> bool:
        """Every subscription connection heard something (at least its probe) lately."""
        now = time.monotonic()
        window = DEAF_AFTER * self.probe_interval
        home = self._links.get(self._home)
        return (
            home is not None
            and now - home.last_heard < window
            and all(link.silent_for(now) < window for link in self._links.values())
        )

    async def _send_probe(self) -> None:
        # A failed publish is only logged: the silence that follows tells.
        if self._client is None:
            return
        try:
            await self._client.execute_command("PUBLISH", self.probe, "probe")
        except Exception as exc:
            logger.warning("could not publish the subscription probe: %s", exc)

    async def _probe_forever(self) -> None:
        while True:
            await self._send_probe()
            await asyncio.sleep(self.probe_interval)
            now = time.monotonic()
            for link in list(self._links.values()):
                silent = link.silent_for(now)
                if silent >= DEAF_AFTER * self.probe_interval:
                    logger.warning(
                        "Redis subscription heard nothing for %.1f s; subscribing again", silent
                    )
                    self.resubscribes += 1
                    self._end(link)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for link in list(self._links.values()):
            await link.stop()
        self._links.clear()
        await asyncio.gather(*self._ending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_EVENT_HEAD = '{"event":"'
_DATA_HEAD = '","data":'


def split_message(message: str) -> tuple[str, Any]:
    """(event, data) of a published ``{"event": ..., "data": ...}``; ValueError, KeyError or
    TypeError when it is none. A job event, as the merge script and ``RedisPublisher`` write
    it (compact, ``event`` first), keeps its data as text (``EventText``): the fan-out
    forwards it without decoding it."""
    if message.startswith(_EVENT_HEAD) and message.endswith("}"):
        end = message.find(_DATA_HEAD, len(_EVENT_HEAD))
        event = message[len(_EVENT_HEAD) : end]
        if end > 0 and event in JOB_EVENTS:
            return event, EventText(message[end + len(_DATA_HEAD) : -1])
    decoded = json.loads(message)
    return decoded["event"], decoded["data"]
