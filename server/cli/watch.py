"""``tidings watch``: one job's progress as a live bar in the terminal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import socketio
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from tidings.constants import TERMINAL_STATUSES
from tidings.errors import TidingsError
from tidings.settings import Settings


async def watch(settings: Settings, job_id: str, url: str | None, token: str | None) -> int:
    from tidings.cli.remote import base_url, unreachable

    console = Console()
    client = socketio.AsyncClient(reconnection=True)
    finished = asyncio.Event()
    state: dict[str, Any] = {"seq": 0, "epoch": None, "status": None}
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
    )
    task = bar.add_task("Waiting for the job to start...", total=100)

    def show(job: dict[str, Any]) -> None:
        state.update(seq=job["seq"], epoch=job["epoch"], status=job["status"])
        bar.update(
            task, description=job["message"] or job["status"], completed=job["progress"] or 0
        )
        if job["status"] in TERMINAL_STATUSES:
            if job.get("error"):
                console.print(f"[red]{job['error']['message']}[/red]")
            finished.set()

    async def subscribe() -> None:
        payload: dict[str, Any] = {"job_id": job_id}
        if state["epoch"] is not None:
            payload.update(epoch=state["epoch"], since=state["seq"])
        ack = await client.call("subscribe", payload, timeout=10)
        if not ack.get("ok"):
            console.print(f"[red]{ack['error']['message']}[/red]")
            finished.set()
            return
        if ack["job"] is not None and not ack["recovered"]:
            show(ack["job"])
        for event in ack["events"]:
            show(event)

    async def on_event(event: dict[str, Any]) -> None:
        if event["epoch"] == state["epoch"] and event["seq"] == state["seq"] + 1:
            show(event)
        elif event["epoch"] != state["epoch"] or event["seq"] > state["seq"] + 1:
            await subscribe()

    async def on_batch(batch: dict[str, Any]) -> None:
        for event in batch["events"]:
            await on_event(event)

    for name in ("job_update", "job_complete", "job_error"):
        client.on(name, on_event)
    client.on("job_batch", on_batch)
    connected = asyncio.Event()
    client.on("connect", connected.set)
    refusals: list[object] = []
    client.on("connect_error", refusals.append)
    address = base_url(settings, url)
    try:
        await client.connect(address, auth={"token": token} if token else None, wait_timeout=10)
    except socketio.exceptions.ConnectionError as exc:
        await client.shutdown()
        if any(isinstance(refusal, dict) for refusal in refusals):  # the server said no
            raise TidingsError(refused(settings, token)) from exc
        raise TidingsError(unreachable(address, exc)) from exc
    with bar:
        while not finished.is_set():
            # (Re)subscribe after every (re)connect, outside the client's read loop.
            waiter = asyncio.ensure_future(connected.wait())
            done = asyncio.ensure_future(finished.wait())
            await asyncio.wait({waiter, done}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            done.cancel()
            if connected.is_set():
                connected.clear()
                await subscribe()
    await client.disconnect()
    return 0 if state["status"] == "done" else 1


def refused(settings: Settings, token: str | None) -> str:
    """Why the server refused the connection, as far as this side can tell, and what to do."""
    mint = "mint one with tidings token --user YOU --job JOB and pass it with --token"
    if not token:
        return f"The server requires a token (it has TIDINGS_SECRET): {mint}"
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return f"The --token given is not a token (not a JWT): {mint}"
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires < time.time():
        return f"The --token expired {time.time() - expires:.0f} s ago: {mint}"
    if settings.secret is not None:
        try:
            jwt.decode(token, settings.secret.get_secret_value(), algorithms=["HS256"])
        except jwt.InvalidSignatureError:
            return (
                "The --token was signed with another secret than this shell's TIDINGS_SECRET; "
                f"the server's and the minter's must be the same: {mint}"
            )
        except jwt.PyJWTError:
            pass
    return (
        "The server refused the --token (signed with another secret than the server's, or "
        f"malformed): {mint} with the server's TIDINGS_SECRET"
    )
