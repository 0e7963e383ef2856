"""``tidings``: the parser and the dispatch of serve, emit, watch, token, say and init.

``python -m tidings`` is the same program. Each command lives in its own module and is imported
only when it runs, so ``tidings say`` never loads the web server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
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

#: What job ids and step names may hold, and how long they may be (docs/protocol.md).
NAME = re.compile(r"[A-Za-z0-9_.:-]+")
LONGEST = {"JOB": 128, "STEP": 100}


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


def _ttl(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--ttl must be a number of seconds, got {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"--ttl must be more than 0 seconds (got {text}): a token that has expired is no use"
        )
    return value


def _context_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--context",
        action="append",
        type=_context_item,
        default=[],
        metavar="KEY=VALUE",
        help="a value for the step's sentence, e.g. filename=expenses.csv; repeat for more",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tidings",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Settings come from TIDINGS_* variables and from a .env file in the current "
        "directory (tidings init writes one); see docs/protocol.md.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )

    serve = commands.add_parser("serve", help="run the server", description="Run one node.")
    serve.add_argument("--host", help="address to listen on (TIDINGS_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (TIDINGS_PORT, 8000)")
    serve.add_argument(
        "--reload",
        action="store_true",
        help="development: refresh open pages when the page's files change (TIDINGS_RELOAD)",
    )

    emit = commands.add_parser(
        "emit",
        help="report a job's progress",
        description="Report a job's progress: through Redis when TIDINGS_REDIS_URL is set, "
        "otherwise through the server's HTTP API (with TIDINGS_API_KEY).",
    )
    emit.add_argument("job", nargs="?", help="the job's id, e.g. upload-1")
    emit.add_argument("step", nargs="?", help="the step, e.g. duplicate_check (tidings say STEP)")
    emit.add_argument(
        "progress", nargs="?", type=_progress, help="percent done, 0 to 100 (optional)"
    )
    emit.add_argument("--follow", metavar="FILE", help="emit each change of a JSON status file")
    emit.add_argument("--job", dest="job_option", metavar="JOB", help="the job, with --follow")
    emit.add_argument(
        "--debounce",
        type=int,
        default=200,
        metavar="MS",
        help="with --follow: wait this long for writes to settle (200)",
    )
    _context_option(emit)
    end = emit.add_mutually_exclusive_group()
    end.add_argument("--complete", action="store_true", help="finish the job")
    end.add_argument("--fail", metavar="MESSAGE", help="fail the job with this sentence")
    emit.add_argument(
        "--url",
        help="server to emit through when TIDINGS_REDIS_URL is unset "
        "(http://TIDINGS_HOST:TIDINGS_PORT)",
    )

    watch = commands.add_parser(
        "watch", help="follow a job in the terminal", description="Follow a job as a live bar."
    )
    watch.add_argument("job", help="the job's id")
    watch.add_argument("--url", help="server address (http://TIDINGS_HOST:TIDINGS_PORT)")
    watch.add_argument(
        "--token",
        help="a token for the job, when the server has a secret (tidings token --user U --job J)",
    )

    token = commands.add_parser(
        "token",
        help="mint a token (needs TIDINGS_SECRET)",
        description="Mint a token for a browser or tidings watch, signed with TIDINGS_SECRET "
        "(the server's). A web application mints its own: docs/auth.md.",
    )
    token.add_argument("--user", required=True, help="the user the token speaks for")
    token.add_argument(
        "--job",
        action="append",
        default=[],
        help="a job the token may watch besides the user's own; repeat for more",
    )
    token.add_argument(
        "--ttl", type=_ttl, default=3600.0, help="seconds until the token expires (3600)"
    )

    say = commands.add_parser(
        "say",
        help="print the friendly sentence for a step",
        description="Print the sentence a step becomes, with no server and no network.",
    )
    say.add_argument("step", help="the step, e.g. duplicate_check")
    _context_option(say)

    init = commands.add_parser(
        "init",
        help="write a .env with a strong secret and an API key",
        description="Write TIDINGS_SECRET and TIDINGS_API_KEY to a new .env file, which "
        "tidings serve, token, emit and watch read from the current directory.",
    )
    init.add_argument("--path", default=".env", help="the file to write (.env); never overwritten")
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
        if args.command == "init":
            from tidings.cli.init import init

            return init(Path(args.path))
        try:
            settings = Settings()
        except ValidationError as exc:
            return _fail(settings_error(exc), 2)
        if args.command == "serve":
            from tidings.cli.serve import serve

            return serve(settings, args.host, args.port, args.reload)
        if args.command == "say":
            print(generate_friendly_status(args.step, dict(args.context)))
            return 0
        if args.command == "token":
            if settings.secret is None:
                return _fail(
                    "tidings token needs TIDINGS_SECRET, the same one the server has: "
                    "export it, or run tidings init and use the .env it writes"
                )
            authority = Authority(settings.secret.get_secret_value())
            print(authority.mint(args.user, args.job, ttl=args.ttl))
            return 0
        if args.command == "emit":
            from tidings.cli.emit import emit

            return asyncio.run(emit(settings, args))
        from tidings.cli.watch import watch

        return asyncio.run(watch(settings, args.job, args.url, args.token))
    except TidingsError as exc:
        return _fail(exc.message)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int = 1) -> int:
    print(f"tidings: error: {message}", file=sys.stderr)
    return code


def settings_error(exc: ValidationError) -> str:
    """A settings error as one sentence naming the variable, never pydantic's wording."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    name = f"TIDINGS_{field.upper()}" if not field.startswith("groq") else field.upper()
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] != "value_error":  # a type or range from pydantic: say it our way
        message = f"{name} is not valid: {message[:1].lower()}{message[1:]}"
        if field != "secret" and "input" in error:
            message += f" (it is {str(error['input'])[:80]!r})"
    return message


def _check_emit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``emit JOB STEP [PROGRESS]``, or ``emit --follow FILE --job JOB``."""
    args.job = args.job_option or args.job
    if args.follow:
        args.follow = str(Path(args.follow).resolve())
        if not args.job or args.step or args.complete or args.fail or args.context:
            parser.error("--follow takes only --job JOB (the file says the rest)")
    elif not (args.job and args.step):
        parser.error("emit needs JOB and STEP (or --follow FILE --job JOB)")
    for name, value in (("JOB", args.job), ("STEP", args.step)):
        if value is not None and not (NAME.fullmatch(value) and len(value) <= LONGEST[name]):
            parser.error(
                f"{name} {value!r} may have only letters, digits and _ . : - "
                f"(at most {LONGEST[name]} of them), e.g. upload-7f3a"
            )
