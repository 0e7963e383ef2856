"""Typed keys for what ``create_app`` stores on the application."""

from __future__ import annotations

import socketio
from aiohttp import web
from tidings.auth import Authority
from tidings.realtime.fanout import FanoutManager
from tidings.service import JobService
from tidings.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", JobService)
AUTHORITY = web.AppKey("authority", Authority)
SIO = web.AppKey("sio", socketio.AsyncServer)
#: Local listeners on rooms (SSE streams); the Socket.IO client manager itself.
FANOUT = web.AppKey("fanout", FanoutManager)
