"""Start Django with ``tests.neighbours.settings`` and print, as JSON, what the user admin offers.

Run as ``python -m tests.neighbours.probe``; the test asserts on the report.
"""

from __future__ import annotations

import json
import os
import re

import django


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.neighbours.settings"
    django.setup()
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.core.checks import run_checks
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    model = get_user_model()
    boss = model.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(boss)
    base = f"/admin/auth/user/{boss.pk}/"
    change_form = client.get(f"{base}change/").text
    tools = re.search(r'<ul class="object-tools">(.*?)</ul>', change_form, re.S)
    registered = admin.site._registry[model]
    impersonate = client.get(f"{base}impersonate/")
    report = {
        "checks": [
            {"id": m.id, "msg": m.msg, "hint": m.hint}
            for m in run_checks()
            if (m.id or "").startswith("django_charon_sessions.")
        ],
        "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(registered).__mro__],
        "actions": list(registered.actions or []),
        "object_tools": re.findall(r'href="([^"]*)"', tools.group(1)) if tools else [],
        "sessions": client.get(f"{base}sessions/").status_code,
        "impersonate": [impersonate.status_code, impersonate.text],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
