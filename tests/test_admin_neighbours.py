"""The sessions pages next to another app that changes the user admin at start-up.

Each case starts Django in a process of its own with the apps in the order
given (``tests/neighbours/``): ``wrapper`` wraps the registered user admin in
a subclass adding an "Impersonate" page, as django-hijack does;
``replacer`` registers its own user admin instead; ``site`` is a project
whose user admin has ``SessionsAdminMixin`` in its bases.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.processes import run_python

CHARON = "django_charon_sessions"
WRAPPER = "tests.neighbours.wrapper"
REPLACER = "tests.neighbours.wrapper.apps.ReplacingConfig"
SITE = "tests.neighbours.site"
SITE_ADMIN = "tests.neighbours.site.admin.SiteUserAdmin"
SESSIONS = "/admin/auth/user/1/sessions/"
IMPERSONATE = "/admin/auth/user/1/impersonate/"


def start(*apps: str, **sessions: object) -> dict[str, Any]:
    """Start Django with ``apps`` after its own and return the probe's report."""
    env = {"CHARON_TEST_APPS": json.dumps(apps), "CHARON_TEST_SESSIONS": json.dumps(sessions)}
    result = run_python("-m", "tests.neighbours.probe", env=env)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def assert_both_work(report: dict[str, Any]) -> None:
    assert report["checks"] == []
    assert report["sessions"] == 200
    assert report["impersonate"] == [200, "impersonating 1"]
    assert SESSIONS in report["object_tools"] and IMPERSONATE in report["object_tools"]
    assert "end_sessions_of_selected" in report["actions"]


@pytest.mark.parametrize("apps", [(CHARON, WRAPPER), (WRAPPER, CHARON)], ids=["after", "before"])
def test_adopted_admin_and_a_wrapping_app_both_work_in_either_order(apps):
    report = start(*apps)
    assert_both_work(report)
    mixins = report["mro"][:4]
    assert f"{CHARON}.admin.SessionsAdminMixin" in mixins
    assert f"{WRAPPER}.patch.ImpersonateMixin" in mixins


@pytest.mark.parametrize(
    ("apps", "admin"),
    [
        ((SITE, CHARON, WRAPPER), True),
        ((SITE, CHARON, WRAPPER), False),
        ((SITE, WRAPPER, CHARON), False),
    ],
    ids=["adopting-after", "not-adopting-after", "not-adopting-before"],
)
def test_the_mixin_in_the_sites_admin_works_with_a_wrapping_app(apps, admin):
    report = start(*apps, ADMIN=admin)
    assert_both_work(report)
    # The wrapper's subclass of the site's own class: nothing made by this app.
    assert report["mro"][:3] == [
        f"{WRAPPER}.patch.WrappedSiteUserAdmin",
        f"{WRAPPER}.patch.ImpersonateMixin",
        SITE_ADMIN,
    ]


def test_adoption_leaves_a_user_admin_with_the_mixin_alone():
    report = start(SITE, CHARON)
    assert report["checks"] == []
    assert report["sessions"] == 200
    assert report["mro"][0] == SITE_ADMIN


def test_an_app_replacing_the_user_admin_later_gets_w006_saying_what_to_do():
    report = start(CHARON, REPLACER)
    assert report["impersonate"] == [200, "impersonating 1"]
    assert report["sessions"] != 200
    assert SESSIONS not in report["object_tools"]
    (check,) = report["checks"]
    assert check["id"] == f"{CHARON}.W006"
    assert f"({WRAPPER}.patch.Replaced)" in check["msg"]  # which admin, so which app
    assert "SessionsAdminMixin first in the bases" in check["hint"]
    assert "after the app that registers that admin" in check["hint"]


def test_listing_the_app_after_the_replacing_one_adopts_its_admin():
    report = start(REPLACER, CHARON)
    assert_both_work(report)
    assert report["mro"][2] == f"{WRAPPER}.patch.Replaced"
