"""The demo: its pages on a phone and their links, and its redis-server's lifetime."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis
from django.test import Client

from tests.devices import PASSWORD, device
from tests.harness import free_port

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


@pytest.mark.django_db
def test_the_sign_in_and_home_pages_fit_a_phone():
    assert VIEWPORT in Client().get("/accounts/login/").text
    assert VIEWPORT in Client().get("/").text


@pytest.mark.django_db
@pytest.mark.backends("fake")
def test_the_users_page_links_back_to_the_site(backend, django_user_model):
    ada = django_user_model.objects.create_user("ada", password=PASSWORD)
    page = device(ada).get("/accounts/sessions/").text
    assert '<a href="/">← Back to the demo site</a>' in page
    assert "Your sessions" in page  # still the package's page around the link


# -- the redis-server that scripts/demo starts -------------------------------------------

needs_redis = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-cli")),
    reason="scripts/demo runs the redis-server and redis-cli on PATH",
)


def _bash(repo_root, script: str) -> str:
    done = subprocess.run(
        ["bash", "-euc", ". scripts/_redis.sh\n" + script],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


@needs_redis
def test_the_demo_stops_the_redis_server_it_started(repo_root, tmp_path):
    port = free_port()
    try:
        out = _bash(
            repo_root,
            f'demo_redis_start {port} "{tmp_path}"\n'
            'echo "started: $DEMO_REDIS_STARTED"\n'
            f"redis-cli -p {port} ping\n"
            "demo_redis_stop\n",
        )
        assert out.splitlines() == [
            f"started: {port}",
            "PONG",
            f"Stopped the demo's redis-server on port {port}.",
        ]
        assert not _answers(port)
    finally:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)


@needs_redis
def test_the_demo_leaves_a_redis_server_that_was_running_alone(repo_root, redis_server, tmp_path):
    port = redis_server.port
    out = _bash(
        repo_root,
        f'demo_redis_start {port} "{tmp_path}"\n'
        'echo "started: ${DEMO_REDIS_STARTED:-nothing}"\n'
        "demo_redis_stop\n",
    )
    assert out.splitlines() == ["started: nothing"]
    assert _answers(port)


@needs_redis
def test_the_demo_stops_its_server_however_it_ends(repo_root, tmp_path):
    # As scripts/demo does: the traps, then a site that fails (or is interrupted).
    port = free_port()
    script = (repo_root / "scripts" / "demo").read_text()
    assert "trap demo_redis_stop EXIT" in script and "trap 'exit 130' INT TERM" in script
    assert "exec " not in script  # an exec'd site would leave no shell to stop Redis
    try:
        done = subprocess.run(
            [
                "bash",
                "-euc",
                ". scripts/_redis.sh\ntrap demo_redis_stop EXIT\ntrap 'exit 130' INT TERM\n"
                f'demo_redis_start {port} "{tmp_path}"\nkill -INT $$\nsleep 30\n',
            ],
            cwd=repo_root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 130
        assert f"Stopped the demo's redis-server on port {port}." in done.stdout
        assert not _answers(port)
    finally:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
