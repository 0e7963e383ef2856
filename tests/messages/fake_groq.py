"""A fake Groq API: the one mock of the suite, at the one boundary that cannot run here.

An aiohttp handler answering Groq's chat-completions HTTP API with scripted replies, so that the
real groq and instructor SDKs run end to end against it.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """One scripted answer: a tool call carrying ``template``, or an error status, maybe late."""

    template: str | None = None
    status: int = 200
    delay: float = 0.0
    #: When set, the reply waits for this event (the test releases it) instead of ``delay``.
    gate: asyncio.Event | None = None


def completion(template: str) -> dict[str, Any]:
    """An OpenAI-shaped chat completion whose tool call answers ``StepTemplate``."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "llama-3.1-8b-instant",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "StepTemplate",
                                "arguments": json.dumps({"template": template}),
                            },
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102},
    }


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.raw)
        return body


@dataclass
class FakeGroq:
    """A local server speaking Groq's chat-completions API; replies are scripted per test."""

    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    base_url: str = ""
    #: Set when the first request has arrived (await it instead of polling).
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, dict(request.headers), await request.read()))
        self.arrived.set()
        if not self.replies:
            return web.json_response({"error": {"message": "nothing scripted"}}, status=503)
        reply = self.replies.popleft()
        waiting = [asyncio.ensure_future(self._released.wait())]
        if reply.gate is not None:
            waiting.append(asyncio.ensure_future(reply.gate.wait()))
        if reply.gate is not None or reply.delay:
            _, pending = await asyncio.wait(
                waiting,
                timeout=reply.delay or None,
                return_when=asyncio.FIRST_COMPLETED,
            )
        else:
            pending = set(waiting)
        for future in pending:
            future.cancel()
        if reply.status != 200:
            error = {"error": {"message": f"scripted {reply.status}", "type": "test"}}
            return web.json_response(error, status=reply.status)
        assert reply.template is not None
        return web.json_response(completion(reply.template))

    def release(self) -> None:
        """Let every waiting reply finish (teardown: nothing may hang)."""
        self._released.set()
