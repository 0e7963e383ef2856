"""``POST /api/upload``: files streamed to disk, one job each, run by the built-in pipeline.

The documents tidings was specified from upload the same way under other names, and their code
works unchanged: the field may be ``file`` or ``files[]`` as well as ``files``; a one-file reply
also carries that job's ``job_id``, ``filename`` and ``status`` at its top level; and
``POST /api/files/upload`` (with an optional ``path``) answers ``{message, uploaded, upload_ids}``.
On an open server an upload without a user id gets a browser identity (an HttpOnly cookie), so
``GET /api/jobs`` lists those uploads to that browser alone.

The body is read part by part and each file is written in chunks under a random name in the
upload directory: a client's filename is never a path, only a display name (cleaned of control
characters and markup, shortened) kept in the job's ``extra.filename``. Past
``settings.max_upload_bytes`` the request ends in 413 and every file it wrote is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from tidings.errors import InvalidRequest, PayloadTooLarge
from tidings.ingest import (
    Limits,
    MemoryRegistry,
    ParsePool,
    Parsing,
    PipelineRunner,
    RedisRegistry,
    Registry,
    Upload,
)
from tidings.messages.humanize import clean_filename
from tidings.models import CreateJobRequest, parse
from tidings.store import connect
from tidings.web.api import BROWSER_COOKIE, may_create, principal_of
from tidings.web.keys import AUTHORITY, PIPELINES, SERVICE, SETTINGS, UPLOAD_DIR
from tidings.worker.emitter import ProgressEmitter

__all__ = ["FILE_FIELDS", "display_name", "setup_upload"]

#: Files one request may carry.
MAX_FILES: Final = 100
#: Longest display name kept for a file (longer ones are shortened in the middle).
MAX_FILENAME: Final = 255
#: The names a file part may have: the page's, and the seed documents' two.
FILE_FIELDS: Final = frozenset({"files", "files[]", "file"})
#: How long a browser identity lasts (seconds).
BROWSER_COOKIE_AGE: Final = 30 * 86_400
#: Largest value of a form field that is not a file.
MAX_FIELD_BYTES: Final = 1024
READ_CHUNK: Final = 256 * 1024
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})


def setup_upload(app: web.Application) -> None:
    """The route and the pipeline runner.

    Register it after the app's store and service: cleanup runs in reverse, so pipelines are
    stopped (and their jobs marked interrupted) while the store is still open.
    """
    app.router.add_post("/api/upload", upload)
    app.router.add_post("/api/files/upload", files_upload)
    app.cleanup_ctx.append(_pipelines)


async def _pipelines(app: web.Application) -> AsyncIterator[None]:
    """Upload directory, memory of earlier files, parsing processes and runner; pipelines
    cancelled before anything closes."""
    settings = app[SETTINGS]
    owned = settings.upload_dir is None
    directory = settings.upload_dir or Path(tempfile.mkdtemp(prefix="tidings-upload-"))
    directory.mkdir(parents=True, exist_ok=True)
    registry: Registry = (
        RedisRegistry(connect(settings.redis_url)) if settings.redis_url else MemoryRegistry()
    )
    pool = ParsePool(settings.pipeline_processes)
    parsing = Parsing(pool, Limits.for_upload(settings.max_upload_bytes), settings.pipeline_timeout)
    runner = PipelineRunner(
        ProgressEmitter.for_app(app), registry, settings.pipeline_concurrency, parsing
    )
    app[UPLOAD_DIR] = directory
    app[PIPELINES] = runner
    try:
        yield
    finally:
        await runner.aclose()
        await pool.aclose()
        await registry.aclose()
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def display_name(raw: str | None) -> str:
    """The name a person sees: last path part, no control characters or markup, bounded.

    Percent escapes are decoded first: browsers escape quotes and line breaks in multipart
    filenames that way and some clients escape everything, so the name is read as meant.
    """
    name = clean_filename(unquote(raw), MAX_FILENAME) if raw else None
    if name is None or not name.strip("."):
        return "unnamed"
    return name


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The upload is larger than the limit of {limit:,} bytes.")


@dataclass
class _File:
    path: Path
    filename: str
    size: int = 0


@dataclass
class _Received:
    """What one request carried: files on disk (in order) and the form's options."""

    files: list[_File] = field(default_factory=list)
    extract_entities: bool = False
    path: str | None = None
    total: int = 0

    def count(self, size: int, limit: int) -> None:
        """Add ``size`` bytes read; 413 once the request has carried more than ``limit``."""
        self.total += size
        if self.total > limit:
            raise _too_large(limit)

    def remove(self) -> None:
        for file in self.files:
            file.path.unlink(missing_ok=True)


async def _save(part: BodyPartReader, directory: Path, received: _Received, limit: int) -> None:
    """Stream one file part to a new file with a random name, chunk by chunk."""
    file = _File(directory / f"{secrets.token_hex(16)}.upload", display_name(part.filename))
    stream: BinaryIO = await asyncio.to_thread(file.path.open, "xb")
    received.files.append(file)
    try:
        while chunk := await part.read_chunk(READ_CHUNK):
            received.count(len(chunk), limit)
            file.size += len(chunk)
            await asyncio.to_thread(stream.write, chunk)
    finally:
        await asyncio.to_thread(stream.close)


async def _field(part: BodyPartReader, received: _Received, limit: int) -> str:
    value = b""
    while chunk := await part.read_chunk(MAX_FIELD_BYTES):
        received.count(len(chunk), limit)
        value += chunk
        if len(value) > MAX_FIELD_BYTES:
            raise InvalidRequest(f"The form field {part.name} is too long.")
    return value.decode("utf-8", "replace").strip()


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidRequest(f"{name} is true or false.")


async def _receive(request: web.Request, directory: Path, limit: int) -> _Received:
    if request.content_type != "multipart/form-data":
        raise InvalidRequest("Send the files as multipart/form-data, in the field named files.")
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)  # refused before a byte is written
    received = _Received()
    try:
        await _read_parts(request, directory, received, limit)
    except BaseException:  # whatever ends the request early, the files it wrote go
        received.remove()
        raise
    if not received.files:
        raise InvalidRequest("No files were uploaded: send one or more in the field files.")
    return received


async def _read_parts(
    request: web.Request, directory: Path, received: _Received, limit: int
) -> None:
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequest("Nested multipart bodies are not accepted.")
            if part.name in FILE_FIELDS:
                if len(received.files) >= MAX_FILES:
                    raise InvalidRequest(f"One upload may carry at most {MAX_FILES} files.")
                await _save(part, directory, received, limit)
            elif part.name == "extract_entities":
                received.extract_entities = _flag(part.name, await _field(part, received, limit))
            elif part.name == "path":
                received.path = _destination(await _field(part, received, limit))
            else:
                await _field(part, received, limit)
    except ValueError as exc:
        raise InvalidRequest("The multipart body is malformed.") from exc
    except ConnectionError as exc:  # the client went away: not the server's fault
        raise InvalidRequest("The upload was cut off before its end.") from exc


def _destination(value: str) -> str | None:
    """``path`` of ``/api/files/upload``: where the documents' client files an upload. Kept in
    the job's ``extra.path`` as a label; never used as a path on this server."""
    if len(value) > MAX_FILENAME or not value.isprintable():
        raise InvalidRequest(f"path is a label of at most {MAX_FILENAME} printable characters.")
    return value or None


async def upload(request: web.Request) -> web.Response:
    """Receive every file, then create a job per file and hand it to the pipeline runner."""
    jobs, browser = await _accept(request)
    reply: dict[str, Any] = {"jobs": jobs}
    if len(jobs) == 1:
        reply = {**jobs[0], **reply}
    return _with_browser(web.json_response(reply, status=202), browser)


async def files_upload(request: web.Request) -> web.Response:
    """``POST /api/files/upload``: the same upload, answered as the seed documents' client reads
    it; an upload id is the job id (``/api/files/progress/{id}`` follows it)."""
    jobs, browser = await _accept(request)
    reply = {
        "message": "Files uploaded",
        "uploaded": len(jobs),
        "upload_ids": [job["job_id"] for job in jobs],
        "jobs": jobs,
    }
    return _with_browser(web.json_response(reply), browser)


def _with_browser(response: web.Response, browser: str | None) -> web.Response:
    if browser is not None:
        response.set_cookie(
            BROWSER_COOKIE, browser, max_age=BROWSER_COOKIE_AGE, httponly=True, samesite="Lax"
        )
    return response


async def _accept(request: web.Request) -> tuple[list[dict[str, Any]], str | None]:
    """One job per file received (handed to the pipelines), and the browser
    identity made for an anonymous uploader on an open server (None when there is none)."""
    caller = principal_of(request)
    may_create(caller)
    app = request.app
    authority = app[AUTHORITY]
    browser = None
    if caller.open and caller.user is None:
        browser = f"browser-{secrets.token_urlsafe(18)}"
        caller = authority.principal(None, browser)
    received = await _receive(request, app[UPLOAD_DIR], app[SETTINGS].max_upload_bytes)
    extra: dict[str, Any] = {"path": received.path} if received.path else {}
    jobs: list[dict[str, Any]] = []
    try:
        for file in received.files:
            job = await app[SERVICE].create(
                parse(
                    CreateJobRequest,
                    {
                        "filename": file.filename,
                        "extra": {"type": "upload", "size_bytes": file.size, **extra},
                    },
                ),
                caller.user,
            )
            app[PIPELINES].submit(
                Upload(
                    job_id=job["job_id"],
                    path=file.path,
                    filename=file.filename,
                    owner=caller.user,
                    size=file.size,
                    extract_entities=received.extract_entities,
                )
            )
            entry: dict[str, Any] = {
                "job_id": job["job_id"],
                "filename": file.filename,
                "status": job["status"],
            }
            if not authority.open:
                entry["token"] = authority.mint_job_token(caller.user, [job["job_id"]], caller)
            jobs.append(entry)
    finally:
        for file in received.files[len(jobs) :]:  # not handed to a pipeline: removed here
            with contextlib.suppress(OSError):
                file.path.unlink(missing_ok=True)
    return jobs, browser
