"""The built-in ingestion pipeline behind ``POST /api/upload`` (``server/upload.py``).

Small pure modules do the analysis (``hashing``, ``similarity``, ``formats``, ``platforms``,
``entities``); ``registry`` remembers earlier uploads (in memory, or in Redis for every node);
``pipeline`` runs and reports the steps for one file; ``pool`` parses in worker processes within
a time budget; ``runner`` runs pipelines as the server's tasks, a bounded number at once.
"""

from tidings.ingest.errors import BadFile
from tidings.ingest.formats import Limits
from tidings.ingest.pipeline import Parsing, Pipeline, Upload
from tidings.ingest.pool import ParsePool
from tidings.ingest.registry import MemoryRegistry, RedisRegistry, Registry
from tidings.ingest.runner import PipelineRunner

__all__ = [
    "BadFile",
    "Limits",
    "MemoryRegistry",
    "ParsePool",
    "Parsing",
    "Pipeline",
    "PipelineRunner",
    "RedisRegistry",
    "Registry",
    "Upload",
]
