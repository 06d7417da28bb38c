"""Load without faults: many threads and asyncio tasks, one model (issue 7, point 1).

Sync workers (threads) and async workers (tasks on their own event loop)
create, read, modify (each its own key), cycle, end one and end all sessions
of a set of users, while cleanup runs, for a bounded time. Afterwards every
session is checked against the model kept by :mod:`tests.load`. The long run
(``CHARON_LONG=1``) runs the ``slow`` test for a minute per backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import Keys
from tests.load import ALIVE, ENDED, LONG, FigureLog, Figures, Load

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.backends("redis", "cluster")


@pytest.fixture(scope="module")
def figures(request, tmp_path_factory) -> Iterator[FigureLog]:
    log = FigureLog(tmp_path_factory.getbasetemp())
    yield log
    log.report(request.config)


def run_load(backend, figures: FigureLog, seconds: float, **kwargs) -> Figures:
    f = Figures("load, no fault", backend.name)
    load = Load(f, **kwargs).start()
    load.run_for(seconds)
    load.stop()
    load.check(backend.admin)
    figures.add(f)
    return f


def test_load_loses_nothing_and_resurrects_nothing(backend, figures):
    f = run_load(backend, figures, 2.5)
    f.assert_clean()
    assert f.errors == {}, f.problems[:5]
    assert f.cleanup_errors == {}
    # The run did what it claims: every kind of operation, many times.
    assert f.ok > 300
    assert f.conflicts > 0 or f.ok > 0
    assert f.sessions > 50


@pytest.mark.slow
def test_long_load(backend, figures):
    f = run_load(backend, figures, 60 if LONG else 5, threads=8, tasks=8, max_sessions=600)
    f.assert_clean()
    assert f.errors == {}, f.problems[:5]
    assert f.cleanup_errors == {}


@pytest.mark.backends("redis", "cluster")
def test_the_checker_finds_damage(backend):
    """The model check can fail: damage a finished run by hand and count it."""
    f = Figures("checker self-test", backend.name)
    load = Load(f, threads=2, tasks=2, cleanup_every=0).start()
    load.run_for(0.7)
    load.stop()
    model = load.model
    alive = [r for r in model.recs if r.state == ALIVE and r.values]
    anon = next(r for r in alive if r.user is None)
    auth = next(r for r in alive if r.user is not None)
    # 1. a lost update: acknowledged keys disappear (a save the model never sent)
    damage = SessionStore(anon.key)
    for name in anon.values:
        del damage[name]
    damage.save()
    # 2. a resurrection: the model was told a live session had ended
    other = next(r for r in alive if r not in (anon, auth))
    other.state, other.ended_at = ENDED, 0.0
    # 3. an index inconsistency: a live signed-in session leaves its index
    k = Keys.for_session("charon", auth.key)
    backend.admin.zrem(k.index, k.member)
    load.check(backend.admin)
    assert f.lost_updates >= 2  # the emptied field, and the unindexed (now dead) session
    assert f.resurrected == 1
    # 4. an index entry without its session, planted after cleanup
    backend.admin.zadd(k.index, {"a" * 26: 2**41})
    load._check_raw(backend.admin, "charon")
    assert f.index_inconsistencies == 1
