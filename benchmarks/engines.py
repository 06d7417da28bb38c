"""The session engines compared, and what each needs in Django's settings."""

from __future__ import annotations

from dataclasses import dataclass, field

BASE_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    module: str
    cache_alias: str = "default"
    uses_redis: bool = True
    middleware: list[str] = field(default_factory=lambda: list(BASE_MIDDLEWARE))


ENGINES = {
    e.name: e
    for e in (
        Engine("floor", "redis-py GET+SET (floor)", "benchmarks.floor"),
        Engine(
            "charon",
            "django-charon-sessions",
            "django_charon_sessions.engine",
            # As the README sets it up: with the metadata middleware.
            middleware=[
                BASE_MIDDLEWARE[0],
                "django_charon_sessions.middleware.SessionMetadataMiddleware",
                BASE_MIDDLEWARE[1],
            ],
        ),
        Engine(
            "cache_django_redis",
            "cache on django-redis",
            "django.contrib.sessions.backends.cache",
            "django_redis",
        ),
        Engine(
            "cache_redis",
            "cache on Django's RedisCache",
            "django.contrib.sessions.backends.cache",
            "django",
        ),
        Engine(
            "cached_db",
            "cached_db (django-redis + SQLite)",
            "django.contrib.sessions.backends.cached_db",
            "django_redis",
        ),
        Engine("db", "db (SQLite)", "django.contrib.sessions.backends.db", uses_redis=False),
    )
}
