"""Where the idle memory of a subscribed websocket goes, per component (a development tool).

The benchmark's memory row (``bench_vs_node.py --only idle_memory``) gives one number: RSS delta
per connection. This runs one tidings node in this process (the Redis store, on uvloop, as
``tidings serve`` runs), opens ``--connections`` subscribed websockets with the bench's load
client, and prints, per connection:

- the RSS delta, and the Python allocations (tracemalloc, snapshots diffed between 0 and N
  connections) grouped by the component that made them: the innermost frame of aiohttp,
  python-engineio, python-socketio or tidings in the allocation's traceback (so a task that
  engine.io starts counts for engine.io), then by that frame's file and line;
- the asyncio tasks per connection, by coroutine, with the size of their frames;
- ``sys.getsizeof``-deep sizes of the per-connection objects (the engine.io socket and its
  queue, aiohttp's WebSocketResponse, its request and RequestHandler, the WSGI environ that
  python-socketio keeps, the namespace's session), each counting only what the ones before it
  did not.

    python bench/memory_breakdown.py --connections 2000

tracemalloc slows the node and its bookkeeping costs memory of its own: compare RSS figures with
the benchmark's, not with this tool's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import sys
import tempfile
import tracemalloc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tests.support import RedisServer, free_port  # noqa: E402

COMPONENTS = (
    ("aiohttp", "/aiohttp/"),
    ("engineio", "/engineio/"),
    ("socketio", "/socketio/"),
    ("tidings", "/tidings/"),
)
#: Objects never counted as a connection's own: shared by every connection.
SHARED_TYPES = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)


def rss_kib() -> int:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    raise RuntimeError("no VmRSS")


def owner(trace: tracemalloc.Traceback) -> tuple[str, str, str]:
    """(component, file:line of its innermost frame, file:line of the innermost frame)."""
    innermost = f"{Path(trace[-1].filename).name}:{trace[-1].lineno}"
    for frame in reversed(trace):  # a Traceback runs from the oldest frame to the most recent
        for name, marker in COMPONENTS:
            if marker in frame.filename:
                where = frame.filename.split(marker, 1)[1]
                return name, f"{where}:{frame.lineno}", innermost
    return "other", innermost, innermost


def allocations(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int) -> None:
    by_component: collections.Counter[str] = collections.Counter()
    by_line: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for stat in after.compare_to(before, "traceback"):
        key = owner(stat.traceback)
        by_component[key[0]] += stat.size_diff
        by_line[key] += stat.size_diff
    total = sum(by_component.values())
    print(f"\nPython allocations per connection: {total / n / 1024:.2f} KiB")
    for name, size in by_component.most_common():
        print(f"  {name:10} {size / n:8.0f} B")
    print("\nby line (bytes per connection; the component's frame, then the innermost one):")
    for (name, where, innermost), size in by_line.most_common(40):
        if size / n >= 16:
            print(f"  {size / n:7.0f}  {name:9} {where:40} {innermost}")


def frame_sizes(coro: Any) -> int:
    """Bytes of a coroutine's chain (the coroutine objects awaiting one another, each with its
    frame)."""
    return sum(size for _, size in chain(coro))


def tasks(before: set[asyncio.Task[Any]], n: int) -> None:
    count: collections.Counter[str] = collections.Counter()
    size: collections.Counter[str] = collections.Counter()
    chains: dict[str, Any] = {}
    for task in asyncio.all_tasks() - before:
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        count[name] += 1
        size[name] += sys.getsizeof(task) + frame_sizes(coro)
        chains[name] = coro
    print(f"\nasyncio tasks per connection: {sum(count.values()) / n:.2f}, by coroutine:")
    for name, number in count.most_common():
        print(f"  {number / n:5.2f} x {name:55} {size[name] / number:6.0f} B each")
        for where, bytes_ in chain(chains[name]):
            print(f"  {'':13}{bytes_:5} B  {where}")


def chain(coro: Any) -> Iterator[tuple[str, int]]:
    """(coroutine, its size with its frame) down the chain it awaits."""
    while coro is not None:
        yield getattr(coro, "__qualname__", type(coro).__name__), sys.getsizeof(coro)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def deep_size(
    root: object,
    seen: set[int],
    keep: list[object] | None = None,
    stop: frozenset[int] = frozenset(),
) -> int:
    """Bytes reachable from ``root`` and not in ``seen`` (which it extends) nor beyond the
    objects in ``stop``; ``keep``, if given, holds on to each object counted, so that its id
    stays its own."""
    size = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, SHARED_TYPES):
            continue
        if id(obj) in stop and obj is not root:
            continue
        seen.add(id(obj))
        if keep is not None:
            keep.append(obj)
        size += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return size


class Shared:
    """Everything the node holds before its connections: never counted as a connection's."""

    def __init__(self, roots: list[object]) -> None:
        self.ids: set[int] = set()
        self.objects: list[object] = []
        deep_size(roots, self.ids, self.objects)


def objects(app: Any, shared: Shared, before: set[asyncio.Task[Any]], n: int) -> None:
    """Deep sizes of each connection's objects, each stopping at the others (and at tasks)."""
    from tidings.constants import NAMESPACE
    from tidings.web.keys import SIO

    sio = app[SIO]
    namespace = sio.namespace_handlers[NAMESPACE]
    roots: list[tuple[str, object]] = []
    for eio_sid, socket in list(sio.eio.sockets.items()):
        sid = sio.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        roots += per_socket_objects(sio, socket, namespace._sessions.get(sid))
    tasks = [task for task in asyncio.all_tasks() - before]
    roots += [(f"task {task.get_coro().__qualname__}", task) for task in tasks]  # type: ignore[union-attr]
    boundary = frozenset(id(obj) for _, obj in roots)
    sizes: collections.Counter[str] = collections.Counter()
    seen = set(shared.ids)
    for name, obj in roots:
        sizes[name] += deep_size(obj, seen, stop=boundary)
    print("\nper-connection objects (deep, each up to the others and to tasks):")
    for name, size in sizes.most_common():
        print(f"  {size / n:7.0f} B  {name}")
    print(f"  {sum(sizes.values()) / n:7.0f} B  in all")


def per_socket_objects(sio: Any, socket: Any, session: Any) -> Iterator[tuple[str, object]]:
    yield "engine.io AsyncSocket (its queue, session dict)", socket
    websocket = sio.eio.websockets.get(socket.sid)
    if websocket is not None:
        yield "aiohttp WebSocketResponse (reader, writer)", websocket
        yield "aiohttp Request (headers, match info)", websocket._req
        yield "aiohttp RequestHandler (parser, transport)", websocket._req.protocol
    yield "python-socketio environ (the WSGI dict)", sio.environ.get(socket.sid)
    yield "tidings session", session


async def prime(redis_url: str, jobs: int) -> None:
    from tidings import ProgressEmitter, Settings

    async with ProgressEmitter.from_url(redis_url, Settings(coalesce_window=0)) as emitter:
        await asyncio.gather(
            *(emitter.send_progress(f"bench-{i}", "extracting", 1) for i in range(jobs))
        )


async def measure(args: argparse.Namespace, redis_url: str) -> None:
    from aiohttp import web
    from tidings import Settings
    from tidings.web import create_app

    await prime(redis_url, args.jobs)
    port = free_port()
    app = create_app(Settings(host="127.0.0.1", port=port, redis_url=redis_url))
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.sleep(args.settle)
        shared = Shared([app, asyncio.get_running_loop()])
        gc.collect()
        rss0 = rss_kib()
        tasks0 = asyncio.all_tasks()
        snapshot0 = tracemalloc.take_snapshot() if args.frames else None
        argv = [str(BENCH / "loadclient.py"), "--url", f"http://127.0.0.1:{port}"]
        argv += ["--clients", str(args.connections), "--jobs", str(args.jobs)]
        client = await asyncio.create_subprocess_exec(
            sys.executable, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert client.stdout is not None and client.stdin is not None
        ready = json.loads((await client.stdout.readline()).decode().split(" ", 1)[1])
        if ready["failed"]:
            raise SystemExit(f"{ready['failed']} connections failed: {ready['first_error']}")
        await asyncio.sleep(args.settle)
        gc.collect()
        rss1 = rss_kib()
        n = args.connections
        print(f"{n} idle subscribed websockets; RSS delta per connection ", end="")
        print(f"{(rss1 - rss0) / n:.1f} KiB (tracemalloc {'on' if args.frames else 'off'})")
        if snapshot0 is not None:
            allocations(snapshot0, tracemalloc.take_snapshot(), n)
        tasks(tasks0, n)
        objects(app, shared, tasks0, n)
        client.stdin.write(b"quit\n")
        await client.stdin.drain()
        await client.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--frames", type=int, default=16, help="tracemalloc depth (0: off)")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds before each snapshot")
    args = parser.parse_args()
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.frames:
        tracemalloc.start(args.frames)
    with tempfile.TemporaryDirectory(prefix="breakdown-") as logs:
        redis = RedisServer(Path(logs))
        redis.start()
        try:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(measure(args, redis.url))
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
