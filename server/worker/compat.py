"""Names from the documents tidings was specified from, so their code runs unchanged.

``send_websocket_progress(manager, job_id, step, progress, context=..., extra=...)`` is how those
documents report a step; here the "manager" is an emitter, and the call is ``send_progress``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tidings.wire import Event
from tidings.worker.emitter import ProgressEmitter


async def send_websocket_progress(
    manager: ProgressEmitter,
    job_id: str,
    step: str,
    progress: float | None = None,
    context: Mapping[str, object] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Event | None:
    """Report a step with its friendly sentence: ``manager.send_progress`` under the documents'
    name and argument order."""
    return await manager.send_progress(job_id, step, progress, context=context, extra=extra)
