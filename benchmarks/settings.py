"""Django settings for the benchmarks: one Redis server, every engine.

The engine under test is switched with ``override_settings`` (in process) or
the ``BENCH_ENGINE`` environment variable (the WSGI server of the end-to-end
run). ``BENCH_REDIS_URL`` names the Redis server and ``BENCH_DB`` the SQLite
file; :mod:`benchmarks.run` sets both.
"""

from __future__ import annotations

import os

from benchmarks.engines import ENGINES

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

SECRET_KEY = "benchmarks-only-not-secret-8d1e2"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django_charon_sessions",
]
ROOT_URLCONF = "benchmarks.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", "/tmp/charon-bench.sqlite3"),
        # Persistent connections, as production sites run: otherwise every
        # request would reconnect, a cost that hides the engines' differences.
        "CONN_MAX_AGE": None,
    }
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Django's cache engine on django-redis, as its documentation sets it up.
    "django_redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_TIMEOUT": 1.0},
    },
    # The same on Django's own RedisCache.
    "django": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_timeout": 1.0},
    },
}
CHARON_SESSIONS = {"URL": REDIS_URL}
BENCH_FLOOR_URL = REDIS_URL

_engine = ENGINES[os.environ.get("BENCH_ENGINE", "charon")]
SESSION_ENGINE = _engine.module
SESSION_CACHE_ALIAS = _engine.cache_alias
MIDDLEWARE = _engine.middleware

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
