"""Typed keys for everything ``create_app`` and its parts store on the application, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import socketio
from aiohttp import web
from tidings.auth import Authority
from tidings.realtime.fanout import FanoutManager
from tidings.service import JobService
from tidings.settings import Settings

if TYPE_CHECKING:  # the parts import these keys, so their types are named lazily
    from pathlib import Path

    from tidings.ingest import PipelineRunner
    from tidings.web.api import FailureThrottle
    from tidings.web.metrics import Metrics
    from tidings.web.reload import LiveReload
    from tidings.web.sse import Streams

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", JobService)
AUTHORITY = web.AppKey("authority", Authority)
SIO = web.AppKey("sio", socketio.AsyncServer)
#: Local listeners on rooms (SSE streams); the Socket.IO client manager itself.
FANOUT = web.AppKey("fanout", FanoutManager)
#: Who hears of hot reloads: the sockets and the ``GET /api/live`` streams.
LIVE: web.AppKey[LiveReload] = web.AppKey("live")
#: The node's Prometheus registry and metrics.
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
#: The open SSE streams, counted and told to end at shutdown.
STREAMS: web.AppKey[Streams] = web.AppKey("sse_streams")
#: Wrong credentials, per client address.
THROTTLE: web.AppKey[FailureThrottle] = web.AppKey("auth_throttle")
#: The upload pipelines and the directory uploads are written to.
PIPELINES: web.AppKey[PipelineRunner] = web.AppKey("pipelines")
UPLOAD_DIR: web.AppKey[Path] = web.AppKey("upload_dir")
