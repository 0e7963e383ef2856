"""The baseline: one tidings node with its embedded memory store, updates made inside it.

No Redis on the path: ``ProgressEmitter.for_app`` merges in the node's memory and fans out to its
own sockets, so the row shows what the Redis store and the worker's publish add. Two bench
routes drive it (the bench only; never part of tidings): ``GET /bench/prime`` makes the jobs,
``GET /bench/start?rate=&duration=`` starts the pacing of ``tidings_worker.py`` in the node.

    python bench/embedded_node.py --port 8010 --jobs 100 --t0 0
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web
from tidings import ProgressEmitter, Settings
from tidings.web import create_app
from tidings_worker import pace, updater

TASKS = web.AppKey("bench_tasks", set[asyncio.Task[object]])


def build(args: argparse.Namespace) -> web.Application:
    app = create_app(Settings(host="127.0.0.1", port=args.port, coalesce_window=0, redis_url=""))
    app[TASKS] = set()

    def emitter() -> ProgressEmitter:
        return ProgressEmitter.for_app(app)

    async def prime(request: web.Request) -> web.Response:
        update = updater(emitter(), args.jobs, args.prefix, args.t0)
        await asyncio.gather(*(update(index) for index in range(args.jobs)))
        return web.json_response({"ok": True})

    async def start(request: web.Request) -> web.Response:
        rate = float(request.query["rate"])
        duration = float(request.query["duration"])
        update = updater(emitter(), args.jobs, args.prefix, args.t0)
        task: asyncio.Task[object] = asyncio.create_task(pace(update, rate, duration, 64))
        tasks: set[asyncio.Task[object]] = app[TASKS]
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True})

    async def stop_tasks(app: web.Application) -> None:
        tasks: set[asyncio.Task[object]] = app[TASKS]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.router.add_get("/bench/prime", prime)
    app.router.add_get("/bench/start", start)
    app.on_shutdown.append(stop_tasks)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--prefix", default="bench-")
    parser.add_argument("--t0", type=float, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(build(args), host="127.0.0.1", port=args.port, loop=loop, print=None)


if __name__ == "__main__":
    main()
