"""Typed keys for what ``create_app`` stores on the application."""

from __future__ import annotations

from typing import TYPE_CHECKING

import socketio
from aiohttp import web
from tidings.auth import Authority
from tidings.realtime.fanout import FanoutManager
from tidings.service import JobService
from tidings.settings import Settings

if TYPE_CHECKING:
    from tidings.web.reload import LiveReload

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", JobService)
AUTHORITY = web.AppKey("authority", Authority)
SIO = web.AppKey("sio", socketio.AsyncServer)
#: Local listeners on rooms (SSE streams); the Socket.IO client manager itself.
FANOUT = web.AppKey("fanout", FanoutManager)
#: Who hears of hot reloads: the sockets and the ``GET /api/live`` streams.
LIVE: web.AppKey[LiveReload] = web.AppKey("live")
