"""Faults while the load of tests/load.py runs (issue 7, point 2).

Each scenario starts its own redis-server (or Cluster with a replica) on
loopback, runs the load, injects one fault, clears it, lets the load go on,
then checks the model. During the fault every error must be the documented
``RedisUnavailable`` and come within a bound of the timeouts; afterwards the
service must resume by itself (every worker, sync and async, succeeds again)
and nothing acknowledged may be lost, nothing ended may come back, and the
indexes must agree with the sessions. Which checks apply to which fault is
in docs/reliability.md.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.test import override_settings

from django_charon_sessions import calls, maintenance
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.exceptions import SessionStoreError
from tests.harness import RedisCluster, RedisServer, require_redis
from tests.load import LONG, FigureLog, Figures, Load

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TIMEOUT = 0.3
#: The longest a failing operation may take: up to two calls, each bounded by
#: the connect and socket timeouts, plus slack for a loaded two-core machine.
ERROR_BOUND = 2 * 2 * TIMEOUT + 1.5
#: Seconds of load before, during and after the fault.
BEFORE, DURING, AFTER = (5.0, 5.0, 10.0) if LONG else (0.6, 1.0, 1.0)
WORKERS = {"threads": 6, "tasks": 6, "max_sessions": 400} if LONG else {"threads": 3, "tasks": 3}

#: redis-py's asyncio connection can raise a bare TypeError when a
#: concurrent task closes the transport it is writing to (seen when a
#: server dies). The engine lets it through untranslated: reported as
#: a finding (docs/reliability.md), counted under its own name, not hidden.
KNOWN_ASYNC_TYPEERROR = "unexpected TypeError"

ALLOWED = ("RedisUnavailable", KNOWN_ASYNC_TYPEERROR)


@pytest.fixture(scope="module")
def figures(request, tmp_path_factory) -> Iterator[FigureLog]:
    log = FigureLog(tmp_path_factory.getbasetemp())
    yield log
    log.report(request.config)


def config(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "URL": url,
        "SOCKET_TIMEOUT": TIMEOUT,
        "SOCKET_CONNECT_TIMEOUT": TIMEOUT,
        **extra,
    }


@pytest.fixture
def make_server() -> Iterator[Callable[..., RedisServer]]:
    if not require_redis():
        pytest.skip("redis-server is not installed")
    servers: list[RedisServer] = []

    def make(*extra: str) -> RedisServer:
        server = RedisServer(*extra).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def run_scenario(
    name: str,
    backend: str,
    admin: Callable[[], Any],
    fault: Callable[[Load], None],
    figures: FigureLog,
) -> tuple[Figures, Load]:
    """Load, fault, load, stop, check; return the figures for more asserts."""
    f = Figures(name, backend)
    load = Load(f, **WORKERS).start()
    try:
        load.run_for(BEFORE)
        fault(load)
        load.run_for(AFTER)
    finally:
        load.stop()
    client = admin()
    try:
        load.check(client)
    finally:
        client.close()
    figures.add(f)
    return f, load


def standard_asserts(f: Figures, load: Load, *, errors_expected: bool = True) -> None:
    load.assert_errors(ALLOWED, ERROR_BOUND)
    assert f.errors[KNOWN_ASYNC_TYPEERROR] <= 3, f.problems[:5]
    load.assert_resumed(bound=5.0)
    f.assert_clean()
    if errors_expected:
        assert f.errors_during_fault > 0, f"the fault had no effect: {f.row()}"


# -- standalone server faults ---------------------------------------------------


def kill_and_restart(server: RedisServer, *, lossy: bool) -> Callable[[Load], None]:
    """A fault: kill -9 the server, wait, start it again (losing all unless persisted)."""

    def fault(load: Load) -> None:
        load.model.begin_fault(lossy=lossy)
        server.stop()
        time.sleep(DURING)
        server.start()
        load.model.end_fault()

    return fault


def test_kill_and_restart_without_persistence(make_server, figures):
    server = make_server()
    fault = kill_and_restart(server, lossy=True)  # everything stored so far goes
    with override_settings(CHARON_SESSIONS=config(server.url)):
        f, load = run_scenario(
            "kill -9, restart, no persistence", "redis", server.client, fault, figures
        )
    standard_asserts(f, load)
    assert f.lost_to_fault > 0  # the model saw the wipe


def test_kill_and_restart_with_aof(make_server, figures):
    server = make_server("--appendonly", "yes", "--appendfsync", "always")
    fault = kill_and_restart(server, lossy=False)
    with override_settings(CHARON_SESSIONS=config(server.url)):
        f, load = run_scenario(
            "kill -9, restart, AOF always", "redis", server.client, fault, figures
        )
    standard_asserts(f, load)
    assert f.lost_to_fault == 0


def test_function_flush(make_server, figures):
    server = make_server()
    flushes = 4

    def fault(load: Load) -> None:
        load.model.begin_fault()
        client = server.client()
        for _ in range(flushes):
            client.function_flush()
            time.sleep(DURING / flushes)
        client.close()
        load.model.end_fault()

    # What this scenario tests is the reload, not the timeouts: with the 0.3 s of
    # the other scenarios a stall of a loaded two-core CI machine alone failed
    # a call now and then (3 of ~2,000 in one CI run).
    settings = config(server.url, SOCKET_TIMEOUT=3.0, SOCKET_CONNECT_TIMEOUT=3.0)
    with override_settings(CHARON_SESSIONS=settings):
        f, load = run_scenario("FUNCTION FLUSH x4", "redis", server.client, fault, figures)
    # The library is reloaded and the call retried: no request notices.
    assert f.errors == {}, (f.error_samples, f.problems[:5])
    load.assert_resumed(bound=5.0)
    f.assert_clean()
    stats = server.client().info("commandstats")
    assert stats["cmdstat_function|load"]["calls"] >= flushes


def test_slow_server_beyond_the_socket_timeout(make_server, figures):
    server = make_server()

    def fault(load: Load) -> None:
        load.model.begin_fault()
        client = server.client()
        client.execute_command("DEBUG", "SLEEP", DURING)  # blocks this thread too
        client.close()
        load.model.end_fault()

    with override_settings(CHARON_SESSIONS=config(server.url)):
        f, load = run_scenario(
            "DEBUG SLEEP beyond SOCKET_TIMEOUT", "redis", server.client, fault, figures
        )
    standard_asserts(f, load)
    assert f.max_error_s >= TIMEOUT * 0.9  # they were timeouts, not refusals


def _maxmemory(server: RedisServer, policy: str, fraction: float) -> Callable[[Load], None]:
    def fault(load: Load) -> None:
        load.model.begin_fault(lossy=policy != "noeviction")
        client = server.client()
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory-policy", policy)
        client.config_set("maxmemory", str(int(used * fraction)))
        time.sleep(DURING)
        client.config_set("maxmemory", "0")
        client.close()
        load.model.end_fault()

    return fault


def test_maxmemory_noeviction(make_server, figures):
    server = make_server()
    with override_settings(CHARON_SESSIONS=config(server.url)):
        f, load = run_scenario(
            "maxmemory, noeviction",
            "redis",
            server.client,
            _maxmemory(server, "noeviction", 1.0),
            figures,
        )
    standard_asserts(f, load)
    assert f.lost_to_fault == 0
    # Reads and ends go on at maxmemory (allow-oom); only writes are refused.
    assert f.ops_during_fault > f.errors_during_fault


def test_maxmemory_volatile_lru(make_server, figures):
    server = make_server()
    with override_settings(CHARON_SESSIONS=config(server.url)):
        f, load = run_scenario(
            "maxmemory, volatile-lru",
            "redis",
            server.client,
            _maxmemory(server, "volatile-lru", 0.8),
            figures,
        )
    load.assert_errors(ALLOWED, ERROR_BOUND)
    load.assert_resumed(bound=5.0)
    f.assert_clean()
    assert int(server.client().info("stats")["evicted_keys"]) > 0


@pytest.fixture
def flush_once(make_server):
    """A server holding one signed-in session; calling the fixture's hook flushes its library once.

    Once: e.g. an operator, or a failover to a bare replica.
    """
    server = make_server()
    with override_settings(CHARON_SESSIONS=config(server.url)):
        session = SessionStore()
        session.update({"_auth_user_id": "7", "a": 1})
        session.save()
        admin = server.client()
        flushes: list[str] = []

        def flush() -> None:
            if not flushes:
                flushes.append("flushed")
                admin.function_flush()

        yield session, flush, flushes


def test_cleanup_survives_a_function_flush_between_load_and_sweep(flush_once, monkeypatch):
    """Forced interleaving: the library vanishes after cleanup loaded it.

    Invariant 10 says a missing library is reloaded and the call retried;
    cleanup pipelines its calls and so cannot use the engine's retry.
    """
    session, flush, flushes = flush_once
    real = calls.load_library

    def load_then_flush(client: Any) -> None:
        real(client)
        flush()

    monkeypatch.setattr(calls, "load_library", load_then_flush)
    report = maintenance.cleanup()
    monkeypatch.undo()
    assert flushes and report.live_sessions == 1
    assert dict(SessionStore(session.session_key).items()) == {"_auth_user_id": "7", "a": 1}


async def test_async_cleanup_survives_a_function_flush_between_load_and_sweep(
    flush_once, monkeypatch
):
    """The same interleaving for aclear_expired(), which sends cleanup's batches too."""
    session, flush, flushes = flush_once
    real = calls.aload_library

    async def load_then_flush(client: Any) -> None:
        await real(client)
        flush()

    monkeypatch.setattr(calls, "aload_library", load_then_flush)
    report = await maintenance.acleanup()
    monkeypatch.undo()
    assert flushes and report.live_sessions == 1
    assert dict(SessionStore(session.session_key).items()) == {"_auth_user_id": "7", "a": 1}


# -- Redis Cluster: a primary fails over to its replica ----------------------------


@pytest.fixture(scope="module")
def replicated_cluster() -> Iterator[tuple[RedisCluster, list[RedisServer]]]:
    """Three primaries; the second has a replica. Shared: a failover swaps the pair."""
    if not require_redis():
        pytest.skip("redis-server is not installed")
    cluster = RedisCluster()
    for node in cluster.nodes:
        node.extra += ["--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0"]
    replica = None
    try:
        cluster.start()
        replica = cluster.add_replica(primary=1)
        yield cluster, [cluster.nodes[1], replica]
    finally:
        if replica is not None:
            replica.close()
        cluster.close()


def primary_and_replica(pair: list[RedisServer]) -> tuple[RedisServer, RedisServer]:
    live = [n for n in pair if n.process is not None]
    if len(live) < 2:
        pytest.skip("the replicated pair lost a node in an earlier test")
    roles = {n.port: n.client(socket_timeout=2).info("replication")["role"] for n in live}
    primary = next(n for n in live if roles[n.port] == "master")
    return primary, next(n for n in live if n is not primary)


def _cluster_admin(cluster: RedisCluster) -> Callable[[], Any]:
    port = cluster.nodes[0].port  # never stopped
    return lambda: redis.cluster.RedisCluster(host="127.0.0.1", port=port)


def test_cluster_manual_failover(replicated_cluster, figures):
    cluster, pair = replicated_cluster
    _primary, replica = primary_and_replica(pair)

    def fault(load: Load) -> None:
        load.model.begin_fault()
        started = time.monotonic()
        replica.client().execute_command("CLUSTER", "FAILOVER")
        cluster.wait_promoted(replica)
        time.sleep(max(0.0, DURING - (time.monotonic() - started)))
        load.model.end_fault()

    with override_settings(CHARON_SESSIONS=config(cluster.url, CLUSTER=True)):
        f, load = run_scenario(
            "Cluster: CLUSTER FAILOVER", "cluster", _cluster_admin(cluster), fault, figures
        )
    # A graceful failover may pass unnoticed (MOVED is followed): no minimum of errors.
    standard_asserts(f, load, errors_expected=False)
    assert f.lost_to_fault == 0


def test_cluster_primary_killed_replica_promoted(replicated_cluster, figures):
    cluster, pair = replicated_cluster
    primary, replica = primary_and_replica(pair)

    def fault(load: Load) -> None:
        load.model.begin_fault()
        # Replication is asynchronous and the engine does not WAIT: a primary
        # killed with unreplicated writes loses them (see docs/reliability.md).
        # So the crash comes after the replica caught up, with writes paused.
        p = primary.client(socket_timeout=2)
        p.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
        offset = int(p.info("replication")["master_repl_offset"])
        r = replica.client(socket_timeout=2)
        deadline = time.monotonic() + 5
        while int(r.info("replication")["slave_repl_offset"]) < offset:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.01)
        primary.stop()
        cluster.wait_promoted(replica)
        r.close()
        load.model.end_fault()

    with override_settings(CHARON_SESSIONS=config(cluster.url, CLUSTER=True)):
        f, load = run_scenario(
            "Cluster: primary kill -9, replica promoted",
            "cluster",
            _cluster_admin(cluster),
            fault,
            figures,
        )
    # A topology refresh may add a round trip to a failing call.
    load.assert_errors(ALLOWED, ERROR_BOUND + 1.0)
    assert f.errors[KNOWN_ASYNC_TYPEERROR] <= 3, f.problems[:5]
    load.assert_resumed(bound=10.0)
    f.assert_clean()
    assert f.errors_during_fault > 0


def test_error_during_a_stall_comes_within_the_timeout(make_server):
    """One request, one stall: RedisUnavailable within the bound, then service."""
    server = make_server()
    with override_settings(CHARON_SESSIONS=config(server.url)):
        s = SessionStore()
        s["a"] = 1
        s.save()
        key = s.session_key
        blocker = threading.Thread(
            target=server.client().execute_command, args=("DEBUG", "SLEEP", 1.0)
        )
        blocker.start()
        time.sleep(0.1)
        s["b"] = 2
        started = time.monotonic()
        with pytest.raises(SessionStoreError) as info:
            s.save()
        assert type(info.value).__name__ == "RedisUnavailable"
        assert time.monotonic() - started < TIMEOUT + 0.5
        blocker.join()
        # The timed-out save may have been applied after the stall: a, and b or not.
        assert dict(SessionStore(key).items()) in ({"a": 1}, {"a": 1, "b": 2})
