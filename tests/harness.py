"""Real Redis servers for the tests, started on loopback by the tests themselves.

``RedisServer`` runs one ``redis-server``; ``RedisCluster`` runs several with
``--cluster-enabled yes`` and joins them with ``redis-cli --cluster create``.
Both keep their files in a temporary directory and stop their processes when
closed (and, as a last resort, when the interpreter exits).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def redis_binaries() -> tuple[str, str] | None:
    """Return the paths of redis-server and redis-cli, or None if missing."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server and cli:
        return server, cli
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(bus: bool = False) -> int:
    """Return a loopback port that is free (and whose cluster bus port is, too)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535 and bus:
            continue
        if not bus or _port_free(port + 10000):
            return port
    raise RuntimeError("no free loopback port found")


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


class RedisServer:
    """One redis-server on 127.0.0.1, with its own directory."""

    def __init__(self, *extra: str, port: int | None = None, cluster: bool = False) -> None:
        binaries = redis_binaries()
        if binaries is None:
            raise RuntimeError("redis-server is not installed")
        self.binary, self.cli = binaries
        self.port = port or free_port(bus=cluster)
        self.cluster = cluster
        self.extra = list(extra)
        self.dir = Path(tempfile.mkdtemp(prefix=f"charon-redis-{self.port}-"))
        self.process: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]
        args += self.extra
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = self.client(socket_timeout=1)
        try:
            wait_until(lambda: client.ping(), what=f"redis-server on port {self.port}")
        except TimeoutError:
            raise RuntimeError(f"redis-server did not start: {self.log()}") from None
        finally:
            client.close()
        return self

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server abruptly (SIGKILL by default), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """A Redis Cluster of ``primaries`` primaries on loopback, no replicas."""

    def __init__(self, primaries: int = 3) -> None:
        self.nodes = [RedisServer(cluster=True) for _ in range(primaries)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        cli = self.nodes[0].cli
        result = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {result.stdout}{result.stderr}")
        for node in self.nodes:
            client = node.client(socket_timeout=1)
            wait_until(
                lambda c=client: c.cluster("info").get("cluster_state") == "ok",
                timeout=30,
                what="cluster_state:ok",
            )
            client.close()
        return self

    def client(self) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.nodes[0].port)

    def add_replica(self, primary: int = 0, timeout: float = 30.0) -> RedisServer:
        """Start one more node and make it a replica of ``nodes[primary]``.

        The caller closes it (``close()`` only closes ``nodes``). Returns once
        the replica is in sync and every node knows it as a replica.
        """
        target = self.nodes[primary]
        node = RedisServer(*target.extra, cluster=True).start()
        link = node.client(socket_timeout=2)
        owner = target.client(socket_timeout=2)
        try:
            primary_id = owner.execute_command("CLUSTER", "MYID")
            primary_id = primary_id.decode() if isinstance(primary_id, bytes) else primary_id
            link.execute_command("CLUSTER", "MEET", "127.0.0.1", target.port)
            wait_until(
                lambda: primary_id in str(link.execute_command("CLUSTER", "NODES")),
                timeout=timeout,
                what="the new node to learn the cluster",
            )
            link.execute_command("CLUSTER", "REPLICATE", primary_id)
            wait_until(
                lambda: link.info("replication").get("master_link_status") == "up",
                timeout=timeout,
                what="the replica to sync",
            )
            replica_id = link.execute_command("CLUSTER", "MYID")
            replica_id = replica_id.decode() if isinstance(replica_id, bytes) else replica_id
            for other in self.nodes:
                c = other.client(socket_timeout=2)
                wait_until(
                    lambda c=c: any(
                        line.startswith(replica_id) and "slave" in line
                        for line in _text(c.execute_command("CLUSTER", "NODES")).splitlines()
                    ),
                    timeout=timeout,
                    what="every node to know the replica",
                )
                c.close()
        finally:
            link.close()
            owner.close()
        return node

    def wait_promoted(self, replica: RedisServer, timeout: float = 30.0) -> None:
        """Wait until ``replica`` is a primary and every live node says the cluster is ok."""
        c = replica.client(socket_timeout=2)
        wait_until(
            lambda: c.info("replication").get("role") == "master",
            timeout=timeout,
            what="the replica to be promoted",
        )
        c.close()
        for node in [*self.nodes, replica]:
            if node.process is None:
                continue
            n = node.client(socket_timeout=2)
            wait_until(
                lambda n=n: n.cluster("info").get("cluster_state") == "ok",
                timeout=timeout,
                what="cluster_state:ok after the failover",
            )
            n.close()

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def require_redis() -> bool:
    """Return whether real-Redis tests can run; in CI a missing server is an error."""
    if redis_binaries() is not None:
        return True
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            "CI=true but redis-server/redis-cli are not installed; .ci/run installs them."
        )
    return False
