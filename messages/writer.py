"""MessageWriter: the sentence for every event, now, and a better one for the next event.

``write`` never waits. It answers from the catalog, else from a template learned earlier (in
memory), else with the humane reading of the step name; in that last case it starts one
background lookup, Redis first (another node may have learned the template) and then the LLM,
whose template is kept for every later event of that step with the same context keys.

    write(step, context)
      ├── catalog (registered, built-in)             -> sentence
      ├── learned template for (step, context keys)  -> sentence
      └── humane fallback                            -> sentence
            └── background: Redis GET -> LLM -> Redis SET NX -> memory
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .catalog import catalog_sentence
from .constants import (
    DEFAULT_RETRY_COOLDOWN,
    MAX_CONCURRENT_LLM_CALLS,
    MAX_MESSAGE_LENGTH,
    MAX_PENDING_LOOKUPS,
    MEMORY_CACHE_SIZE,
    TEMPLATE_KEY_PREFIX,
    TEMPLATE_TTL_SECONDS,
)
from .context import Context, template_keys
from .errors import LLMError, TemplateError
from .fallback import humanize_step
from .humanize import clean_text
from .llm import LLMConfig, TemplateAuthor, check_template, is_llm_step
from .template import Template

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

__all__ = ["MessageWriter", "template_cache_key"]

logger = logging.getLogger(__name__)

#: A learned template is kept per step and per sorted tuple of the context keys it may use.
Slot = tuple[str, tuple[str, ...]]


def _redis_errors() -> tuple[type[Exception], ...]:
    """What a failed cache call raises. Only a writer given a Redis client asks (redis is loaded
    by then), so a process that never connects does not import the whole redis package."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


def template_cache_key(step: str, keys: tuple[str, ...]) -> str:
    """The Redis key of the template for ``step`` with context ``keys`` (sorted)."""
    return f"{TEMPLATE_KEY_PREFIX}{step}:{','.join(keys)}"


@functools.cache
def _warn_llm_unavailable(reason: str) -> None:
    """Once per process: every writer would say the same, and the catalog still answers."""
    logger.warning("the LLM fallback is off: %s is not importable; using the catalog alone", reason)


def _author_or_none(llm: LLMConfig | None) -> TemplateAuthor | None:
    """The LLM's client, or None when there is no key or groq / instructor cannot be imported."""
    if llm is None:
        return None
    try:
        return TemplateAuthor(llm)
    except ImportError as exc:
        _warn_llm_unavailable(exc.name or "groq or instructor")
        return None


class MessageWriter:
    """Writes the sentence of each event; learns sentences for unknown steps in the background.

    ``llm=None`` turns the LLM off; ``redis`` (a ``redis.asyncio`` client, not closed here)
    shares learned templates between nodes. Call ``write`` from the event loop; outside a running
    loop it answers just the same but starts nothing. ``aclose`` cancels what is in flight.
    """

    def __init__(
        self,
        llm: LLMConfig | None = None,
        redis: Redis | RedisCluster | None = None,
        *,
        retry_cooldown: float = DEFAULT_RETRY_COOLDOWN,
    ) -> None:
        self._author = _author_or_none(llm)
        self._redis = redis
        self._retry_cooldown = retry_cooldown
        self._templates: OrderedDict[Slot, Template] = OrderedDict()
        self._pending: dict[Slot, asyncio.Task[None]] = {}
        self._not_before: dict[Slot, float] = {}
        self._llm_calls = asyncio.Semaphore(MAX_CONCURRENT_LLM_CALLS)
        self._closed = False

    @property
    def llm_enabled(self) -> bool:
        return self._author is not None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the fast path --------------------------------------------------------------------------

    def write(
        self,
        step: str,
        context: Mapping[str, object] | None = None,
        *,
        message: str | None = None,
    ) -> str:
        """The sentence for this event, at once. ``message`` (the emitter's own) wins if usable."""
        if message is not None:
            own = clean_text(message, MAX_MESSAGE_LENGTH)
            if own is not None:
                return own
        if not isinstance(step, str):
            return humanize_step(step)
        sentence: str | None
        try:
            c = Context(context)
            sentence = catalog_sentence(step, c)
            if sentence is None:
                sentence = self._learned(step, c)
        except Exception:  # a bug here must not stop a progress update
            logger.exception("the sentence for step %r failed; using the plain one", step[:64])
            sentence = None
        return sentence if sentence is not None else humanize_step(step)

    def _learned(self, step: str, c: Context) -> str | None:
        if self._author is None and self._redis is None:
            return None
        slot: Slot = (step, template_keys(c))
        template = self._templates.get(slot)
        if template is None:
            self._start_lookup(slot, {key: c.get(key) for key in slot[1]})
            return None
        self._templates.move_to_end(slot)
        return template.render(c)

    def _start_lookup(self, slot: Slot, sample: dict[str, object]) -> None:
        if self._closed or slot in self._pending or len(self._pending) >= MAX_PENDING_LOOKUPS:
            return
        if not is_llm_step(slot[0]):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a script, the CLI): nothing runs in the background
        if self._not_before.get(slot, 0.0) > loop.time():
            return
        task = loop.create_task(
            self._lookup(slot, Context(sample)), name=f"messages: template for {slot[0]}"
        )
        self._pending[slot] = task
        task.add_done_callback(lambda done: self._forget(slot, done))

    def _forget(self, slot: Slot, task: asyncio.Task[None]) -> None:
        if self._pending.get(slot) is task:
            del self._pending[slot]

    # --- the background lookup ------------------------------------------------------------------

    async def _lookup(self, slot: Slot, sample: Context) -> None:
        """Redis, then the LLM; ``sample`` is the context that asked, kept only in memory.

        A template must render for that context: one whose placeholders never fill (a count
        noun on a filename) would otherwise stand for good and never be shown.
        """
        step, keys = slot
        template: Template | None = None
        try:
            if self._redis is not None:
                template = await self._from_redis(slot, sample)
            if template is None and self._author is not None:
                async with self._llm_calls:
                    template = await self._author.write(step, keys)
                if template.render(sample) is None:
                    raise LLMError("the template does not render for this context")
                if self._redis is not None:
                    template = await self._share(slot, template, sample)
        except LLMError as exc:
            logger.warning("no LLM sentence for step %r (%s); keeping the plain one", step, exc)
            template = None  # a refused template is never kept
        except Exception:  # a lookup is an optional improvement; it must never take others down
            logger.exception("looking up a sentence for step %r failed", step)
            template = None
        if template is None:
            self._cool_down(slot)
            return
        self._templates[slot] = template
        self._templates.move_to_end(slot)
        while len(self._templates) > MEMORY_CACHE_SIZE:
            self._templates.popitem(last=False)
        self._not_before.pop(slot, None)

    def _cool_down(self, slot: Slot) -> None:
        now = asyncio.get_running_loop().time()
        if len(self._not_before) >= MEMORY_CACHE_SIZE:
            self._not_before = {key: when for key, when in self._not_before.items() if when > now}
        self._not_before[slot] = now + self._retry_cooldown

    def _parse_shared(self, slot: Slot, raw: object, sample: Context) -> Template | None:
        """A template read from Redis passes the same check as a fresh one: Redis is shared,
        and whatever wrote there (an older node, a person with redis-cli) is not trusted."""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not isinstance(text, str):
            return None
        try:
            template = check_template(slot[0], text, slot[1])
        except TemplateError as exc:
            logger.warning("ignoring an invalid shared template for step %r (%s)", slot[0], exc)
            return None
        if template.render(sample) is None:
            logger.warning("ignoring an invalid shared template for step %r (not filled)", slot[0])
            return None
        return template

    async def _from_redis(self, slot: Slot, sample: Context) -> Template | None:
        assert self._redis is not None
        try:
            raw = await self._redis.get(template_cache_key(*slot))
        except _redis_errors() as exc:
            logger.warning("shared sentence cache unavailable (%s)", type(exc).__name__)
            return None
        return None if raw is None else self._parse_shared(slot, raw, sample)

    async def _share(self, slot: Slot, template: Template, sample: Context) -> Template:
        """Store ``template`` for every node; if another node was first, use its template.

        A refused entry in its place is replaced, so that it is not met again by every node.
        """
        assert self._redis is not None
        key = template_cache_key(*slot)
        try:
            stored = await self._redis.set(key, template.source, nx=True, ex=TEMPLATE_TTL_SECONDS)
            if stored:
                return template
            theirs = self._parse_shared(slot, await self._redis.get(key), sample)
            if theirs is None:
                await self._redis.set(key, template.source, ex=TEMPLATE_TTL_SECONDS)
        except _redis_errors() as exc:
            logger.warning("shared sentence cache unavailable (%s)", type(exc).__name__)
            return template
        return theirs or template

    # --- lifecycle --------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for the background lookups started so far (tests, the CLI, a graceful stop)."""
        while pending := [task for task in self._pending.values() if not task.done()]:
            await asyncio.wait(pending)

    async def aclose(self) -> None:
        """Cancel and await the background lookups, then close the Groq client. Idempotent."""
        self._closed = True
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        if self._author is not None:
            author, self._author = self._author, None
            await author.aclose()
