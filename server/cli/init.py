"""``tidings init``: a working ``.env`` with a strong secret and an API key, never overwritten."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tidings.errors import TidingsError

TEMPLATE = """\
# Written by tidings init. tidings serve, token, emit and watch read this file from the
# directory they run in; a TIDINGS_* variable set in the environment wins over it.
# Keep it out of version control: anyone with the secret can mint tokens.

# Signs the tokens browsers and tidings watch present (HS256; docs/auth.md).
TIDINGS_SECRET={secret}
# What workers present to POST /api/jobs/{{id}}/progress and tidings emit uses.
TIDINGS_API_KEY={api_key}
# Unset: the embedded store (one node). Set it, the same for the server and every worker,
# to share jobs through Redis:
# TIDINGS_REDIS_URL=redis://127.0.0.1:6379/0
"""


def init(path: Path) -> int:
    text = TEMPLATE.format(secret=secrets.token_urlsafe(48), api_key=secrets.token_urlsafe(32))
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise TidingsError(
            f"{path} already exists and was left alone: remove it or pass --path FILE"
        ) from None
    except OSError as exc:
        raise TidingsError(f"Could not write {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    print(f"Wrote {path} with a new TIDINGS_SECRET and TIDINGS_API_KEY (readable by you only).")
    return 0
