"""``tidings``: the parser and the dispatch of serve, emit, watch, token and say.

``python -m tidings`` is the same program. Each command lives in its own module and is imported
only when it runs, so ``tidings say`` never loads the web server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tidings.auth import Authority
from tidings.errors import TidingsError
from tidings.messages import generate_friendly_status
from tidings.settings import Settings

logger = logging.getLogger("tidings")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(2, f"tidings: error: {message}\n")


def _context_item(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def _progress(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"progress must be a number, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("progress must be between 0 and 100")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tidings", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (TIDINGS_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (TIDINGS_PORT, 8000)")
    serve.add_argument(
        "--reload",
        action="store_true",
        help="development: refresh open pages when the page's files change (TIDINGS_RELOAD)",
    )

    emit = commands.add_parser("emit", help="report a job's progress")
    emit.add_argument("job", nargs="?")
    emit.add_argument("step", nargs="?")
    emit.add_argument("progress", nargs="?", type=_progress)
    emit.add_argument("--follow", metavar="FILE", help="emit each change of a JSON status file")
    emit.add_argument("--job", dest="job_option", metavar="JOB", help="the job, with --follow")
    emit.add_argument(
        "--debounce",
        type=int,
        default=200,
        metavar="MS",
        help="with --follow: wait this long for writes to settle (200)",
    )
    emit.add_argument(
        "--context", action="append", type=_context_item, default=[], metavar="KEY=VALUE"
    )
    end = emit.add_mutually_exclusive_group()
    end.add_argument("--complete", action="store_true", help="finish the job")
    end.add_argument("--fail", metavar="MESSAGE", help="fail the job with this sentence")
    emit.add_argument("--url", help="server to emit through when TIDINGS_REDIS_URL is unset")

    watch = commands.add_parser("watch", help="follow a job in the terminal")
    watch.add_argument("job")
    watch.add_argument("--url", help="server address (http://TIDINGS_HOST:TIDINGS_PORT)")
    watch.add_argument("--token")

    token = commands.add_parser("token", help="mint a token (needs TIDINGS_SECRET)")
    token.add_argument("--user", required=True)
    token.add_argument("--job", action="append", default=[])
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds (3600)")

    say = commands.add_parser("say", help="print the friendly sentence for a step")
    say.add_argument("step")
    say.add_argument(
        "--context", action="append", type=_context_item, default=[], metavar="KEY=VALUE"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "emit":
        _check_emit(parser, args)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as exc:
        print(
            f"tidings: error: bad setting: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}",
            file=sys.stderr,
        )
        return 2
    try:
        if args.command == "serve":
            from tidings.cli.serve import serve

            return serve(settings, args.host, args.port, args.reload)
        if args.command == "say":
            print(generate_friendly_status(args.step, dict(args.context)))
            return 0
        if args.command == "token":
            secret = settings.secret.get_secret_value() if settings.secret else None
            print(Authority(secret).mint(args.user, args.job, ttl=args.ttl))
            return 0
        if args.command == "emit":
            from tidings.cli.emit import emit

            return asyncio.run(emit(settings, args))
        from tidings.cli.watch import watch

        return asyncio.run(watch(settings, args.job, args.url, args.token))
    except TidingsError as exc:
        print(f"tidings: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _check_emit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``emit JOB STEP [PROGRESS]``, or ``emit --follow FILE --job JOB``."""
    args.job = args.job_option or args.job
    if args.follow:
        args.follow = str(Path(args.follow).resolve())
        if not args.job or args.step or args.complete or args.fail or args.context:
            parser.error("--follow takes only --job JOB (the file says the rest)")
    elif not (args.job and args.step):
        parser.error("emit needs JOB and STEP (or --follow FILE --job JOB)")
