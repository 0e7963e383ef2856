"""The HTTP layer of a node: ``create_app`` wires the store, the realtime layer and the routes."""

from tidings.web.app import create_app

__all__ = ["create_app"]
