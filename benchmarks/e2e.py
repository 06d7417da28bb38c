"""End to end: gunicorn serves the benchmark project, wrk loads it, one engine at a time.

The page reads the signed-in user and reads and changes the session
(``/write/``). wrk picks one of 500 signed-in sessions at random for each
request, through a small Lua script.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from benchmarks.engines import ENGINES
from benchmarks.measure import engine_settings, make_sessions

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = """
local cookies = {%s}
request = function()
  local c = cookies[math.random(#cookies)]
  return wrk.format("GET", "/write/", {["Cookie"] = "%s=" .. c})
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("gunicorn did not start")


def _parse(output: str) -> dict[str, float]:
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        assert m, output
        value, unit = float(m.group(1)), m.group(2)
        latency[pct] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"]}


def run(user: Any, seconds: float, reps: int, workers: int = 2) -> dict[str, dict[str, float]]:
    """Return requests per second and p50/p99 latency (ms) per engine, medians of ``reps``."""
    wrk = shutil.which("wrk")
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which(
        "gunicorn"
    )
    if not wrk or not gunicorn:
        raise RuntimeError("the end-to-end run needs wrk (apt-get install wrk) and gunicorn")
    out: dict[str, dict[str, float]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="charon-e2e-"))
    try:
        for engine in ENGINES.values():
            with engine_settings(engine):
                keys = make_sessions(engine, 500, user)
            script = workdir / f"{engine.name}.lua"
            cookies = ",".join(f'"{k}"' for k in keys)
            script.write_text(WRK_SCRIPT % (cookies, settings.SESSION_COOKIE_NAME))
            port = _free_port()
            env = {**os.environ, "BENCH_ENGINE": engine.name}
            server = subprocess.Popen(
                [gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level",
                 "warning", "benchmarks.wsgi:application"],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                _wait_for(port, server)
                url = f"http://127.0.0.1:{port}/write/"
                subprocess.run([wrk, "-t1", "-c8", "-d1s", "-s", str(script), url],
                               check=True, capture_output=True)  # fmt: skip
                runs = []
                for _ in range(reps):
                    duration = f"-d{max(1, round(seconds))}s"
                    done = subprocess.run(
                        [wrk, "-t1", "-c8", duration, "--latency", "-s", str(script), url],
                        check=True, capture_output=True, text=True,
                    )  # fmt: skip
                    runs.append(_parse(done.stdout))
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=20)
            out[engine.name] = {
                key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out
