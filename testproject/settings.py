"""Settings of the demo site, also used by the test suite.

Where sessions go is decided by the environment:

- ``CHARON_REDIS_URL`` set: that Redis (``CHARON_REDIS_CLUSTER=1`` for a Cluster);
- otherwise an in-process fake Redis (fakeredis), so the demo runs anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret-4c1f0e")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_charon_sessions",
    "testproject.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django_charon_sessions.middleware.SessionMetadataMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Before the apps' templates: the demo's dress of the users' page.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

SESSION_ENGINE = "django_charon_sessions.engine"

# CHARON_TEST_USER_MODEL=uuid: a custom user model with UUID primary keys.
if os.environ.get("CHARON_TEST_USER_MODEL") == "uuid":
    AUTH_USER_MODEL = "demo.User"

if os.environ.get("CHARON_REDIS_URL"):
    CHARON_SESSIONS = {
        "URL": os.environ["CHARON_REDIS_URL"],
        "CLUSTER": os.environ.get("CHARON_REDIS_CLUSTER") == "1",
    }
else:
    CHARON_SESSIONS = {"CONNECTION_FACTORY": "testproject.fake.connection"}
# The demo shows the admin's site-wide Sessions page in full (off by default:
# it costs Redis memory per signed-in session, see docs/admin.md).
CHARON_SESSIONS["SITE_ACTIVITY"] = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.security": {"handlers": ["console"], "level": "WARNING"}},
}
