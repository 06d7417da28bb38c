"""WSGI application of the benchmark project (the end-to-end run serves it with gunicorn)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
