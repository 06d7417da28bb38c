"""A load driver and a model checker for the reliability tests (issue 7).

``Load`` runs sync workers (threads, the sync client) and async workers
(tasks on one event loop in a thread of its own, the ``redis.asyncio``
client), plus a cleanup thread, against whatever ``CHARON_SESSIONS`` points
at. Every worker creates, reads, modifies (its own session key only), cycles
(a login of an anonymous session, a password change of a signed-in one) and
ends sessions (one, or all of a user), all at once, for a bounded time.

``Model`` keeps what the workers were told:

- an acknowledged write (the call returned) must be in the session
  afterwards, for as long as the session lives;
- a write that raised may or may not have been applied: either is accepted;
- a session whose end was acknowledged, or that was seen gone, stays dead:
  no read that starts later finds it, and no save that starts later succeeds;
- every live signed-in session is listed in its user's index, and after
  cleanup no index entry lacks its session hash;
- every stored field verifies (no half-written or foreign data).

A fault that legitimately loses data (a restart without persistence, an
eviction) marks the sessions it may touch ``lossy``: they may vanish, whole,
and are then counted as ``lost_to_fault``, never as lost updates.

Raw session keys never leave this module: failures name sessions by a short
hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted

from django_charon_sessions import api
from django_charon_sessions.codec import BadRecordError
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.exceptions import SessionStoreError
from django_charon_sessions.keyspace import (
    TAG_LENGTH,
    UserKeys,
    index_pattern,
    member_of,
    member_of_record,
    record_pattern,
)
from django_charon_sessions.maintenance import cleanup
from django_charon_sessions.state import context

if TYPE_CHECKING:
    from collections.abc import Callable

#: Long run: ``CHARON_LONG=1`` makes every scenario run longer and harder.
LONG = os.environ.get("CHARON_LONG") == "1"

#: User ids with separators, braces, glob characters, spaces and unicode.
USERS = ("1", "42", "a:b", "{x}", "}{", "ü-7", "p|q", "🙂", "sp ace", "*?[", "x\\y", "0")

AUTH = "_auth_user_id"
ALIVE, UNKNOWN, ENDED, GONE = "alive", "unknown", "ended", "gone"

clock = time.monotonic


def short(key: str) -> str:
    """Name a session in a failure message without its key."""
    return member_of(key)[:8]


@dataclass
class Rec:
    """What the model knows of one session."""

    key: str
    user: str | None
    born: float  # start of the call that created it
    acked: float  # when that call returned
    state: str = ALIVE
    ended_at: float = 0.0  # when it was known dead (ENDED or GONE)
    lossy: bool = False
    #: worker key -> (value, when acknowledged)
    values: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: worker key -> highest value ever sent (acknowledged or not)
    tried: dict[str, int] = field(default_factory=dict)
    #: (op, worker, start, end, outcome) of every call on it, for failure messages
    log: list[tuple[str, str, float, float, str]] = field(default_factory=list)

    def dead(self, when: float) -> None:
        if self.state not in (ENDED, GONE):
            self.state, self.ended_at = ENDED, when


@dataclass
class Plan:
    op: str
    worker: str
    rec: Rec | None = None
    user: str | None = None
    value: int = 0
    prior: str = ALIVE
    save_started: float = 0.0
    affected: list[Rec] = field(default_factory=list)


@dataclass
class Figures:
    """The counters of one scenario, as reported in docs/reliability.md."""

    scenario: str
    backend: str = ""
    seconds: float = 0.0
    ops: int = 0
    ok: int = 0
    ops_during_fault: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    errors_during_fault: int = 0
    conflicts: int = 0  # UpdateError / SessionInterrupted: races the engine refused
    max_error_s: float = 0.0
    cleanup_runs: int = 0
    cleanup_errors: Counter[str] = field(default_factory=Counter)
    resume_s: float | None = None
    lost_updates: int = 0
    resurrected: int = 0
    index_inconsistencies: int = 0
    half_written: int = 0
    lost_to_fault: int = 0
    sessions: int = 0
    problems: list[str] = field(default_factory=list)
    #: The first few documented errors' messages, for a failing assertion to show.
    error_samples: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("problems", "error_samples")}
        out["errors"] = dict(self.errors)
        out["cleanup_errors"] = dict(self.cleanup_errors)
        out["problems"] = self.problems[:TAG_LENGTH]
        return out

    def assert_clean(self) -> None:
        """The three figures the issue wants at zero, plus no garbage."""
        summary = (
            f"{self.scenario}: lost={self.lost_updates} resurrected={self.resurrected} "
            f"index={self.index_inconsistencies} half={self.half_written}; {self.problems[:10]}"
        )
        assert self.lost_updates == 0, summary
        assert self.resurrected == 0, summary
        assert self.index_inconsistencies == 0, summary
        assert self.half_written == 0, summary


class Model:
    """The expected state of every session the workers touched."""

    def __init__(self, figures: Figures, max_sessions: int) -> None:
        self.lock = threading.Lock()
        self.f = figures
        self.recs: list[Rec] = []
        self.active: list[Rec] = []
        self.by_user: dict[str | None, list[Rec]] = {}
        self.end_alls: dict[str, list[tuple[float, float]]] = {}
        #: users with an end of all sessions in flight: any of their sessions may die
        self.ending: Counter[str] = Counter()
        self.max_sessions = max_sessions
        self.fault_started: float | None = None
        self.fault_cleared: float | None = None
        self.lossy_active = False
        self.lossy_before = 0.0
        self.resumed: set[str] = set()

    # -- faults -----------------------------------------------------------

    def begin_fault(self, lossy: bool = False) -> None:
        with self.lock:
            self.fault_started = clock()
            if lossy:
                self.lossy_active = True
                for r in self.recs:
                    r.lossy = True

    def end_fault(self) -> None:
        with self.lock:
            now = clock()
            self.fault_cleared = now
            if self.lossy_active:
                self.lossy_active = False
                self.lossy_before = now
                for r in self.recs:
                    r.lossy = True

    def in_fault(self, t0: float) -> bool:
        return self.fault_started is not None and (
            t0 >= self.fault_started and (self.fault_cleared is None or t0 < self.fault_cleared)
        )

    # -- bookkeeping --------------------------------------------------------

    def problem(self, text: str) -> None:
        self.f.problems.append(text)

    def register(self, rec: Rec) -> None:
        rec.lossy = self.lossy_active or rec.born < self.lossy_before
        rec.log.append(("born", "", round(rec.born, 4), round(rec.acked, 4), str(rec.user)))
        if rec.user is not None:
            if self.ending[rec.user]:
                rec.state = UNKNOWN
            for _start, end in self.end_alls.get(rec.user, []):
                if end > rec.born:  # an end of all overlapped its creation
                    rec.state = UNKNOWN
        self.recs.append(rec)
        self.active.append(rec)
        self.by_user.setdefault(rec.user, []).append(rec)

    def pick(self) -> Rec | None:
        for _ in range(4):
            if not self.active:
                return None
            i = random.randrange(len(self.active))
            r = self.active[i]
            if r.state in (ALIVE, UNKNOWN):
                return r
            self.active[i] = self.active[-1]
            self.active.pop()
        return None

    def pick_any(self) -> Rec | None:
        return random.choice(self.recs) if self.recs else None

    def gone(self, rec: Rec, t1: float, where: str) -> None:
        """A call found the session dead (empty load, UpdateError)."""
        if rec.state == ALIVE:
            if rec.lossy:
                self.f.lost_to_fault += 1
            else:
                self.f.lost_updates += 1
                self.problem(f"{where}: live session {short(rec.key)} found gone: {rec.log}")
        if rec.state not in (ENDED, GONE):
            rec.state, rec.ended_at = GONE, t1

    def check_data(self, rec: Rec, prior: str, data: dict[str, Any], t0: float, where: str) -> None:
        """Check what a load that started at ``t0`` returned."""
        if not data:
            return
        if rec.state in (ENDED, GONE) and t0 > rec.ended_at:
            self.f.resurrected += 1
            self.problem(f"{where}: dead session {short(rec.key)} read back")
            return
        for wk, value in data.items():
            if wk.startswith("w") and isinstance(value, int) and value > rec.tried.get(wk, -1):
                self.f.half_written += 1
                self.problem(f"{where}: {short(rec.key)}[{wk}]={value} never written")
        if data.get(AUTH) != rec.user:
            self.f.half_written += 1
            self.problem(f"{where}: {short(rec.key)} has user {data.get(AUTH)!r}")
        if prior != ALIVE:
            return
        for wk, (value, acked) in rec.values.items():
            seen = data.get(wk)
            if acked < t0 and (seen is None or seen < value):
                self.f.lost_updates += 1
                self.problem(f"{where}: {short(rec.key)}[{wk}] is {seen}, acknowledged {value}")

    # -- ops: plan (before the calls) and done (after) ------------------------

    def plan(self, worker: str, counter: int) -> Plan:
        with self.lock:
            roll = random.random()
            live = len(self.active)
            # Keep a population of live sessions: creations outnumber ends.
            if live < 20 or (roll < 0.15 and live < self.max_sessions):
                user = random.choice(USERS) if random.random() < 0.6 else None
                return Plan("create", worker, user=user, value=counter)
            if roll < 0.30:
                rec = self.pick_any()
                if rec is not None:
                    return Plan("read", worker, rec=rec, prior=rec.state)
            rec = self.pick()
            if rec is None:
                return Plan("create", worker, user=None, value=counter)
            if roll < 0.86:
                rec.tried[worker] = max(rec.tried.get(worker, -1), counter)
                return Plan("modify", worker, rec=rec, value=counter, prior=rec.state)
            prior = rec.state
            if roll < 0.92:
                rec.state = UNKNOWN
                user = rec.user if rec.user is not None else random.choice(USERS)
                return Plan("cycle", worker, rec=rec, user=user, prior=prior)
            if roll < 0.985 or rec.user is None:
                rec.state = UNKNOWN
                return Plan("end_one", worker, rec=rec, user=rec.user, prior=prior)
            user = rec.user
            affected = [r for r in self.by_user.get(user, []) if r.state in (ALIVE, UNKNOWN)]
            for r in affected:
                r.state = UNKNOWN
            self.ending[user] += 1
            return Plan("end_all", worker, user=user, affected=affected)

    def done(self, p: Plan, t0: float, t1: float, result: Any, exc: BaseException | None) -> None:
        with self.lock:
            f = self.f
            f.ops += 1
            if p.op == "end_all":
                self.ending[p.user] -= 1
            during = self.in_fault(t0)
            f.ops_during_fault += during
            for r in [p.rec] if p.rec is not None else p.affected:
                outcome = type(exc).__name__ if exc is not None else "ok"
                r.log.append((p.op, p.worker, round(t0, 4), round(t1, 4), outcome))
            if exc is not None:
                self._failed(p, t0, t1, exc, during)
                return
            f.ok += 1
            if self.fault_cleared is not None and t0 >= self.fault_cleared:
                self.resumed.add(p.worker)
                if f.resume_s is None:
                    f.resume_s = round(t1 - self.fault_cleared, 3)
            getattr(self, "_ok_" + p.op)(p, t0, t1, result)

    def _failed(self, p: Plan, t0: float, t1: float, exc: BaseException, during: bool) -> None:
        f = self.f
        if isinstance(exc, (UpdateError, SessionInterrupted)):
            f.conflicts += 1
            if p.rec is not None:
                # The engine found the session dead: it must stay so.
                self.gone(p.rec, t1, p.op)
            return
        name = type(exc).__name__
        if not isinstance(exc, SessionStoreError):
            name = "unexpected " + name
            trace = "".join(traceback.format_exception(exc)[-6:])
            self.problem(f"{p.op}: {name}: {str(exc)[:200]}\n{trace}")
        elif len(f.error_samples) < 5:
            f.error_samples.append(f"{p.op} after {t1 - t0:.3f}s: {str(exc)[:300]}")
        f.errors[name] += 1
        f.errors_during_fault += during
        f.max_error_s = max(f.max_error_s, round(t1 - t0, 3))
        if p.op == "end_all" and p.user is not None:
            self.end_alls.setdefault(p.user, []).append((t0, t1))
            for r in self.by_user.get(p.user, []):
                if r.state == ALIVE:
                    r.state = UNKNOWN

    def _ok_create(self, p: Plan, t0: float, t1: float, key: str) -> None:
        rec = Rec(key, p.user, t0, t1, values={p.worker: (p.value, t1)}, tried={p.worker: p.value})
        self.register(rec)

    def _ok_read(self, p: Plan, t0: float, t1: float, data: dict[str, Any]) -> None:
        assert p.rec is not None
        self.check_data(p.rec, p.prior, data, t0, "read")
        if not data:
            self.gone(p.rec, t1, "read")

    def _ok_modify(self, p: Plan, t0: float, t1: float, result: Any) -> None:
        rec = p.rec
        assert rec is not None
        data, saved = result
        self.check_data(rec, p.prior, data, t0, "modify")
        if not saved:
            self.gone(rec, t1, "modify")
            return
        if rec.state in (ENDED, GONE) and p.save_started > rec.ended_at:
            self.f.resurrected += 1
            self.problem(f"modify: save of dead session {short(rec.key)} succeeded")
            return
        old = rec.values.get(p.worker)
        if old is None or old[0] < p.value:
            rec.values[p.worker] = (p.value, t1)

    def _ok_cycle(self, p: Plan, t0: float, t1: float, result: Any) -> None:
        rec = p.rec
        assert rec is not None
        data, new_key, carried = result
        self.check_data(rec, p.prior, data, t0, "cycle")
        if new_key is None:
            self.gone(rec, t1, "cycle")
            return
        rec.dead(t1)
        # What the new key holds, as the engine acknowledged it: a save that
        # raced the cycle is carried over (the cycle re-applies onto the newer
        # record), and an anonymous session ended during the login is not
        # (its data must not be written back), so it may differ from `data`.
        values = {k: (v, t1) for k, v in carried.items() if k.startswith("w")}
        tried = dict(rec.tried)
        for k, v in carried.items():
            if k.startswith("w") and isinstance(v, int):
                tried[k] = max(v, tried.get(k, -1))
        self.register(Rec(new_key, p.user, t0, t1, values=values, tried=tried))

    def _ok_end_one(self, p: Plan, t0: float, t1: float, result: Any) -> None:
        assert p.rec is not None
        p.rec.dead(t1)

    def _ok_end_all(self, p: Plan, t0: float, t1: float, result: Any) -> None:
        assert p.user is not None
        self.end_alls.setdefault(p.user, []).append((t0, t1))
        for r in self.by_user.get(p.user, []):
            if r.acked < t0:
                r.dead(t1)
            elif r.state == ALIVE:
                r.state = UNKNOWN  # created while the end ran: either outcome


# -- the calls, sync and async ------------------------------------------------


def _create(p: Plan) -> str:
    s = SessionStore()
    s[p.worker] = p.value
    if p.user is not None:
        s[AUTH] = p.user
    s.save()
    assert s.session_key is not None
    return s.session_key


async def _acreate(p: Plan) -> str:
    s = SessionStore()
    await s.aset(p.worker, p.value)
    if p.user is not None:
        await s.aset(AUTH, p.user)
    await s.asave()
    assert s.session_key is not None
    return s.session_key


def _read(p: Plan) -> dict[str, Any]:
    assert p.rec is not None
    return dict(SessionStore(p.rec.key).items())


async def _aread(p: Plan) -> dict[str, Any]:
    assert p.rec is not None
    return dict(await SessionStore(p.rec.key).aitems())


def _modify(p: Plan) -> tuple[dict[str, Any], bool]:
    assert p.rec is not None
    s = SessionStore(p.rec.key)
    data = dict(s.items())
    if s.session_key is None:
        return data, False
    s[p.worker] = p.value
    p.save_started = clock()
    s.save()
    return data, True


async def _amodify(p: Plan) -> tuple[dict[str, Any], bool]:
    assert p.rec is not None
    s = SessionStore(p.rec.key)
    data = dict(await s.aitems())
    if s.session_key is None:
        return data, False
    await s.aset(p.worker, p.value)
    p.save_started = clock()
    await s.asave()
    return data, True


def _cycle(p: Plan) -> tuple[dict[str, Any], str | None]:
    assert p.rec is not None
    s = SessionStore(p.rec.key)
    data = dict(s.items())
    if s.session_key is None:
        return data, None, {}
    s.cycle_key()
    s[AUTH] = p.user  # a login; for a signed-in session a no-op (password change)
    s.save()
    return data, s.session_key, dict(s.items())


async def _acycle(p: Plan) -> tuple[dict[str, Any], str | None]:
    assert p.rec is not None
    s = SessionStore(p.rec.key)
    data = dict(await s.aitems())
    if s.session_key is None:
        return data, None, {}
    await s.acycle_key()
    await s.aset(AUTH, p.user)
    await s.asave()
    return data, s.session_key, dict(await s.aitems())


def _end_one(p: Plan) -> object:
    assert p.rec is not None
    if p.rec.user is None:
        return SessionStore().delete(p.rec.key)
    return api.end_session(p.rec.user, member_of(p.rec.key))


async def _aend_one(p: Plan) -> object:
    assert p.rec is not None
    if p.rec.user is None:
        return await SessionStore().adelete(p.rec.key)
    return await api.aend_session(p.rec.user, member_of(p.rec.key))


def _end_all(p: Plan) -> int:
    return api.end_sessions(p.user)


async def _aend_all(p: Plan) -> int:
    return await api.aend_sessions(p.user)


SYNC: dict[str, Callable[[Plan], Any]] = {
    "create": _create,
    "read": _read,
    "modify": _modify,
    "cycle": _cycle,
    "end_one": _end_one,
    "end_all": _end_all,
}
ASYNC: dict[str, Callable[[Plan], Any]] = {
    "create": _acreate,
    "read": _aread,
    "modify": _amodify,
    "cycle": _acycle,
    "end_one": _aend_one,
    "end_all": _aend_all,
}


class Load:
    """Run the workers until ``stop()``; then ``check()`` the model."""

    def __init__(
        self,
        figures: Figures,
        *,
        threads: int = 4,
        tasks: int = 4,
        max_sessions: int = 150,
        cleanup_every: float = 0.4,
        pause_after_error: float = 0.02,
    ) -> None:
        self.f = figures
        self.model = Model(figures, max_sessions)
        self.threads = threads
        self.tasks = tasks
        self.cleanup_every = cleanup_every
        self.pause = pause_after_error
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self.crashed: list[BaseException] = []

    @property
    def workers(self) -> list[str]:
        return [f"ws{n}" for n in range(self.threads)] + [f"wa{n}" for n in range(self.tasks)]

    def start(self) -> Load:
        self._started = clock()
        for n in range(self.threads):
            self._spawn(self._sync_worker, f"ws{n}")
        if self.tasks:
            self._spawn(self._async_main)
        if self.cleanup_every:
            self._spawn(self._cleaner)
        return self

    def _spawn(self, target: Callable[..., Any], *args: Any) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except BaseException as exc:  # a bug in the driver itself
                self.crashed.append(exc)

        t = threading.Thread(target=guarded, daemon=True)
        t.start()
        self._threads.append(t)

    def _sync_worker(self, name: str) -> None:
        counter = 0
        while not self._stop.is_set():
            counter += 1
            p = self.model.plan(name, counter)
            t0 = clock()
            try:
                result, exc = SYNC[p.op](p), None
            except Exception as e:
                result, exc = None, e
            self.model.done(p, t0, clock(), result, exc)
            if exc is not None and not isinstance(exc, (UpdateError, SessionInterrupted)):
                time.sleep(self.pause)

    async def _async_worker(self, name: str) -> None:
        counter = 0
        while not self._stop.is_set():
            counter += 1
            p = self.model.plan(name, counter)
            t0 = clock()
            try:
                result, exc = await ASYNC[p.op](p), None
            except Exception as e:
                result, exc = None, e
            self.model.done(p, t0, clock(), result, exc)
            if exc is not None and not isinstance(exc, (UpdateError, SessionInterrupted)):
                await asyncio.sleep(self.pause)
            else:
                await asyncio.sleep(0)

    def _async_main(self) -> None:
        async def main() -> None:
            from django_charon_sessions.client import get_async_client

            await asyncio.gather(*(self._async_worker(f"wa{n}") for n in range(self.tasks)))
            client: Any = get_async_client()
            with contextlib.suppress(Exception):
                await client.aclose()

        asyncio.run(main())

    def _cleaner(self) -> None:
        while not self._stop.wait(self.cleanup_every):
            try:
                cleanup()
                self.f.cleanup_runs += 1
            except Exception as exc:
                self.f.cleanup_errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self.f.seconds = round(clock() - self._started, 2)
        assert not [t for t in self._threads if t.is_alive()], "a worker hung"
        assert not self.crashed, self.crashed

    # -- afterwards -----------------------------------------------------------

    def check(self, admin: Any, prefix: str = "charon", settle: float = 15.0) -> Figures:
        """Clean up, then check every session of the model and every index."""
        f, model = self.f, self.model
        deadline = clock() + settle
        while True:
            try:
                cleanup()
                break
            except SessionStoreError:
                if clock() > deadline:
                    raise
                time.sleep(0.2)
        listed: dict[str, set[str]] = {}
        for user in USERS:
            listed[user] = {s.id for s in api.list_sessions(user)}
        f.sessions = len(model.recs)
        for rec in model.recs:
            store = SessionStore(rec.key)
            alive = store.exists(rec.key)
            data = dict(store.items())
            if rec.state in (ENDED, GONE):
                if alive or data:
                    f.resurrected += 1
                    model.problem(f"final: dead session {short(rec.key)} is alive")
                continue
            if not data:
                if rec.state == ALIVE:
                    model.gone(rec, clock(), "final")
                continue
            model.check_data(rec, rec.state, data, clock(), "final")
            if rec.user is not None and member_of(rec.key) not in listed[rec.user]:
                f.index_inconsistencies += 1
                model.problem(f"final: live session {short(rec.key)} not in its user's index")
        self._check_raw(admin, prefix)
        return f

    def _check_raw(self, admin: Any, prefix: str) -> None:
        f, codec = self.f, context().codec
        for raw in admin.scan_iter(match=index_pattern(prefix), count=1000):
            index = raw.decode()
            for member in admin.zrange(index, 0, -1):
                if not admin.exists(UserKeys.for_index(index).record(member.decode())):
                    f.index_inconsistencies += 1
                    self.model.problem(f"raw: index entry {member[:8]!r} without a session")
        for raw in admin.scan_iter(match=record_pattern(prefix), count=1000):
            name = raw.decode()
            value = admin.get(name)
            if value is None:
                continue  # expired or evicted meanwhile
            try:
                codec.open(member_of_record(name), value)
            except BadRecordError:
                f.half_written += 1
                self.model.problem(f"raw: session {member_of_record(name)[:8]} fails verification")

    def assert_resumed(self, bound: float) -> None:
        f, model = self.f, self.model
        assert f.resume_s is not None and f.resume_s < bound, f"did not resume: {f.row()}"
        missing = set(self.workers) - model.resumed
        assert not missing, f"workers without a success after the fault: {sorted(missing)}"

    def assert_errors(self, allowed: tuple[str, ...], bound: float) -> None:
        f = self.f
        unexpected = {k: v for k, v in f.errors.items() if k not in allowed}
        assert not unexpected, f"errors of other types: {unexpected}; {f.problems[:5]}"
        assert f.max_error_s <= bound, f"an error took {f.max_error_s}s (bound {bound}s)"


def table(rows: list[dict[str, Any]]) -> str:
    """Render figures as the Markdown table of docs/reliability.md."""
    head = (
        "| scenario | backend | s | ops | during fault | errors (type: n) | max error s | "
        "resume s | lost updates | resurrected | index inconsistencies | half-written | "
        "lost to fault (allowed) |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "0"
        if r.get("cleanup_errors"):
            errors += "; cleanup " + ", ".join(f"{k}: {v}" for k, v in r["cleanup_errors"].items())
        lines.append(
            f"| {r['scenario']} | {r['backend']} | {r['seconds']} | {r['ops']} | "
            f"{r['ops_during_fault']} | {errors} | {r['max_error_s']} | {r['resume_s']} | "
            f"{r['lost_updates']} | {r['resurrected']} | {r['index_inconsistencies']} | "
            f"{r['half_written']} | {r['lost_to_fault']} |"
        )
    return "\n".join(lines)


class FigureLog:
    """Collects the rows of one test module; prints them and writes JSON lines.

    The rows go to ``<pytest basetemp>/reliability-figures.jsonl`` and, when
    ``CHARON_FIGURES`` names a file, to that file too.
    """

    def __init__(self, directory: Any) -> None:
        self.rows: list[dict[str, Any]] = []
        self.paths = [directory / "reliability-figures.jsonl"]
        if os.environ.get("CHARON_FIGURES"):
            self.paths.append(os.environ["CHARON_FIGURES"])

    def add(self, figures: Figures) -> None:
        row = figures.row()
        row["long"] = LONG
        self.rows.append(row)
        for path in self.paths:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")

    def report(self, config: Any) -> None:
        if not self.rows:
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line(table(self.rows))
