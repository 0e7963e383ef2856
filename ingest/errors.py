"""The one error of the ingestion pipeline, under tidings' tree (``server/errors.py``).

TidingsError
 └── BadFile   invalid_file   the upload cannot be read; the job ends in ``error`` with the sentence
"""

from __future__ import annotations

from tidings.errors import TidingsError


class BadFile(TidingsError):
    """Empty, not UTF-8, ragged, invalid JSON...: ``message`` tells a person which, and why."""

    code = "invalid_file"
    http_status = 422
