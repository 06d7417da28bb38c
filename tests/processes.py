"""Run Python in a process of its own, as Django starts in production.

For what only happens while Django starts (system checks, ``AppConfig.ready()``
and the order of ``INSTALLED_APPS``), which one test process cannot redo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import django_charon_sessions

REPO = Path(__file__).resolve().parent.parent


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in the repository with ``env`` added to this environment."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            **env,
            # The package these tests import (the wheel under tox), then the repo.
            "PYTHONPATH": os.pathsep.join(
                [str(Path(django_charon_sessions.__file__).parent.parent), str(REPO)]
            ),
        },
        cwd=REPO,
        check=False,
    )
