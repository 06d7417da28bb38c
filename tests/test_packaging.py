"""The tests run against the built package (tox installs the wheel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import django_charon_sessions
from django_charon_sessions import calls, library


@pytest.mark.skipif(
    os.environ.get("CHARON_TEST_INSTALLED") != "1", reason="only under tox, on the built wheel"
)
def test_package_is_the_installed_wheel(repo_root):
    path = Path(django_charon_sessions.__file__).resolve()
    assert path.parent != repo_root / "django_charon_sessions", "tests imported the source tree"
    assert "site-packages" in path.parts
    assert (path.parent / "lua" / "charon.lua").is_file()
    assert (path.parent / "py.typed").is_file()
    templates = path.parent / "templates"
    for name in (
        "admin/django_charon_sessions/sessions.html",
        "admin/django_charon_sessions/confirm.html",
        "admin/django_charon_sessions/confirm_action.html",
        "admin/django_charon_sessions/change_form.html",
        "admin/django_charon_sessions/breadcrumbs.html",
        "django_charon_sessions/base.html",
        "django_charon_sessions/sessions.html",
        "django_charon_sessions/includes/when.html",
    ):
        assert (templates / name).is_file(), name
    assert (path.parent / "static" / "django_charon_sessions" / "sessions.css").is_file()
    for language in ("de", "fr", "es"):
        messages = path.parent / "locale" / language / "LC_MESSAGES"
        assert (messages / "django.mo").is_file(), language
        assert (messages / "django.po").is_file(), language


def test_library_source_is_versioned():
    import fakeredis

    assert f"charon_{library.VERSION}" == library.LIBRARY
    assert "__VERSION__" not in library.SOURCE
    assert library.SOURCE.startswith(f"#!lua name={library.LIBRARY}\n")
    r = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 2)))
    r.function_load(library.SOURCE)
    [listed] = r.function_list()
    names = {f[1].decode() for f in listed[listed.index(b"functions") + 1]}
    expected = {
        calls.LOAD, calls.EXISTS, calls.CREATE, calls.SAVE, calls.CYCLE, calls.DELETE,
        calls.SWEEP, calls.LIST, calls.END_ONE, calls.END_ALL, calls.STATS, calls.PURGE,
        calls.IMPORT, calls.RETRACT, calls.ACTIVITY,
    }  # fmt: skip
    assert names == expected
    assert all(name.startswith(library.LIBRARY + "_") for name in names)
