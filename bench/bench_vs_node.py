"""tidings against a Node peer (Socket.IO 4.8 + the official Redis adapter), side by side.

One command, ratios measured in the same run (the machine may be busy: compare within a run):

    python bench/bench_vs_node.py            # C=1,000 clients, R=100 jobs, 5,000 idle connections
    python bench/bench_vs_node.py --smoke    # a few seconds, small C (CI runs this)

Both sides do the same work per update: a worker process runs one atomic merge script in Redis
and publishes the resulting Event to the job's room (tidings: ``ProgressEmitter.from_url``;
the peer: ``bench/peer/worker.mjs``, EVALSHA of ``bench/peer/merge.lua`` then
``@socket.io/redis-emitter``). One load client for both (``bench/loadclient.py``, raw EIO4/SIO5
websockets). Servers are pinned to one core; Redis, the clients and the worker to the other.

Rows (for each of tidings and the peer):

- saturation: deliveries/s at C clients, R jobs (C/R watchers per job), two workers as fast as
  they go, the median of three rounds per side (each round's figure is in the JSON). On two
  cores the first thing to run out may be the other core (workers, clients, Redis) or the
  neighbours' share of the server core: the JSON has every process's CPU %;
- fixed rate: p50/p99 emit -> client latency and server CPU at 1,000 updates/s, that is
  10,000 deliveries/s at C=1,000, R=100; and from it, deliveries per server CPU-second, the
  figure that estimates one free core's saturation whatever else the machine runs;
- light: the same at a quarter of the rate, the latency of a server that keeps up;
- worker: one worker process's updates/s and its CPU per update (Redis only, no node), 64 updates
  in flight over R jobs, the worker on the server core (no server runs) and Redis on the other:
  a worker's throughput, not the sum of its CPU and Redis's on one core; and worker_one: one
  job's updates sent one at a time, each awaited, worker and Redis on the other core as in the
  delivery rows (a chain of round trips: on this machine's VMs a wakeup across cores costs more
  than the update itself);
- idle memory per connection: RSS delta / connections at 5,000 subscribed connections;
- two nodes through Redis: C clients split over two nodes at the fixed rate;
- cluster: the same through a 3-master Redis Cluster, started for the row (each master pinned
  like Redis, to the other core; emptied between the sides). tidings is given one cluster node's URL
  (it finds the cluster itself); the peer runs ``createShardedAdapter`` (Redis 7 sharded pub/sub,
  ``subscriptionMode: "dynamic"``: a shard channel per room) over node-redis cluster clients, and
  its worker (``worker.mjs --cluster``) SPUBLISHes the adapter's own broadcast message on the
  room's channel. Besides latency and each node's CPU %, the updates the clients missed (gaps in
  the ``seq`` each connection heard after its subscribe ack, and connections that heard none):
  0 when every update was delivered;
- a node with no watchers while the updates go to another node: its CPU %.

Plus the baseline: tidings with its embedded memory store (no Redis on the path; the updates
are made inside the node by ``ProgressEmitter.for_app``), at the fixed rate.

Where a node's time goes: ``--profile DIR`` records each tidings node of the delivery rows with
py-spy (``pip install py-spy``) during the measuring window, for instance
``python bench/bench_vs_node.py --only fixed --profile /tmp/profiles``.

Writes ``bench/results/vs_node.json`` and ``vs_node.png`` (``--out`` elsewhere; ``--smoke``
writes to a temporary directory unless ``--out`` is given) and prints a table.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEER = BENCH / "peer"
sys.path.insert(0, str(ROOT))

from tests.cluster.redis_cluster import RedisClusterProcesses  # noqa: E402
from tests.support import RedisServer, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Connections one load-client process opens at most.
PER_CLIENT_PROCESS = 2500
SIDES = ("tidings", "node")


# -- processes -----------------------------------------------------------------------------------


def cores() -> tuple[int, int]:
    """(the servers' core, the core of everything else); the same core on a one-core machine."""
    available = sorted(os.sched_getaffinity(0))
    return available[0], available[-1]


class Proc:
    """A child process pinned to one core, ended by its pid."""

    def __init__(
        self,
        argv: Sequence[str],
        core: int,
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        pipe: bool = False,
    ) -> None:
        self.log_file: IO[bytes] | None = open(log, "ab") if log else None  # noqa: SIM115
        self.popen = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else (self.log_file or subprocess.DEVNULL),
            stderr=self.log_file or subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, {core}),
            text=False,
        )
        self.pid = self.popen.pid

    def line(self, timeout: float, what: str) -> str:
        """The next line of stdout (a pipe), or an error naming ``what``."""
        assert self.popen.stdout is not None
        import select

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.popen.stdout], [], [], 0.2)
            if ready:
                text = self.popen.stdout.readline().decode()
                if text:
                    return text.strip()
            if self.popen.poll() is not None:
                raise RuntimeError(f"{what} exited ({self.popen.returncode}) before answering")
        raise TimeoutError(f"timed out waiting for {what}")

    def send(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text.encode() + b"\n")
        self.popen.stdin.flush()

    def cpu_seconds(self) -> float:
        """utime + stime from /proc/<pid>/stat."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_kib(self) -> int:
        for row in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
        raise RuntimeError("no VmRSS")

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                stream.close()
        if self.log_file:
            self.log_file.close()


def wait_http(url: str, proc: Proc, timeout: float = 30) -> None:
    """Until the server answers HTTP at all (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"the server at {url} exited ({proc.popen.returncode}); see its log")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


# -- the two sides -------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything one benchmark run started; stopped in reverse order."""

    redis_url: str
    logs: Path
    server_core: int
    other_core: int
    t0: float = field(default_factory=time.time)
    procs: list[Proc] = field(default_factory=list)
    nodes: dict[str, Proc] = field(default_factory=dict)
    pending: list[tuple[str, Proc]] = field(default_factory=list)
    #: Where py-spy's profiles of the tidings nodes go (``--profile``); None: not profiled.
    profile: Path | None = None
    #: ``redis_url`` names one node of a Redis Cluster (``ClusterOnDemand``).
    cluster: bool = False

    def start(self, argv: Sequence[str], core: int, **kwargs: Any) -> Proc:
        proc = Proc(argv, core, **kwargs)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.terminate()
        while self.procs:
            self.procs.pop().stop()
        self.nodes.clear()
        self.pending.clear()
        flush(self.redis_url, self.cluster)

    def node(self, side: str, *, memory_store: bool = False, jobs: int = 0) -> str:
        """Start one server node of ``side`` on the server core; its base URL (``wait_nodes``)."""
        port = free_port()
        log = self.logs / f"{side}-{port}.log"
        if side == "tidings":
            env = {
                "TIDINGS_HOST": "127.0.0.1",
                "TIDINGS_PORT": str(port),
                "TIDINGS_REDIS_URL": "" if memory_store else self.redis_url,
                "TIDINGS_SOCKET_BURST": "100000",
            }
            argv = [sys.executable, "-m", "tidings", "serve"]
            if memory_store:
                argv = [sys.executable, str(BENCH / "embedded_node.py"), "--port", str(port)]
                argv += ["--jobs", str(jobs), "--t0", repr(self.t0)]
            proc = self.start(argv, self.server_core, env=env, log=log)
            url = f"http://127.0.0.1:{port}"
            self.pending.append((url + "/healthz", proc))
        else:
            env = {"PORT": str(port), "REDIS_URL": self.redis_url}
            env |= {"REDIS_CLUSTER": "1"} if self.cluster else {}
            argv = ["node", str(PEER / "server.mjs")]
            proc = self.start(argv, self.server_core, env=env, log=log)
            url = f"http://127.0.0.1:{port}"
            self.pending.append((url + "/socket.io/?EIO=4&transport=polling", proc))
        self.nodes[url] = proc
        return url

    def wait_nodes(self) -> None:
        """Until every node started answers HTTP."""
        while self.pending:
            wait_http(*self.pending.pop())

    def worker_argv(self, side: str, *args: str) -> list[str]:
        common = ["--redis", self.redis_url, "--t0", repr(self.t0), *args]
        if side == "tidings":
            return [sys.executable, str(BENCH / "tidings_worker.py"), *common]
        return ["node", str(PEER / "worker.mjs"), *common, *(["--cluster"] if self.cluster else [])]

    def workers(self, side: str, count: int, *args: str, core: int | None = None) -> list[Proc]:
        """``count`` worker processes on ``core`` (the other core unless said); they prime the
        jobs, then wait for ``go`` (see ``tidings_worker.py``)."""
        argv = self.worker_argv(side, *args)
        core = self.other_core if core is None else core
        return [self.start(argv, core, pipe=True) for _ in range(count)]

    def clients(self, url: str, count: int, jobs: int, offset: int = 0) -> list[Proc]:
        """Load-client processes holding ``count`` subscribed connections to ``url``, ready."""
        procs = []
        for start in range(0, count, PER_CLIENT_PROCESS):
            size = min(PER_CLIENT_PROCESS, count - start)
            out = self.logs / f"latencies-{free_port()}.bin"
            argv = [sys.executable, str(BENCH / "loadclient.py"), "--url", url]
            argv += ["--clients", str(size), "--jobs", str(jobs), "--offset", str(offset + start)]
            argv += ["--t0", repr(self.t0), "--out", str(out)]
            proc = self.start(argv, self.other_core, pipe=True, log=self.logs / "clients.log")
            proc.out = out  # type: ignore[attr-defined]
            procs.append(proc)
        for proc in procs:
            reply = proc.line(180, "a load client to connect")
            ready = json.loads(reply.split(" ", 1)[1])
            if ready["failed"]:
                raise RuntimeError(
                    f"{ready['failed']} connections to {url} failed: {ready['first_error']}"
                )
        return procs


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return math.nan
    return values[min(len(values) - 1, int(len(values) * fraction))]


def delivery(
    run: Run,
    side: str,
    *,
    clients: Sequence[int],
    jobs: int,
    rate: float,
    warmup: float,
    seconds: float,
    workers: int = 1,
    memory_store: bool = False,
) -> dict[str, Any]:
    """One delivery measurement: ``clients[i]`` watchers on node i, ``workers`` worker processes
    at ``rate`` updates/s in all (0: as fast as they go). Deliveries/s, emit -> client latency,
    each node's CPU % and RSS, the workers' updates/s and CPU %."""
    try:
        pace = ["--jobs", str(jobs), "--rate", str(rate / workers)]
        pace += ["--duration", str(warmup + seconds + 0.5)]
        # Everything that needs only Redis starts while the nodes start.
        pool = [] if memory_store else run.workers(side, workers, *pace)
        urls = [run.node(side, memory_store=memory_store, jobs=jobs) for _ in clients]
        run.wait_nodes()
        if memory_store:
            urllib.request.urlopen(f"{urls[0]}/bench/prime", timeout=60).close()
        for worker in pool:
            worker.line(60, "the worker to prime the jobs")
        loaders: list[Proc] = []
        offset = 0
        for url, count in zip(urls, clients, strict=True):
            loaders += run.clients(url, count, jobs, offset) if count else []
            offset += count
        nodes = [run.nodes[url] for url in urls]
        if memory_store:
            # The embedded node makes the updates itself: tell it to start now.
            with urllib.request.urlopen(
                f"{urls[0]}/bench/start?rate={rate}&duration={warmup + seconds + 0.5}", timeout=10
            ) as answer:
                answer.read()
        for worker in pool:
            worker.send("go")
        for worker in pool:
            worker.line(60, "the worker to start")
        begin = time.time() - run.t0 + warmup
        end = begin + seconds
        for loader in loaders:
            loader.send(f"go {begin} {end}")
        time.sleep(max(0.0, begin - (time.time() - run.t0)))
        watched = [*nodes, *pool, *loaders]
        cpu0 = [proc.cpu_seconds() for proc in watched]
        name = f"{side}{'-memory' if memory_store else ''}-{rate:g}"
        spies = profile(run, nodes, seconds, name) if side == "tidings" else []
        time.sleep(max(0.0, end - (time.time() - run.t0)))
        for spy in spies:
            spy.wait(30)
        cpu1 = [proc.cpu_seconds() for proc in watched]
        cpu = [(b - a) / seconds * 100 for a, b in zip(cpu0, cpu1, strict=True)]
        rss = [node.rss_kib() for node in nodes]
        updates = math.nan
        if pool:
            results = [json.loads(worker.line(60, "the worker to finish")) for worker in pool]
            updates = sum(result["updates"] / result["seconds"] for result in results)
        received = lost = missed = silent = 0
        latencies = array.array("d")
        for loader in loaders:
            done = json.loads(loader.line(60, "a load client to finish").split(" ", 1)[1])
            received += done["in_window"]
            lost += done["lost"]
            missed += done["missed"]
            silent += done["silent"]
            loader.wait(30)
            with open(loader.out, "rb") as file:  # type: ignore[attr-defined]
                latencies.frombytes(file.read())
        ordered = sorted(latencies)
        return {
            "deliveries_per_s": received / seconds,
            "expected_deliveries_per_s": rate * sum(clients) / jobs if rate else None,
            "p50_ms": percentile(ordered, 0.50) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000,
            "node_cpu_percent": cpu[: len(nodes)],
            "node_rss_mib": [kib / 1024 for kib in rss],
            "workers": workers if pool else 0,
            "worker_updates_per_s": updates,
            "worker_cpu_percent": sum(cpu[len(nodes) : len(nodes) + len(pool)]),
            "load_clients_cpu_percent": sum(cpu[len(nodes) + len(pool) :]),
            "clients": list(clients),
            "connections_lost": lost,
            "updates_missed": missed,
            "silent_connections": silent,
        }
    finally:
        run.stop_all()


@dataclass
class ClusterOnDemand:
    """A 3-master Redis Cluster, started when a row first asks for it (``--only`` may leave every
    such row out), each master pinned to the other core as Redis is; ``stop`` ends it if started."""

    logs: Path
    core: int
    processes: RedisClusterProcesses | None = None

    def on(self, run: Run) -> Run:
        """``run`` with the cluster as its Redis; it shares ``run``'s processes, so that
        ``run.stop_all()`` ends them too."""
        if self.processes is None:
            # Kept before it starts, so that stop() ends the servers a failed start left.
            self.processes = RedisClusterProcesses(Path(tempfile.mkdtemp(dir=self.logs)))
            self.processes.start()
            for server in self.processes.servers:
                assert server.process is not None
                os.sched_setaffinity(server.process.pid, {self.core})
        return dataclasses.replace(run, redis_url=self.processes.url, cluster=True)

    def stop(self) -> None:
        if self.processes is not None:
            self.processes.stop()


def profile(run: Run, nodes: Sequence[Proc], seconds: float, name: str) -> list[Proc]:
    """py-spy recording each node for the measuring window, as collapsed stacks with native
    frames (a system call or the idle loop shows as such) in ``run.profile``; none unless
    ``--profile``. py-spy pauses the node for each sample: read the figures of a profiled run
    as perturbed."""
    if run.profile is None:
        return []
    argv = ["py-spy", "record", "--native", "--rate", "250", "--format", "raw"]
    argv += ["--duration", str(max(1, round(seconds)))]
    spies = []
    for node in nodes:
        output = run.profile / f"{name}-{node.pid}.txt"
        spies.append(
            run.start([*argv, "--pid", str(node.pid), "--output", str(output)], run.other_core)
        )
    return spies


def median_round(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The round of median deliveries/s, with every round's figure beside it: on two cores the
    saturation row is bound by whatever runs out first, and swings from run to run."""
    ordered = sorted(rounds, key=lambda result: result["deliveries_per_s"])
    return {
        **ordered[len(ordered) // 2],
        "rounds_deliveries_per_s": [result["deliveries_per_s"] for result in rounds],
    }


def worker_only(
    run: Run, side: str, jobs: int, seconds: float, concurrency: int, core: int
) -> dict[str, Any]:
    """One worker process on ``core`` as fast as ``concurrency`` updates in flight let it go,
    Redis only (nobody subscribed)."""
    try:
        pace = ["--jobs", str(jobs), "--duration", str(seconds), "--concurrency", str(concurrency)]
        (worker,) = run.workers(side, 1, *pace, core=core)
        worker.line(60, "the worker to prime the jobs")
        worker.send("go")
        worker.line(60, "the worker to start")
        cpu0 = worker.cpu_seconds()
        result = json.loads(worker.line(seconds + 60, "the worker to finish"))
        cpu1 = worker.cpu_seconds()
        return {
            "worker_updates_per_s": result["updates"] / result["seconds"],
            "worker_cpu_percent": (cpu1 - cpu0) / result["seconds"] * 100,
        }
    finally:
        run.stop_all()


def idle_memory(run: Run, side: str, connections: int, jobs: int, settle: float) -> dict[str, Any]:
    """RSS delta per subscribed, idle connection."""
    try:
        (primer,) = run.workers(side, 1, "--jobs", str(jobs))
        url = run.node(side)
        run.wait_nodes()
        primer.line(60, "the worker to prime the jobs")
        primer.stop()  # stdin closed before "go": it exits without updating
        node = run.nodes[url]
        time.sleep(settle)
        before = node.rss_kib()
        loaders = run.clients(url, connections, jobs)
        time.sleep(2 * settle)
        after = node.rss_kib()
        for loader in loaders:
            loader.send("quit")
        return {
            "connections": connections,
            "rss_before_mib": before / 1024,
            "rss_after_mib": after / 1024,
            "kib_per_connection": (after - before) / connections,
        }
    finally:
        run.stop_all()


# -- the report ----------------------------------------------------------------------------------


def flush(redis_url: str, cluster: bool) -> None:
    """Empties the Redis (every master of a cluster)."""
    import redis

    client = redis.RedisCluster.from_url(redis_url) if cluster else redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()


def ensure_peer() -> None:
    if not shutil.which("node"):
        raise SystemExit("node is not installed: the peer needs Node 20 (.ci/run installs it)")
    installed = PEER / "node_modules" / ".package-lock.json"  # what npm installed, when
    lock = PEER / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if not npm:
            raise SystemExit("npm is not installed: it installs the peer's dependencies")
        subprocess.run(
            [npm, "ci", "--prefix", str(PEER), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
        )


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}"


def versions() -> dict[str, str]:
    from importlib.metadata import version

    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    lock = json.loads((PEER / "package-lock.json").read_text())["packages"]
    found = {
        "python": platform.python_version(),
        "python-socketio": version("python-socketio"),
        "aiohttp": version("aiohttp"),
        "node": node,
        "redis-server": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True
        ).stdout.split()[2],
    }
    peer = ("socket.io", "@socket.io/redis-adapter", "@socket.io/redis-emitter", "ioredis", "redis")
    for name in peer:
        found[name] = lock[f"node_modules/{name}"]["version"]
    with contextlib.suppress(Exception):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        found["tidings_commit"] = commit.stdout.strip()
    return found


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool | None  # None: context, not a score


METRICS = [
    Metric("saturation", "saturation deliveries/s", "/s", True),
    Metric("saturation_cpu", "server CPU at saturation", "%", None),
    Metric("fixed_p50", "p50 latency at the fixed rate", "ms", False),
    Metric("fixed_p99", "p99 latency at the fixed rate", "ms", False),
    Metric("fixed_cpu", "server CPU at the fixed rate", "%", False),
    Metric("fixed_delivered", "deliveries/s at the fixed rate", "/s", True),
    Metric("light_p50", "p50 latency at a quarter of the rate", "ms", False),
    Metric("light_p99", "p99 latency at a quarter of the rate", "ms", False),
    Metric("efficiency", "deliveries per server CPU-second", "/s", True),
    Metric("worker", "one worker's updates/s", "/s", True),
    Metric("worker_cost", "worker CPU per update", "ms", False),
    Metric("worker_one", "one job, each update awaited", "/s", True),
    Metric("idle_memory", "idle memory per connection", "KiB", False),
    Metric("two_nodes_p99", "two nodes: p99 latency", "ms", False),
    Metric("two_nodes_cpu", "two nodes: CPU of both", "%", False),
    Metric("idle_node_cpu", "node without watchers: CPU", "%", False),
    Metric("cluster_p50", "cluster: p50 latency", "ms", False),
    Metric("cluster_p99", "cluster: p99 latency", "ms", False),
    Metric("cluster_cpu", "cluster: CPU of both nodes", "%", False),
    Metric("cluster_delivered", "cluster: deliveries/s", "/s", True),
    Metric("cluster_missed", "cluster: updates missed (must be 0)", "", None),
    Metric("lost", "connections the server ended", "", None),
]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def summarize(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """metric key -> side -> value (the baseline side where it was measured)."""
    table: dict[str, dict[str, float]] = {metric.key: {} for metric in METRICS}
    for side, rows in runs.items():
        picks: dict[str, tuple[str, Callable[[dict[str, Any]], float]]] = {
            "saturation": ("saturation", lambda r: r["deliveries_per_s"]),
            "saturation_cpu": ("saturation", lambda r: r["node_cpu_percent"][0]),
            "fixed_p50": ("fixed", lambda r: r["p50_ms"]),
            "fixed_p99": ("fixed", lambda r: r["p99_ms"]),
            "fixed_cpu": ("fixed", lambda r: r["node_cpu_percent"][0]),
            "fixed_delivered": ("fixed", lambda r: r["deliveries_per_s"]),
            "light_p50": ("light", lambda r: r["p50_ms"]),
            "light_p99": ("light", lambda r: r["p99_ms"]),
            "worker": ("worker", lambda r: r["worker_updates_per_s"]),
            "worker_one": ("worker_one", lambda r: r["worker_updates_per_s"]),
            "idle_memory": ("idle_memory", lambda r: r["kib_per_connection"]),
            "two_nodes_p99": ("two_nodes", lambda r: r["p99_ms"]),
            "two_nodes_cpu": ("two_nodes", lambda r: sum(r["node_cpu_percent"])),
            "idle_node_cpu": ("idle_node", lambda r: r["node_cpu_percent"][1]),
            "cluster_p50": ("cluster", lambda r: r["p50_ms"]),
            "cluster_p99": ("cluster", lambda r: r["p99_ms"]),
            "cluster_cpu": ("cluster", lambda r: sum(r["node_cpu_percent"])),
            "cluster_delivered": ("cluster", lambda r: r["deliveries_per_s"]),
            "cluster_missed": ("cluster", lambda r: r["updates_missed"] + r["silent_connections"]),
            # What one free core would deliver: robust to the neighbours the machine shares.
            "efficiency": (
                "fixed",
                lambda r: ratio(r["deliveries_per_s"] * 100, r["node_cpu_percent"][0]),
            ),
            "worker_cost": (
                "worker",
                lambda r: ratio(r["worker_cpu_percent"] * 10, r["worker_updates_per_s"]),
            ),
        }
        for key, (row, pick) in picks.items():
            if row in rows:
                table[key][side] = float(pick(rows[row]))
        table["lost"][side] = float(sum(row.get("connections_lost", 0) for row in rows.values()))
    return table


def figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def print_table(table: dict[str, dict[str, float]]) -> None:
    print(f"\n{'':42} {'tidings':>11} {'node peer':>11} {'tidings/node':>13} {'baseline':>11}")
    for metric in METRICS:
        row = table[metric.key]
        if "tidings" not in row and "node" not in row:
            continue  # a row --only left out
        tidings, node = row.get("tidings", math.nan), row.get("node", math.nan)
        times = ratio(tidings, node)
        shown = f"{times:12.2f}x" if math.isfinite(times) else f"{'-':>13}"
        baseline = row.get("tidings_memory")
        base = f"{figure(baseline):>11}" if baseline is not None else f"{'':11}"
        label = metric.label + (f" ({metric.unit})" if metric.unit else "")
        print(f"{label:42} {figure(tidings):>11} {figure(node):>11} {shown} {base}")
    print("baseline: tidings with its embedded memory store, the updates made inside the node")
    print(
        "deliveries per server CPU-second (at the fixed rate) estimates the saturation of one\n"
        "free core; the measured saturation row is bound by whatever runs out first (see the\n"
        "server, worker and load-client CPU % in the JSON)"
    )


def chart(table: dict[str, dict[str, float]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The counts that must be 0 (connections ended, updates missed) are in the table only.
    shown = [metric for metric in METRICS if metric.key not in ("lost", "cluster_missed")]
    columns = 5
    rows = math.ceil(len(shown) / columns)
    canvas, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows + 0.8))
    colours = {"tidings": "#2b6cb0", "node": "#c05621", "tidings_memory": "#90cdf4"}
    names = {"tidings": "tidings", "node": "node peer", "tidings_memory": "tidings\n(memory)"}
    for axis, metric in zip(axes.flat, shown, strict=False):
        row = table[metric.key]
        sides = [side for side in ("tidings", "node", "tidings_memory") if side in row]
        values = [row[side] for side in sides]
        bars = axis.bar(
            [names[side] for side in sides], values, color=[colours[side] for side in sides]
        )
        labels = [figure(value) for value in values]
        axis.bar_label(bars, labels=labels, fontsize=8)
        times = row.get("tidings", math.nan) / row["node"] if row.get("node") else math.nan
        better = {True: "higher is better", False: "lower is better", None: "context"}
        axis.set_title(
            f"{metric.label} ({metric.unit})\ntidings/node {times:.2f}x, "
            f"{better[metric.higher_is_better]}",
            fontsize=8,
        )
        axis.tick_params(labelsize=8)
        axis.margins(y=0.2)
    for axis in list(axes.flat)[len(shown) :]:
        axis.axis("off")
    canvas.suptitle(title, fontsize=9)
    canvas.tight_layout()
    canvas.savefig(path, dpi=110)
    plt.close(canvas)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds, small C (CI)")
    parser.add_argument("--clients", type=int, help="C (1,000; smoke 20)")
    parser.add_argument("--jobs", type=int, help="R (100; smoke 4)")
    parser.add_argument("--rate", type=float, help="fixed updates/s (1,000; smoke 40)")
    parser.add_argument("--seconds", type=float, help="measuring window per row (6; smoke 1)")
    parser.add_argument("--warmup", type=float, help="seconds before each window (2; smoke 0.5)")
    parser.add_argument("--idle-connections", type=int, help="memory row (5,000; smoke 40)")
    parser.add_argument("--out", type=Path, help="results directory (bench/results)")
    parser.add_argument("--only", help="rows to run, comma-separated (development)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the tidings nodes of each delivery row with py-spy (installed by you) "
        "during its measuring window, as collapsed stacks in this directory",
    )
    parser.add_argument(
        "--saturation-workers", type=int, default=2, help="worker processes pushing saturation (2)"
    )
    parser.add_argument(
        "--saturation-rounds",
        type=int,
        help="saturation measured this many times per side, the median reported (3; smoke 1)",
    )
    args = parser.parse_args()
    smoke = args.smoke
    clients = args.clients or (20 if smoke else 1000)
    jobs = args.jobs or (4 if smoke else 100)
    rate = args.rate or (40 if smoke else 1000)
    seconds = args.seconds or (0.6 if smoke else 6.0)
    warmup = args.warmup if args.warmup is not None else (0.3 if smoke else 2.0)
    idle = args.idle_connections or (40 if smoke else 5000)
    settle = 0.3 if smoke else 1.5
    args.saturation_rounds = args.saturation_rounds or (1 if smoke else 3)
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-")) if smoke else BENCH / "results")

    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed (.ci/run installs it)")
    ensure_peer()
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2 * idle + 1000:
        raise SystemExit(f"open files are limited to {hard}: too few for {idle} connections")

    out.mkdir(parents=True, exist_ok=True)
    server_core, other_core = cores()
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    redis = RedisServer(logs)
    redis.start()
    assert redis.process is not None
    os.sched_setaffinity(redis.process.pid, {other_core})
    os.sched_setaffinity(0, {other_core})
    run = Run(redis.url, logs, server_core, other_core)
    cluster = ClusterOnDemand(logs, other_core)
    if args.profile:
        if not shutil.which("py-spy"):
            raise SystemExit("--profile needs py-spy on the PATH: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
        run.profile = args.profile
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {side: {} for side in (*SIDES, "tidings_memory")}
    pace: dict[str, Any] = {"jobs": jobs, "warmup": warmup, "seconds": seconds}
    half = [clients // 2, clients - clients // 2]

    def saturate(side: str) -> dict[str, Any]:
        workers = args.saturation_workers
        return delivery(run, side, clients=[clients], rate=0, workers=workers, **pace)

    plan: list[tuple[str, str, Callable[[str], dict[str, Any]]]] = [
        (
            "saturation",
            "*",
            lambda side: median_round([saturate(side) for _ in range(args.saturation_rounds)]),
        ),
        ("fixed", "*", lambda side: delivery(run, side, clients=[clients], rate=rate, **pace)),
        ("light", "*", lambda side: delivery(run, side, clients=[clients], rate=rate / 4, **pace)),
        ("worker", "*", lambda side: worker_only(run, side, jobs, seconds, 64, server_core)),
        ("worker_one", "*", lambda side: worker_only(run, side, 1, seconds, 1, other_core)),
        ("idle_memory", "*", lambda side: idle_memory(run, side, idle, jobs, settle)),
        ("two_nodes", "*", lambda side: delivery(run, side, clients=half, rate=rate, **pace)),
        (
            "idle_node",
            "*",
            lambda side: delivery(run, side, clients=[clients, 0], rate=rate, **pace),
        ),
        (
            "cluster",
            "*",
            lambda side: delivery(cluster.on(run), side, clients=half, rate=rate, **pace),
        ),
        (
            "fixed",
            "tidings_memory",
            lambda side: delivery(
                run, "tidings", clients=[clients], rate=rate, memory_store=True, **pace
            ),
        ),
    ]
    try:
        for row, sides, measure in plan:
            if args.only and row not in args.only.split(","):
                continue
            for side in SIDES if sides == "*" else (sides,):
                begun = time.monotonic()
                runs[side][row] = measure(side)
                print(f"  {row:12} {side:15} {time.monotonic() - begun:5.1f}s", flush=True)
    except BaseException:
        print(f"the servers' logs are kept in {logs}", file=sys.stderr)
        raise
    finally:
        run.stop_all()
        cluster.stop()
        redis.stop()

    when = datetime.datetime.now(datetime.UTC)
    table = summarize(runs)
    print_table(table)
    conditions = {
        "smoke": smoke,
        "clients": clients,
        "jobs": jobs,
        "watchers_per_job": clients / jobs,
        "fixed_updates_per_s": rate,
        "fixed_deliveries_per_s": rate * clients / jobs,
        "seconds_per_row": seconds,
        "warmup_seconds": warmup,
        "idle_connections": idle,
        "server_core": server_core,
        "other_core": other_core,
        "pinning": "servers on server_core; redis, load clients and workers on other_core, "
        "but the worker row's worker on server_core (no server runs)",
        "cluster": "3 masters, no replicas, each on other_core, started for the cluster row",
        "worker_concurrency": 64,
        "saturation_workers": args.saturation_workers,
        "saturation_rounds": args.saturation_rounds,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    report: dict[str, Any] = {
        "date": when.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "versions": versions(),
        "conditions": conditions,
        "ratios_tidings_over_node": {
            key: (row["tidings"] / row["node"] if row.get("node") else None)
            for key, row in table.items()
            if "tidings" in row
        },
        "summary": table,
        "runs": runs,
    }
    (out / "vs_node.json").write_text(json.dumps(finite(report), indent=2, allow_nan=False) + "\n")
    title = (
        f"tidings vs Node peer (Socket.IO {report['versions']['socket.io']} + redis-adapter), "
        f"C={clients}, R={jobs}, {rate:,.0f} updates/s fixed, {idle:,} idle connections\n"
        f"{report['date']}, {report['machine']}, load average "
        f"{report['load_average'][0]:.1f} at the end (other work shares the machine)"
    )
    chart(table, title, out / "vs_node.png")
    print(f"\nwrote {out}/vs_node.json and vs_node.png in {conditions['total_seconds']}s")
    shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
