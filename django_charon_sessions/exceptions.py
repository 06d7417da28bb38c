"""The exceptions this app raises."""

from __future__ import annotations


class SessionStoreError(Exception):
    """Redis answered, but not in a way the session store can work with.

    The message says what Redis replied and what to change (for example an
    ACL that lacks a permission). The Redis exception is the ``__cause__``.
    """


class RedisUnavailable(SessionStoreError):  # noqa: N818 - reads as a state
    """Redis could not be reached or did not answer in time.

    Raised for refused or dropped connections, timeouts (``SOCKET_TIMEOUT``
    and ``SOCKET_CONNECT_TIMEOUT``), a Cluster without a primary for the
    slot, a server that is still loading its data set or out of memory. The
    request fails; nothing was half-written, and a failed load never turns
    into a save. The Redis exception is the ``__cause__``. Once a session's
    load raised it, every later use of that session object (the rest of the
    request) raises it again at once, without another connection attempt.
    """


class SaveConflict(SessionStoreError):  # noqa: N818 - reads as what happened
    """Other requests kept saving the same session while this one tried to.

    Each save carries the version of the record it loaded; when another
    request saved first, Redis returns the newer record and the engine
    re-applies this request's own changes to it. After a few attempts in a
    row it gives up and raises this: the request fails and its changes to the
    session were not saved (the other requests' changes are kept). Django's
    ``SessionMiddleware`` does not catch it, so the response is a 500.
    """
