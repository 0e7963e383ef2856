"""Uploads that would freeze or bloat a node, while another user watches a job on it.

Rows of issue 14: a 60 KB CSV that sends ``csv.Sniffer``'s regexes into quadratic backtracking
(the node froze ≈ 31 s: ``/healthz`` waited too); a file whose parsing outlasts the budget; a CSV
of two 20 MB lines of 2-byte cells (+526 MB); a 10 MB JSON array of empty objects (+287 MB).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.support import children, control, node, peak_rss, slow_csv
from tests.ingest.support import finished, upload
from tests.support import ServerProcess

#: 60 KB that takes ``csv.Sniffer().sniff`` tens of seconds (20 KB of it: ≈ 8 s). Before the
#: fix the node froze ≈ 31 s on it, far past ``HEALTHZ_BOUND``, which the control asserts.
SNIFFER_BOMB = b',"' * 30_000
#: Peak memory a parsing process may reach on a hostile file (its interpreter is ≈ 40 MB).
WORKER_PEAK_BOUND = 200 * 1024 * 1024
#: Growth of the server process's own peak during an attack.
SERVER_GROWTH_BOUND = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with node(tmp_path_factory.mktemp("parsing"), TIDINGS_PIPELINE_PROCESSES="1") as running:
        yield running


async def test_a_sniffer_bomb_does_not_stall_other_users(server: ServerProcess) -> None:
    async with control(server.url):
        status, body = await upload(server.url, [("bomb.csv", SNIFFER_BOMB)])
        assert status == 202, body
        job = await finished(server.url, body["jobs"][0]["job_id"])
    assert job["status"] in ("done", "error"), job


async def test_parsing_past_the_budget_fails_with_a_sentence(tmp_path: Path) -> None:
    slow = slow_csv()
    env = {"TIDINGS_PIPELINE_TIMEOUT": "0.2", "TIDINGS_PIPELINE_PROCESSES": "1"}
    with node(tmp_path, **env) as server:
        async with control(server.url):
            status, body = await upload(server.url, [("slow.csv", slow)])
            assert status == 202, body
            job = await finished(server.url, body["jobs"][0]["job_id"])
            assert job["status"] == "error"
            assert job["error"]["message"] == (
                "Reading slow.csv took longer than 0.2 seconds, the most one file may take, so "
                "I stopped. Check that it is the file you meant, or upload it in smaller parts."
            )
            # Control arm: the pool was replaced, and a small file within the budget is read.
            status, body = await upload(server.url, [("small.csv", b"a,b\n1,2\n3,4\n")])
            job = await finished(server.url, body["jobs"][0]["job_id"])
            assert job["status"] == "done", job["error"]
            assert job["result"]["rows"] == 2, job


def _worker_peak(server: ServerProcess) -> int:
    assert server.process is not None
    return max((peak_rss(child) for child in children(server.process.pid)), default=0)


@pytest.mark.parametrize(
    ("name", "data", "sentence"),
    [
        (
            "lines.csv",
            (b"1," * 10_000_000 + b"\n") * 2,  # two 20 MB lines of 2-byte cells
            "lines.csv has a line longer than 1,048,576 characters, the longest I read. "
            "Check that it is the file you meant, or split its lines.",
        ),
        (
            "empty.json",
            b"[" + b"{}," * 3_333_332 + b"{}]",  # 10 MB of empty objects
            "empty.json holds more than 655,360 JSON objects and arrays, the most I decode from "
            "one document. Upload it as JSON Lines (one record per line) instead.",
        ),
    ],
)
async def test_a_file_that_would_bloat_memory_is_refused(
    server: ServerProcess, name: str, data: bytes, sentence: str
) -> None:
    assert server.process is not None
    before = peak_rss(server.process.pid)
    async with control(server.url):
        status, body = await upload(server.url, [(name, data)])
        assert status == 202, body
        job = await finished(server.url, body["jobs"][0]["job_id"])
    assert (job["status"], job["error"]["message"]) == ("error", sentence)
    grown, worker = peak_rss(server.process.pid) - before, _worker_peak(server)
    print(f"\nserver peak grew {grown >> 20} MB; parsing process peak {worker >> 20} MB")
    assert grown < SERVER_GROWTH_BOUND
    assert 0 < worker < WORKER_PEAK_BOUND  # 0: the file was not parsed in a worker at all
