"""Redis restarted without persistence mid-job, with many jobs and clients: every job begins a
new epoch, and every client moves to it explicitly.

Issue 14, item 6. tests/cluster/test_redis_restart.py already shows, for one job and two
clients, that a Redis without persistence loses acknowledged updates and that the job begins
again in another epoch. This adds what it does not check: 20 jobs at once, 60 clients keeping
the client rule, and each client's whole history of states. After the crash each client must
replace its state with a Snapshot of the new epoch (``recovered: false``: nothing of the old
epoch can be caught up), then apply the new epoch's events contiguously; no client may end on
the old epoch; each job's new epoch is contiguous, 1..N in the store's history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.chaos.faults import jobs_under_way, read_fleet
from tests.support import http_json

JOBS = 20
CLIENTS = 60
UPDATES = 60  # per job
RATE = 150.0  # updates a second, all jobs
PREFIX = "amnesia-"


def violations(log: list[list[Any]]) -> list[str]:
    """What in a client's states breaks the client rule: an Event applied that is not the next
    seq of the epoch the client is in (a Snapshot may replace the state with anything)."""
    found = []
    state: tuple[str, int] | None = None
    for kind, epoch, seq in log:
        if kind == "event":
            fresh = state is None and seq == 1
            if not fresh and state != (epoch, seq - 1):
                found.append(f"applied {epoch}:{seq} on {state}")
        state = (epoch, seq)
    return found


async def test_a_redis_that_forgets_everything_moves_every_client_to_the_new_epoch(
    tmp_path: Path,
) -> None:
    # jobs_under_way's Redis keeps no appendonly file and no snapshots: a restart forgets all.
    scene = jobs_under_way(
        tmp_path,
        PREFIX,
        jobs=JOBS,
        clients=CLIENTS,
        updates=UPDATES,
        rate=RATE,
        started=UPDATES // 3,
    )
    async with scene as run:
        url = run.node.url
        old = {f"{PREFIX}{i}": await _job(url, f"{PREFIX}{i}") for i in range(JOBS)}

        run.redis.crash()
        run.redis.start()  # the same port, empty

        summary = await run.finish()
        new = {job_id: await _job(url, job_id) for job_id in old}
        histories = {
            job_id: await _history(url, job_id, job["epoch"]) for job_id, job in new.items()
        }

    for job_id, job in new.items():
        assert job["epoch"] != old[job_id]["epoch"] and job["status"] == "done", job
        assert histories[job_id] == list(range(1, job["seq"] + 1)), job_id
    watchers = read_fleet(run.out)
    assert len(watchers) == CLIENTS
    resyncs = []
    for client in watchers:
        job = new[client["job_id"]]
        log = client["log"]
        assert violations(log) == [], (client["job_id"], violations(log))
        # It ends where the store ends, in the new epoch: nobody is left on the old one.
        assert tuple(log[-1][1:]) == (job["epoch"], job["seq"]), client["job_id"]
        assert client["epochs"] == [old[client["job_id"]]["epoch"], job["epoch"]]
        # It moved explicitly: a Snapshot of the new epoch replaced its state.
        moved = [entry for entry in log if entry[0] == "snapshot" and entry[1] == job["epoch"]]
        assert moved, client["job_id"]
        resyncs.append(moved[0][2])
    print(
        f"\n{JOBS} jobs, {CLIENTS} clients: every client resynced to its job's new epoch "
        f"(at new seq {min(resyncs)}..{max(resyncs)}); final seq in the new epochs "
        f"{min(job['seq'] for job in new.values())}..{max(job['seq'] for job in new.values())} "
        f"of {UPDATES} updates sent; worker sends refused after the emitter's retries: "
        f"{summary['errors']}; client reconnects: {sum(len(c['back']) for c in watchers)}"
    )


def test_the_check_flags_a_client_that_applies_the_new_epoch_onto_the_old_state() -> None:
    """The control arm of the log check: what a client that ignores epochs would record."""
    assert violations([["snapshot", "a", 3], ["event", "a", 4], ["event", "a", 5]]) == []
    assert violations([["snapshot", "a", 3], ["snapshot", "b", 7], ["event", "b", 8]]) == []
    assert violations([["event", "a", 1], ["event", "b", 1]]) == ["applied b:1 on ('a', 1)"]
    assert violations([["snapshot", "a", 3], ["event", "a", 5]]) == ["applied a:5 on ('a', 3)"]
    assert violations([["snapshot", "a", 3], ["event", "a", 3]]) == ["applied a:3 on ('a', 3)"]


async def _job(url: str, job_id: str) -> dict[str, Any]:
    status, job = await http_json("GET", f"{url}/api/jobs/{job_id}")
    assert status == 200, job
    return dict(job)


async def _history(url: str, job_id: str, epoch: str) -> list[int]:
    status, read = await http_json("GET", f"{url}/api/jobs/{job_id}/events?epoch={epoch}&since=0")
    assert status == 200 and read["recovered"], read
    return [event["seq"] for event in read["events"]]
