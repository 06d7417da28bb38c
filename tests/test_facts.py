"""Request facts are built once per distinct client, never served stale."""

from __future__ import annotations

import json

from django.test import RequestFactory, override_settings

from django_charon_sessions.middleware import _facts, client_facts

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"


def facts(**meta: str) -> dict[str, str]:
    request = RequestFactory().get("/", **meta)
    return json.loads(client_facts(request))


def test_the_same_client_is_looked_up_once():
    _facts.cache_clear()
    for _ in range(5):
        assert facts(REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT=UA) == {
            "ip": "198.51.100.7",
            "ua": UA,
        }
    info = _facts.cache_info()
    assert (info.misses, info.hits) == (1, 4)
    assert facts(REMOTE_ADDR="198.51.100.8", HTTP_USER_AGENT=UA)["ip"] == "198.51.100.8"
    assert _facts.cache_info().misses == 2


def test_forwarding_headers_are_part_of_the_key_behind_a_proxy():
    with override_settings(CHARON_SESSIONS={"TRUSTED_PROXIES": ["10.0.0.1"]}):
        one = facts(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.1, 10.0.0.1")
        two = facts(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.2, 10.0.0.1")
    assert (one["ip"], two["ip"]) == ("203.0.113.1", "203.0.113.2")
    # Without a trusted proxy the header is not believed, cached or not.
    spoofed = facts(REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert spoofed["ip"] == "198.51.100.9"


def test_settings_are_part_of_the_key():
    assert "ua" in facts(REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT=UA)
    with override_settings(CHARON_SESSIONS={"CAPTURE_USER_AGENT": False}):
        assert "ua" not in facts(REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT=UA)
    with override_settings(CHARON_SESSIONS={"USER_AGENT_MAX_LENGTH": 7}):
        assert facts(REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT=UA)["ua"] == UA[:7]
