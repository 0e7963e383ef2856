"""A real Redis Cluster for the tests: ``redis-server --cluster-enabled yes`` processes on free
loopback ports, joined with ``redis-cli --cluster create``, each ended by its pid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis
from redis.crc import key_slot
from tidings.constants import job_channel

from tests.support import RedisServer, free_port, wait_for


class RedisClusterProcesses:
    """``masters`` masters, each with ``replicas`` replicas, on 127.0.0.1."""

    def __init__(self, directory: Path, masters: int = 3, replicas: int = 0) -> None:
        self.servers = [
            RedisServer(
                directory,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(directory / f"nodes-{index}.conf"),
                "--cluster-node-timeout",
                "1000",
                "--cluster-port",  # the default, port + 10000, may be above 65535
                str(free_port()),
            )
            for index in range(masters * (1 + replicas))
        ]
        self.replicas = replicas

    @property
    def url(self) -> str:
        """The URL of one node, as a user would give it."""
        return self.servers[0].url

    def start(self) -> RedisClusterProcesses:
        for server in self.servers:
            server.start()
        cli = shutil.which("redis-cli")
        assert cli, "redis-cli is not installed (.ci/run installs it)"
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{server.port}" for server in self.servers),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_for(self.ready, timeout=30, what="cluster_state:ok on every node")
        return self

    def ready(self) -> bool:
        """Every live node says the cluster is ok and sees the same masters."""
        views = []
        for server in self.live():
            with redis.Redis(port=server.port, decode_responses=True) as client:
                if "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    return False
                views.append(sorted({port for _, _, port in self._slots(client)}))
        return all(view == views[0] for view in views)

    def live(self) -> list[RedisServer]:
        return [server for server in self.servers if server.process is not None]

    @staticmethod
    def _slots(client: redis.Redis) -> list[tuple[int, int, int]]:
        """(first slot, last slot, master port) of every range, as that node sees them."""
        return [
            (int(first), int(last), int(master[1]))
            for first, last, master, *_ in client.execute_command("CLUSTER", "SLOTS")
        ]

    def master_of(self, name: str) -> RedisServer:
        """The server that owns the slot of a key or shard channel, as a live node sees it."""
        slot = key_slot(name.encode())
        with redis.Redis(port=self.live()[0].port) as client:
            port = next(port for first, last, port in self._slots(client) if first <= slot <= last)
        return next(server for server in self.servers if server.port == port)

    def masters(self) -> list[RedisServer]:
        with redis.Redis(port=self.live()[0].port) as client:
            ports = {port for _, _, port in self._slots(client)}
        return [server for server in self.servers if server.port in ports]

    def one_job_per_master(self, prefix: str) -> list[str]:
        """Job ids whose keys and channel land on each master in turn."""
        jobs: dict[int, str] = {}
        index = 0
        while len(jobs) < len(self.masters()):
            job_id = f"{prefix}-{index}"
            jobs.setdefault(self.master_of(job_channel(job_id)).port, job_id)
            index += 1
        return list(jobs.values())

    def move_slot(self, name: str, to: RedisServer) -> None:
        """Migrate the slot of a key or shard channel, with its keys, to another master, as
        ``redis-cli --cluster reshard`` does: the new owner first, the old one last."""
        slot = key_slot(name.encode())
        source = self.master_of(name)
        ids = {}
        for master in self.masters():
            with redis.Redis(port=master.port, decode_responses=True) as client:
                ids[master.port] = client.execute_command("CLUSTER", "MYID")
        with redis.Redis(port=to.port) as target, redis.Redis(port=source.port) as origin:
            target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
            origin.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to.port])
            keys = origin.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
            if keys:
                origin.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
        others = [master for master in self.masters() if master not in (source, to)]
        for master in [to, *others, source]:
            with redis.Redis(port=master.port) as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to.port])

    def replicated(self, master: RedisServer) -> bool:
        """Its replicas have everything it has: a failover now loses no acknowledged write."""
        with redis.Redis(port=master.port, decode_responses=True) as client:
            info = client.info("replication")
        offset = info["master_repl_offset"]
        replicas = [info[key] for key in info if key.startswith("slave")]
        return bool(replicas) and all(replica["offset"] == offset for replica in replicas)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
