"""The HTTP layer of a node: ``create_app`` wires the store, the realtime layer and the routes;
``JsonErrorRunner`` runs it with every error in JSON, aiohttp's own parser's included."""

from tidings.web.app import create_app
from tidings.web.runner import JsonErrorRunner

__all__ = ["JsonErrorRunner", "create_app"]
