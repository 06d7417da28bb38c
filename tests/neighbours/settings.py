"""The demo's settings with the apps of ``CHARON_TEST_APPS`` (a JSON list).

They come after Django's own apps, in that order. ``CHARON_TEST_SESSIONS``
(a JSON object) is merged into ``CHARON_SESSIONS``.
"""

from __future__ import annotations

import json
import os

from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS as _DEMO_APPS

INSTALLED_APPS = [
    *(app for app in _DEMO_APPS if app.startswith("django.contrib.")),
    *json.loads(os.environ["CHARON_TEST_APPS"]),
]
AUTH_USER_MODEL = "auth.User"
ROOT_URLCONF = "tests.neighbours.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CHARON_SESSIONS = {
    "CONNECTION_FACTORY": "testproject.fake.connection",
    **json.loads(os.environ.get("CHARON_TEST_SESSIONS", "{}")),
}
