"""Where uploads are parsed: worker processes, each file within a time budget.

Parsing, sniffing and similarity are CPU work in C calls that hold the GIL for as long as they
run: in a thread of the server (``asyncio.to_thread``) one 60 KB CSV once froze every socket,
stream and ``/healthz`` of its node for 31 s. In another process they cannot. ``ParsePool`` owns
a ``ProcessPoolExecutor`` (the application's cleanup context starts and stops it); ``run`` sends
one call to it and waits at most until the file's deadline. A call that overruns cannot be
stopped inside its process, so the pool's processes are killed and a new pool takes over; calls
of other files that were running in it are sent again, once, to the new pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final, TypeVar

__all__ = ["Overrun", "ParsePool"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a new worker process may take to start before the first call's budget begins.
START_ALLOWANCE: Final = 30.0


class Overrun(Exception):
    """A file's parsing went past its time budget and was stopped."""


def _ready() -> bool:
    return True


class ParsePool:
    """A process pool for parsing, replaced whole when a call overruns its budget."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._executor = self._new_executor()
        self._started: asyncio.Future[bool] | None = None
        #: Read by the server's ``/metrics``: pools replaced, and files that overran.
        self.restarts = 0
        self.overruns = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.processes, mp_context=self._context)

    async def start(self) -> float:
        """Wait (bounded) for a first process; the seconds waited, which no file is charged."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        if self._started is None:
            self._started = loop.run_in_executor(self._executor, _ready)
        await asyncio.wait_for(asyncio.shield(self._started), START_ALLOWANCE)
        return loop.time() - began

    async def run(self, deadline: float, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker process; ``Overrun`` once the loop time passes
        ``deadline``, not counting the time processes take to start."""
        for attempt in (1, 2):
            deadline += await self.start()
            executor = self._executor
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(executor, function, *args)
            try:
                return await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
            except TimeoutError:
                self.overruns += 1
                self._replace(executor)
                raise Overrun from None
            except BrokenProcessPool:
                # Another file's overrun killed the processes under this call, or a process
                # died: once more, in a pool that works.
                if attempt == 2:
                    raise
                if executor is self._executor:
                    self._replace(executor)
        raise AssertionError("unreachable")

    def _replace(self, executor: ProcessPoolExecutor) -> None:
        """Kill ``executor``'s processes and start afresh, unless that was done already."""
        if executor is not self._executor:
            return
        self.restarts += 1
        self._executor = self._new_executor()
        self._started = None
        _kill(executor)
        logger.warning("parsing processes replaced (a parse overran its budget, or one died)")

    async def aclose(self) -> None:
        executor = self._executor
        _kill(executor)
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


def _kill(executor: ProcessPoolExecutor) -> None:
    """End the processes now: ``shutdown`` would wait for the call that overran to finish."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
