"""Count the commands clients send to Redis while an action runs.

On real servers MONITOR lists every command each server receives; commands
run inside a function are marked as coming from Lua and are not round trips.
On fakeredis (no MONITOR) the commands written to the fake sockets are counted.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from django_charon_sessions.client import get_client


class Monitor:
    """Collect the commands clients send to one server until a marker arrives."""

    def __init__(self, client: redis.Redis, marker: str) -> None:
        self.client = client
        self.marker = marker
        self.commands: list[str] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.client.monitor() as monitor:
            self.ready.set()
            for entry in monitor.listen():
                command = entry["command"]
                if self.marker in command:
                    return
                if entry.get("client_type") != "lua":
                    self.commands.append(command)


def _node_clients(backend) -> list[redis.Redis]:
    if backend.name == "cluster":
        return [n.redis_connection for n in backend.admin.get_primaries()]
    return [backend.admin]


@contextmanager
def monitored(backend) -> Iterator[list[str]]:
    marker = f"end-of-monitor-{uuid.uuid4().hex}"
    senders = [
        redis.Redis(
            host=c.connection_pool.connection_kwargs["host"],
            port=c.connection_pool.connection_kwargs["port"],
        )
        for c in _node_clients(backend)
    ]
    for sender in senders:
        sender.ping()  # connect (and say HELLO) before monitoring starts
    monitors = [Monitor(c, marker) for c in _node_clients(backend)]
    for m in monitors:
        m.thread.start()
        m.ready.wait(5)
    commands: list[str] = []
    yield commands
    for sender in senders:
        sender.echo(marker)
        sender.close()
    for m in monitors:
        m.thread.join(10)
        commands += m.commands


def count(backend: Any, action: Callable[[], object]) -> list[str]:
    """Return the names of the commands sent while ``action`` runs."""
    if backend.name == "fake":
        return _count_on_client(action)
    with monitored(backend) as commands:
        action()
    return [c.split()[0].upper() for c in commands]


def _count_on_client(action: Callable[[], object]) -> list[str]:
    """Count what the engine's client writes to its (fake) sockets."""
    connection_class = get_client().connection_pool.connection_class
    sent: list[str] = []
    original = connection_class.send_packed_command

    def counting(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        packed = b"".join(command) if isinstance(command, list) else bytes(command)
        # One RESP array per command: *N, then $len and the verb.
        for chunk in packed.split(b"\r\n*")[0:]:
            parts = chunk.split(b"\r\n")
            sent.append(parts[2].decode().upper())
        return original(self, command, *args, **kwargs)

    connection_class.send_packed_command = counting  # type: ignore[method-assign]
    try:
        action()
    finally:
        connection_class.send_packed_command = original  # type: ignore[method-assign]
    return sent
