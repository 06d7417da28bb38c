"""A site's own tests in parallel against one Redis (issue 12).

Each worker of a parallel test run has its own database, where user ids
start from 1 again; sharing one Redis, the workers would share per-user
indexes and end each other's sessions. Each worker gets its own KEY_PREFIX.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import utils

from django_charon_sessions import api
from django_charon_sessions.conf import charon_settings, parallel_test_worker
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.testing import clear_sessions

ROOT = Path(__file__).resolve().parent.parent


def prefixes(backend) -> set[str]:
    """Return the prefixes of the keys in Redis: "charon:gw0" of "charon:gw0:{tag}i"."""
    names = backend.keys()
    return {k.decode().split(":{")[0] for k in names}


def test_no_worker_no_suffix(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert parallel_test_worker() == ""
    assert charon_settings.KEY_PREFIX == "charon"


def test_xdist_and_django_workers_get_their_own_prefix(monkeypatch):
    import django.test.runner

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert charon_settings.KEY_PREFIX == "charon:gw3"
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.setattr(django.test.runner, "_worker_id", 2)
    assert charon_settings.KEY_PREFIX == "charon:w2"


@pytest.mark.django_db
def test_worker_keys_and_clearing_stay_apart(backend, monkeypatch, django_user_model):
    user = django_user_model.objects.create_user("ada")

    def sign_in() -> None:
        with backend.settings():  # a fresh engine context, under the worker's prefix
            s = SessionStore()
            s["_auth_user_id"] = str(user.pk)
            s.save()

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    sign_in()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    sign_in()
    sign_in()
    assert len(api.list_sessions(user)) == 2  # gw1's own
    assert prefixes(backend) == {"charon:gw0", "charon:gw1"}
    assert clear_sessions() > 0
    assert api.list_sessions(user) == []
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert len(api.list_sessions(user)) == 1  # untouched by gw1's clearing
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert clear_sessions() == 0  # "charon:{*" does not reach the workers' keys
    assert prefixes(backend) == {"charon:gw0"}


SETTINGS = """
import os

SECRET_KEY = "parallel-tests-not-secret"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django_charon_sessions",
    "paralleltests",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django_charon_sessions.middleware.SessionMetadataMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "paralleltests.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_ENGINE = "django_charon_sessions.engine"
CHARON_SESSIONS = {"URL": os.environ["CHARON_REDIS_URL"], "KEY_PREFIX": "site"}

if os.environ.get("SHARE_ONE_PREFIX") == "1":
    # The control run: every worker under one prefix, as before the fix.
    from django_charon_sessions import conf

    conf.parallel_test_worker = lambda: ""
"""

TESTS = """
import os
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.test import TestCase

from django_charon_sessions import api
from django_charon_sessions.testing import clear_sessions

WORKERS = 4
STEPS = Path(os.environ["CHARON_BARRIER_DIR"])


def all_reach(step):
    # A barrier across the worker processes: every test waits for the others.
    (STEPS / f"{step}-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(STEPS.glob(f"{step}-*"))) < WORKERS:
        assert time.monotonic() < deadline, f"not every worker reached {step}"
        time.sleep(0.02)


class Scenario:
    def test_user_1_signs_in_in_every_worker(self):
        clear_sessions()
        all_reach("cleared")
        user = get_user_model().objects.create_user("ada", password="pw-1234567")
        self.assertEqual(user.pk, 1)  # in every worker's database
        self.assertTrue(self.client.login(username="ada", password="pw-1234567"))
        all_reach("signed-in")
        self.assertEqual(len(api.list_sessions(user)), 1)
        all_reach("listed")
        self.assertEqual(api.end_sessions(user), 1)
        self.assertEqual(api.list_sessions(user), [])


class Worker1(Scenario, TestCase):
    pass


class Worker2(Scenario, TestCase):
    pass


class Worker3(Scenario, TestCase):
    pass


class Worker4(Scenario, TestCase):
    pass
"""

MANAGE = """
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paralleltests.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    app = site / "paralleltests"
    app.mkdir(parents=True)
    (site / "manage.py").write_text(textwrap.dedent(MANAGE))
    (app / "__init__.py").write_text("")
    (app / "settings.py").write_text(SETTINGS)
    (app / "urls.py").write_text("urlpatterns = []\n")
    (app / "tests.py").write_text(TESTS)
    return site


def _run(site: Path, url: str, steps: Path, *, share: bool) -> subprocess.CompletedProcess[str]:
    steps.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}},
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
        "CHARON_REDIS_URL": url,
        "CHARON_BARRIER_DIR": str(steps),
        "SHARE_ONE_PREFIX": "1" if share else "0",
    }
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "manage.py", "test", "paralleltests", "--parallel", "4", "-v", "2"],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.backends("redis")
def test_manage_py_test_parallel_workers_do_not_share_indexes(backend, tmp_path):
    site = _site(tmp_path)
    url = backend.config["URL"]
    done = _run(site, url, tmp_path / "steps", share=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Ran 4 tests" in out and "OK" in out
    # The ended sessions' records wait for cleanup, each under its worker's prefix.
    assert prefixes(backend) == {f"site:w{n}" for n in range(1, 5)}

    # The same suite with every worker under one prefix fails: that is the bug.
    backend.admin.flushall()
    control = _run(site, url, tmp_path / "control-steps", share=True)
    out = control.stdout + control.stderr
    assert control.returncode != 0, out[-3000:]
    assert "AssertionError: 4 != 1" in out


def test_settings_changes_reach_the_prefix():
    # override_settings still works with the worker suffix in place.
    with utils.override_settings(CHARON_SESSIONS={"KEY_PREFIX": "other"}):
        assert charon_settings.KEY_PREFIX == "other"
