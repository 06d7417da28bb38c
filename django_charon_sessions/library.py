"""The Redis function library: its versioned source, names, and where it is loaded.

The library's name and each function's name carry a hash of the Lua source,
so a new release never calls an old library by mistake. The app loads it on
first use (:func:`.calls.load_library`, also when Redis lost it); with
``LOAD_FUNCTIONS`` off an operator loads it ahead of time::

    python -m django_charon_sessions.library > charon.lua
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import SyncClient

_TEMPLATE = resources.files(__package__).joinpath("lua/charon.lua").read_text("utf-8")

#: A hash of the Lua source: part of the library's and functions' names.
VERSION = hashlib.sha256(_TEMPLATE.encode("utf-8")).hexdigest()[:12]
#: The library's name in ``FUNCTION LIST``.
LIBRARY = f"charon_{VERSION}"
#: The source as sent with ``FUNCTION LOAD``.
SOURCE = _TEMPLATE.replace("__VERSION__", VERSION)


def function_name(short: str) -> str:
    """Return the full name of library function ``short`` (e.g. "load")."""
    return f"{LIBRARY}_{short}"


#: The commands the library's functions run; the app's Redis user needs them too
#: (Redis checks them against the caller's ACL). Read from the source itself.
FUNCTION_COMMANDS = tuple(
    sorted(set(re.findall(r"(?:redis\.p?call|call_chunked)\('([A-Z]+)'", SOURCE)))
)


def server_name(client: SyncClient) -> str:
    """Return the address of a standalone server as people write it: ``host:port``."""
    pool = getattr(client, "connection_pool", None)
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", None) or {}
    if kwargs.get("path"):
        return str(kwargs["path"])
    host = str(kwargs.get("host", "localhost"))
    port = kwargs.get("port", 6379)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def libraries_per_node(client: SyncClient) -> dict[str, set[str]]:
    """Return the names of the function libraries loaded on each server.

    Servers are named by address: ``host:port`` (a socket's path), each
    primary of a Cluster by its own.
    """
    listing: Any = client.function_list()
    per_node = listing if isinstance(listing, dict) else {server_name(client): listing}
    out: dict[str, set[str]] = {}
    for node, entries in per_node.items():
        names = set()
        for entry in entries or []:
            pairs = dict(zip(entry[::2], entry[1::2], strict=False))
            name = pairs.get(b"library_name", pairs.get("library_name"))
            if name is not None:
                names.add(name.decode() if isinstance(name, bytes) else str(name))
        out[str(node)] = names
    return out


if __name__ == "__main__":  # pragma: no cover - an operator's helper
    print(SOURCE)
