"""The one error of the ingestion pipeline, under tidings' tree (``server/errors.py``).

TidingsError
 └── BadFile   invalid_file   the upload cannot be read; the job ends in ``error`` with the sentence
"""

from __future__ import annotations

from ..errors import TidingsError


class BadFile(TidingsError):
    """The file is empty, not UTF-8, ragged, not valid JSON...: ``message`` says which, to a person."""

    code = "invalid_file"
    http_status = 422
