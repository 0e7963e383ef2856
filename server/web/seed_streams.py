"""One job's progress over SSE in the two shapes of the documents tidings was specified from.

Their clients are written against these, so they work unchanged; both follow the job exactly as
``GET /api/jobs/{id}/stream`` does (same authorization, resume by ``Last-Event-ID``, the client
rule kept on the client's behalf), and only the wire differs:

- ``GET /api/upload/progress/{id}``: unnamed messages for an ``onmessage`` handler,
  ``{"event": "current", "job": ...}`` first (and after a resync), then ``{"event": "updated",
  "job": ...}`` for every change; ``job`` is the Event or Snapshot with the documents' ``id``,
  ``type`` and ``filename`` on top (as the job lists have them).
- ``GET /api/files/progress/{upload_id}``: messages named ``progress`` whose data is the upload's
  progress as the documents' hooks read it (``progress_percentage``, ``status`` one of
  ``uploading``, ``completed``, ``failed``, byte counts from the file's size).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from tidings.constants import TERMINAL_STATUSES
from tidings.models import Event, Snapshot
from tidings.web.sse import follow_job
from tidings.wire import seed_fields

#: What is sent first, and again when the state is replaced: the job as it is now.
_CURRENT = frozenset({"snapshot", "resync"})


def upload_progress_frame(name: str, item: Event | Snapshot, event_id: str) -> bytes:
    job: dict[str, Any] = {**item, **seed_fields(item)}
    data = {"event": "current" if name in _CURRENT else "updated", "job": job}
    return f"id: {event_id}\ndata: {json.dumps(data)}\n\n".encode()


def files_progress(item: Event | Snapshot) -> dict[str, Any]:
    """An upload's progress as the documents' ``UploadProgress``: done is 100 %, a job that
    ended otherwise has failed, and the bytes follow the percentage of the file's size."""
    status = item["status"]
    percentage = 100.0 if status == "done" else min(100.0, max(0.0, item["progress"] or 0.0))
    size = item["extra"].get("size_bytes")
    total = size if isinstance(size, int) else 0
    state = (
        "completed"
        if status == "done"
        else "failed"
        if status in TERMINAL_STATUSES
        else "uploading"
    )
    progress: dict[str, Any] = {
        "upload_id": item["job_id"],
        "filename": item["extra"].get("filename") or item["job_id"],
        "total_bytes": total,
        "uploaded_bytes": int(total * percentage / 100),
        "status": state,
        "progress_percentage": percentage,
        "message": item["message"],
    }
    if item["error"] is not None:
        progress["error"] = item["error"]["message"]
    times: dict[str, Any] = dict(item)  # a Snapshot has created_at/updated_at, an Event timestamp
    if "created_at" in times:
        progress["started_at"] = times["created_at"]
    if state != "uploading":
        progress["completed_at"] = times.get("updated_at") or times.get("timestamp")
    return progress


def files_progress_frame(name: str, item: Event | Snapshot, event_id: str) -> bytes:
    return f"event: progress\nid: {event_id}\ndata: {json.dumps(files_progress(item))}\n\n".encode()


async def upload_progress(request: web.Request) -> web.StreamResponse:
    return await follow_job(request, upload_progress_frame)


async def files_progress_stream(request: web.Request) -> web.StreamResponse:
    return await follow_job(request, files_progress_frame)


def setup_seed_streams(app: web.Application) -> None:
    app.router.add_get("/api/upload/progress/{job_id}", upload_progress, allow_head=False)
    app.router.add_get("/api/files/progress/{job_id}", files_progress_stream, allow_head=False)
