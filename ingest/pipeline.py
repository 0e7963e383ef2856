"""The built-in ingestion pipeline: one uploaded file, every step reported as a worker would.

    initializing_streaming
    hashing                  SHA-256, UTF-8 check and similarity sketch, with byte progress
    duplicate_check          -> duplicate_found, and the job completes early
                             -> near_duplicate_found (similarity_score), when one is alike
    field_detection          kind, CSV dialect and header, columns and their types, e-mail headers
    platform_detection       a known export (Stripe, PayPal, a bank...), or none
    document_classification
    delta_analysis_complete  new_rows / existing_rows against the previous upload of that name
    entity_extraction        only when asked: e-mail addresses, links, dates, amounts
    entity_resolution          ... and how many distinct ones
    storing                  remembered for later duplicate, similarity and delta checks
    complete                 with the result summary

Parsing, similarity, delta and entities run through ``Parsing``: in worker processes within a
time budget per file (the server's), or in a thread (a tool or test without a pool).

Progress goes through ``ProgressEmitter``, exactly the path an outside worker takes. Its updates
raise ``JobCancelled`` once the user has cancelled, so a cancel stops the pipeline at its next
report. A file that cannot be read ends the job in ``error`` with a sentence saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from tidings.errors import JobTerminal, TidingsError
from tidings.ingest.entities import ENTITY_KINDS, EntityCollector
from tidings.ingest.errors import BadFile
from tidings.ingest.formats import DEFAULT_LIMITS, Analysis, Kind, Limits, analyse, texts_of
from tidings.ingest.hashing import CHUNK_SIZE, Fingerprint, Fingerprinter
from tidings.ingest.platforms import Platform, classify, detect_platform
from tidings.ingest.pool import Overrun, ParsePool
from tidings.ingest.registry import Previous, Registry, Remembered, Seen, SketchEntry, scope_of
from tidings.ingest.similarity import NEAR_DUPLICATE_THRESHOLD, jaccard
from tidings.messages import generate_friendly_status
from tidings.worker.emitter import ProgressEmitter

__all__ = ["Parsing", "Pipeline", "Upload", "count_delta", "fail_job", "most_similar"]

logger = logging.getLogger(__name__)

#: Byte-progress reports while hashing a file, at most (plus the first and the last).
HASHING_REPORTS: Final = 20
#: Fields listed in a result.
RESULT_FIELDS: Final = 100

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Parsing:
    """Where a file is parsed and within what: ``pool`` (None: a thread), limits, budget."""

    pool: ParsePool | None = None
    limits: Limits = DEFAULT_LIMITS
    #: Seconds all the parsing of one file may take.
    budget: float = 60.0


@dataclass(frozen=True, slots=True)
class Upload:
    """A received file: where it is stored (a random name) and the name a person gave it."""

    job_id: str
    path: Path
    filename: str
    owner: str | None
    size: int
    extract_entities: bool = False


def count_delta(records: array[int], previous: Previous | None) -> tuple[int, int]:
    """(new, existing): how many of this upload's records the previous upload did not / did hold."""
    if previous is None:
        return len(records), 0
    known = set(previous.record_hashes)
    existing = sum(1 for record in records if record in known)
    return len(records) - existing, existing


def most_similar(
    sketch: tuple[int, ...], candidates: list[SketchEntry]
) -> tuple[SketchEntry, float] | None:
    """The most alike earlier file at or above the near-duplicate threshold."""
    best: tuple[SketchEntry, float] | None = None
    for candidate in candidates:
        score = jaccard(sketch, candidate.sketch)
        if score >= NEAR_DUPLICATE_THRESHOLD and (best is None or score > best[1]):
            best = (candidate, score)
    return best


async def fail_job(
    emitter: ProgressEmitter, job_id: str, filename: str, code: str, reason: str
) -> None:
    """End the job in ``error`` in the step it reached; quiet when it has already ended."""
    with contextlib.suppress(TidingsError):
        await emitter.emit_request(
            job_id,
            {
                "status": "error",
                "error": {"code": code, "message": reason},
                "context": {"filename": filename, "reason": reason},
            },
        )


def collect_entities(path: Path, kind: Kind, limits: Limits) -> EntityCollector:
    return EntityCollector().feed_all(texts_of(path, kind, limits))


def _summary(analysis: Analysis, platform: Platform | None, document_type: str) -> dict[str, Any]:
    """What a later exact duplicate repeats about this file."""
    return {
        "kind": analysis.kind,
        "document_type": document_type,
        "platform": platform.name if platform else None,
        "rows": analysis.records,
        "columns": analysis.columns,
    }


class Pipeline:
    """Runs the steps for one upload; ``run`` never raises for a bad file or a cancel."""

    def __init__(
        self,
        emitter: ProgressEmitter,
        registry: Registry,
        upload: Upload,
        parsing: Parsing | None = None,
    ) -> None:
        self.emitter = emitter
        self.registry = registry
        self.upload = upload
        self.parsing = parsing or Parsing()
        self.scope = scope_of(upload.owner)
        self._claimed: str | None = None
        self._deadline: float | None = None

    async def _parse(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` where it cannot stall the server, within the file's budget."""
        pool = self.parsing.pool
        if pool is None:
            return await asyncio.to_thread(function, *args)
        if self._deadline is None:
            await pool.start()  # the budget is the file's, not the processes' start
            self._deadline = asyncio.get_running_loop().time() + self.parsing.budget
        try:
            return await pool.run(self._deadline, function, *args)
        except Overrun:
            raise BadFile(
                f"Reading {self.upload.filename} took longer than {self.parsing.budget:g} "
                "seconds, the most one file may take, so I stopped. Check that it is the file "
                "you meant, or upload it in smaller parts."
            ) from None

    async def run(self) -> None:
        upload = self.upload
        try:
            await self._steps()
        except JobTerminal:
            logger.info("pipeline of %s stopped: the job was cancelled", upload.job_id)
        except BadFile as exc:
            await fail_job(self.emitter, upload.job_id, upload.filename, exc.code, exc.message)
        except TidingsError as exc:
            logger.warning("pipeline of %s failed: %s", upload.job_id, exc.message)
            await fail_job(self.emitter, upload.job_id, upload.filename, exc.code, exc.message)
        except Exception:
            logger.exception("pipeline of %s failed", upload.job_id)
            reason = f"Something went wrong on the server while reading {upload.filename}."
            await fail_job(self.emitter, upload.job_id, upload.filename, "failed", reason)
        finally:
            if self._claimed is not None:  # not finished: a later copy is not a duplicate
                with contextlib.suppress(Exception):
                    await self.registry.release(self.scope, self._claimed, upload.job_id)

    async def _report(
        self, step: str, progress: float, *, extra: dict[str, object] | None = None, **context: Any
    ) -> None:
        context = {key: value for key, value in context.items() if value is not None}
        await self.emitter.send_progress(
            self.upload.job_id,
            step,
            round(progress, 1),
            context={"filename": self.upload.filename, **context},
            extra=extra,
        )

    async def _steps(self) -> None:
        upload = self.upload
        await self._report("initializing_streaming", 2)
        fingerprint = await self._fingerprint()
        if fingerprint.size == 0:
            raise BadFile(f"{upload.filename} is empty: there is nothing in it to read.")

        await self._report("duplicate_check", 32)
        seen = await self.registry.claim(
            self.scope, fingerprint.sha256, upload.job_id, upload.filename
        )
        if seen is not None:
            await self._duplicate(fingerprint, seen)
            return
        self._claimed = fingerprint.sha256
        near = await self._parse(
            most_similar, fingerprint.sketch, await self.registry.sketches(self.scope)
        )
        if near is not None:
            await self._report(
                "near_duplicate_found",
                36,
                similarity_score=round(near[1], 4),
                matched_filename=near[0].filename,
            )

        await self._report("field_detection", 40)
        analysis = await self._parse(
            analyse, upload.path, upload.filename, fingerprint, self.parsing.limits
        )
        await self._report(
            "field_detection",
            50,
            columns=analysis.columns,
            extra={"kind": analysis.kind, "rows": analysis.records, "columns": analysis.columns},
        )
        platform = detect_platform(analysis.field_names) if analysis.columns else None
        await self._report(
            "platform_detection",
            60,
            platform=platform.name if platform else None,
            platform_found=platform is not None,
            extra={"platform": platform.name if platform else None},
        )
        document_type = classify(analysis, platform)
        await self._report(
            "document_classification",
            70,
            document_type=document_type,
            extra={"document_type": document_type},
        )

        previous = await self.registry.previous(self.scope, upload.filename)
        new_rows, existing_rows = await self._parse(count_delta, analysis.record_hashes, previous)
        await self._report(
            "delta_analysis_complete", 80, new_rows=new_rows, existing_rows=existing_rows
        )

        entities = None
        if upload.extract_entities:
            # The sentence names the kinds only because the context says which are looked for.
            kinds = ", ".join(ENTITY_KINDS)
            await self._report("entity_extraction", 84, entity_types=kinds)
            collector = await self._parse(
                collect_entities, upload.path, analysis.kind, self.parsing.limits
            )
            await self._report(
                "entity_extraction", 87, entities=collector.total_found, entity_types=kinds
            )
            await self._report("entity_resolution", 90, entities=collector.total_distinct)
            entities = collector.summary()

        await self._report("storing", 95, rows=analysis.records)
        summary = _summary(analysis, platform, document_type)
        await self.registry.remember(
            self.scope,
            Remembered(
                job_id=upload.job_id,
                filename=upload.filename,
                sha256=fingerprint.sha256,
                summary=summary,
                sketch=fingerprint.sketch,
                record_hashes=analysis.record_hashes,
            ),
        )
        self._claimed = None
        result = {
            **self._file_facts(fingerprint),
            **summary,
            "fields": [item.to_dict() for item in analysis.fields[:RESULT_FIELDS]],
            "format": analysis.details,
            "duplicate_of": None,
            "near_duplicate": None
            if near is None
            else {
                "job_id": near[0].job_id,
                "filename": near[0].filename,
                "similarity_score": round(near[1], 4),
            },
            "delta": {
                "previous_job_id": previous.job_id if previous else None,
                "new_rows": new_rows,
                "existing_rows": existing_rows,
            },
            "entities": entities,
        }
        await self._complete(result, rows=analysis.records)

    async def _fingerprint(self) -> Fingerprint:
        """Read and hash in chunks, each in a worker thread, reporting bytes as they go."""
        total = self.upload.size
        every = max(CHUNK_SIZE, total // HASHING_REPORTS)
        printer = Fingerprinter()
        await self._report("hashing", 5, bytes_done=0, bytes_total=total)
        done = reported = 0
        with self.upload.path.open("rb") as stream:
            while read := await asyncio.to_thread(printer.feed_from, stream):
                done += read
                if done - reported >= every or done >= total:
                    reported = done
                    share = min(done / total, 1.0) if total else 1.0
                    await self._report(
                        "hashing", 5 + 25 * share, bytes_done=done, bytes_total=total
                    )
        return printer.finish()

    async def _duplicate(self, fingerprint: Fingerprint, seen: Seen) -> None:
        """An exact copy of an earlier upload: say so and finish with what that one found."""
        await self._report("duplicate_found", 35, original_filename=seen.filename)
        summary = seen.summary or {}
        result = {
            **self._file_facts(fingerprint),
            **{
                key: summary.get(key)
                for key in ("kind", "document_type", "platform", "rows", "columns")
            },
            "fields": None,
            "format": None,
            "duplicate_of": {"job_id": seen.job_id, "filename": seen.filename},
            "near_duplicate": None,
            "delta": None,
            "entities": None,
        }
        message = generate_friendly_status("duplicate_found", {"original_filename": seen.filename})
        await self._complete(result, message=message)

    def _file_facts(self, fingerprint: Fingerprint) -> dict[str, Any]:
        return {
            "filename": self.upload.filename,
            "size_bytes": fingerprint.size,
            "sha256": fingerprint.sha256,
        }

    async def _complete(
        self, result: dict[str, Any], *, message: str | None = None, **context: Any
    ) -> None:
        payload: dict[str, Any] = {
            "step": "complete",
            "status": "done",
            "result": result,
            "context": {"filename": self.upload.filename, **context},
        }
        if message is not None:
            payload["message"] = message
        await self.emitter.emit_request(self.upload.job_id, payload)
