"""The demo's settings, with extra ``CHARON_SESSIONS`` keys from the environment.

For running ``manage.py check --deploy`` in a subprocess with settings the
demo's environment variables cannot express: ``CHARON_TEST_SESSIONS`` holds
a JSON object merged into ``CHARON_SESSIONS``.
"""

from __future__ import annotations

import json
import os

from testproject.settings import *  # noqa: F403
from testproject.settings import CHARON_SESSIONS as _BASE

CHARON_SESSIONS = {**_BASE, **json.loads(os.environ.get("CHARON_TEST_SESSIONS", "{}"))}
