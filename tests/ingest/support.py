"""Uploading over real sockets and waiting for the pipeline, for the ingest and upload tests."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tidings import Settings
from tidings.web.keys import SERVICE

from tests.support import http_json

TERMINAL = ("done", "error", "cancelled")


def settings_for(tmp_path: Path, redis_url: str | None = None, **overrides: Any) -> Settings:
    """Settings with uploads kept under ``tmp_path``; Redis when a URL is given."""
    return Settings(redis_url=redis_url, upload_dir=tmp_path / "uploads", **overrides)


def store_url(request: pytest.FixtureRequest) -> str | None:
    """The Redis URL for a fixture parametrised over ``memory`` and ``redis``."""
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


async def upload(
    url: str,
    files: Sequence[tuple[str, bytes]],
    *,
    token: str | None = None,
    query: str = "",
    fields: dict[str, str] | None = None,
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    for name, data in files:
        form.add_field(
            "files", io.BytesIO(data), filename=name, content_type="application/octet-stream"
        )
    for key, value in (fields or {}).items():
        form.add_field(key, value)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/upload{query}", data=form, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def finished(url: str, job_id: str, token: str | None = None) -> dict[str, Any]:
    """The job's snapshot once it is terminal (polling; a bound, not a timing assertion)."""
    for _ in range(1000):
        status, job = await http_json("GET", f"{url}/api/jobs/{job_id}", token=token)
        assert status == 200, job
        if job["status"] in TERMINAL:
            return dict(job)
        await asyncio.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not finish")


async def process(
    url: str, name: str, data: bytes, *, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    """Upload one file, as the same user every time (the pipeline compares a user's uploads
    with that user's earlier ones), and return its job's final snapshot."""
    status, body = await upload(url, [(name, data)], fields=fields, query="?user_id=tester")
    assert status == 202, body
    return await finished(url, body["jobs"][0]["job_id"])


async def events_of(url: str, job_id: str) -> list[dict[str, Any]]:
    """Every event of the job, in order (the store's history)."""
    status, job = await http_json("GET", f"{url}/api/jobs/{job_id}")
    assert status == 200
    status, body = await http_json(
        "GET", f"{url}/api/jobs/{job_id}/events?epoch={job['epoch']}&since=0"
    )
    assert status == 200 and body["recovered"], body
    return list(body["events"])


def steps(job: dict[str, Any]) -> list[str]:
    return [entry["step"] for entry in job["steps"]]


class Gate:
    """Holds every pipeline at its first report of ``step`` until ``release``.

    It wraps the service's store, so an event is stored (and, with Redis, published), then the
    pipeline that reported it waits: a point mid-pipeline that does not depend on timing.
    """

    def __init__(self, app: web.Application, step: str) -> None:
        self.service = app[SERVICE]
        self.inner = self.service.store
        self.limits = self.inner.limits
        self.step = step
        self.arrived: list[str] = []
        self._open = asyncio.Event()
        self.service.store = self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def apply(self, update: Any, **kwargs: Any) -> Any:
        applied = await self.inner.apply(update, **kwargs)
        data = applied.event if applied is not None else None
        if (
            data is not None
            and data["step"] == self.step
            and data["status"] == "processing"
            and not self._open.is_set()
        ):
            self.arrived.append(data["job_id"])
            await self._open.wait()
        return applied

    def release(self) -> None:
        self._open.set()
