"""The location option: a MaxMind-format database the tests write themselves.

The database is a real ``.mmdb`` file (written with mmdb-writer, read with
geoip2) holding two networks; browsers sign in from addresses in them
through the real login view and middleware.
"""

from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from django_charon_sessions import api, checks, locations, middleware
from tests.devices import FIREFOX, PASSWORD, device

pytestmark = [pytest.mark.django_db, pytest.mark.backends("fake", "redis")]

BERLIN_IP = "203.0.113.7"
PARIS_IP = "198.51.100.20"
NOWHERE_IP = "192.0.2.10"  # in no network of the database


def _write_city_db(path: Path) -> None:
    mmdb_writer = pytest.importorskip("mmdb_writer")
    netaddr = pytest.importorskip("netaddr")
    writer = mmdb_writer.MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City", languages=["en"]
    )
    for network, city, country in (
        ("203.0.113.0/24", "Berlin", "DE"),
        ("198.51.100.0/24", "Paris", "FR"),
    ):
        writer.insert_network(
            netaddr.IPSet([network]),
            {"city": {"names": {"en": city}}, "country": {"iso_code": country}},
        )
    writer.to_db_file(str(path))


@pytest.fixture(autouse=True)
def _fresh_caches():
    # Facts and readers are cached per process on purpose; each test starts cold.
    middleware._facts.cache_clear()
    locations._reader.cache_clear()
    yield
    middleware._facts.cache_clear()
    locations._reader.cache_clear()


@pytest.fixture
def geoip_dir(tmp_path, settings) -> Path:
    pytest.importorskip("geoip2")
    _write_city_db(tmp_path / locations.CITY_FILE)
    settings.GEOIP_PATH = str(tmp_path)
    return tmp_path


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)


def admin_sessions(client, user) -> str:
    opts = user._meta
    return client.get(f"/admin/{opts.app_label}/{opts.model_name}/{user.pk}/sessions/").text


def listed_json(user) -> list[dict[str, str]]:
    out = StringIO()
    call_command("sessions_list", user.get_username(), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_database_the_tests_write_is_read_as_maxmind_data(geoip_dir):
    assert locations.locate(BERLIN_IP) == "Berlin, DE"
    assert locations.locate(PARIS_IP) == "Paris, FR"
    assert locations.locate(NOWHERE_IP) == ""
    assert locations.locate("not an address") == ""


def test_city_and_country_shown_everywhere(backend, geoip_dir, ada, boss):
    berlin = device(ada, ip=BERLIN_IP)
    device(ada, ip=PARIS_IP)
    device(ada, ip=NOWHERE_IP)
    admin = device(boss, ip="127.0.0.1")

    assert sorted(s.location for s in api.list_sessions(ada)) == ["", "Berlin, DE", "Paris, FR"]
    page = admin_sessions(admin, ada)
    assert '<th scope="col">Location</th>' in page
    assert '">Berlin, DE</td>' in page and '">Paris, FR</td>' in page
    assert '"Location">—</td>' in page  # the address the database does not know
    own = berlin.get("/accounts/sessions/").text
    assert '<th scope="col">Location</th>' in own and '">Paris, FR</td>' in own
    by_ip = {d["ip"]: d["location"] for d in listed_json(ada)}
    assert by_ip == {BERLIN_IP: "Berlin, DE", PARIS_IP: "Paris, FR", NOWHERE_IP: ""}
    table = StringIO()
    call_command("sessions_list", "ada", stdout=table)
    assert table.getvalue().splitlines()[0].split()[4:6] == ["IP", "LOCATION"]
    assert "Berlin, DE" in table.getvalue()


def test_the_stored_facts_hold_the_short_string(backend, geoip_dir, ada):
    device(ada, ip=BERLIN_IP)
    [raw] = backend_facts(backend)
    # Only the short string joins the IP and the user agent: no database record.
    assert json.loads(raw) == {"ip": BERLIN_IP, "loc": "Berlin, DE", "ua": FIREFOX}


def backend_facts(backend) -> list[str]:
    """Return the stored facts of every session, as the metadata hashes hold them."""
    out = []
    for key in backend.admin.scan_iter():
        if backend.admin.type(key) == b"hash":
            for value in backend.admin.hvals(key):
                text = value.decode()
                if len(text) > 22 and text[22:].startswith("{"):
                    out.append(text[22:])
    return out


def test_looked_up_once_per_client_not_per_page_view(backend, geoip_dir, ada, monkeypatch):
    seen: list[str] = []
    real = locations._lookup
    monkeypatch.setattr(locations, "_lookup", lambda r, ip: seen.append(ip) or real(r, ip))
    client = device(ada, ip=BERLIN_IP)
    for _ in range(3):
        client.get("/accounts/sessions/")
    assert seen == [BERLIN_IP]


def _assert_unchanged(ada, boss) -> None:
    device(ada, ip=BERLIN_IP)
    admin = device(boss, ip="127.0.0.1")
    assert [s.location for s in api.list_sessions(ada)] == [""]
    assert "Location" not in admin_sessions(admin, ada)
    assert "Berlin" not in admin.get("/accounts/sessions/").text
    assert [d["location"] for d in listed_json(ada)] == [""]
    table = StringIO()
    call_command("sessions_list", "ada", stdout=table)
    assert "LOCATION" not in table.getvalue()


def test_without_geoip2_nothing_changes(backend, geoip_dir, ada, boss, monkeypatch):
    monkeypatch.setitem(sys.modules, "geoip2", None)  # "import geoip2" raises ImportError
    monkeypatch.setitem(sys.modules, "geoip2.database", None)
    _assert_unchanged(ada, boss)


def test_without_the_database_nothing_changes_and_geoip2_is_not_imported(
    backend, ada, boss, settings, monkeypatch
):
    for name in [m for m in sys.modules if m == "geoip2" or m.startswith("geoip2.")]:
        monkeypatch.delitem(sys.modules, name)
    if hasattr(settings, "GEOIP_PATH"):
        del settings.GEOIP_PATH
    _assert_unchanged(ada, boss)
    assert "geoip2" not in sys.modules


def test_an_empty_directory_gives_no_location(backend, tmp_path, settings, ada, boss):
    settings.GEOIP_PATH = str(tmp_path)
    _assert_unchanged(ada, boss)


def test_capture_location_off(backend, geoip_dir, ada, boss, settings):
    settings.CHARON_SESSIONS = {**settings.CHARON_SESSIONS, "CAPTURE_LOCATION": False}
    _assert_unchanged(ada, boss)


def test_a_file_path_and_a_country_database(tmp_path, settings):
    pytest.importorskip("geoip2")
    city = tmp_path / "any-name.mmdb"
    _write_city_db(city)
    settings.GEOIP_PATH = str(city)
    assert locations.database_path() == city
    assert locations.locate(BERLIN_IP) == "Berlin, DE"
    country_dir = tmp_path / "country"
    country_dir.mkdir()
    _write_city_db(country_dir / locations.COUNTRY_FILE)  # a City file read as Country
    settings.GEOIP_PATH = str(country_dir)
    assert locations.database_path() == country_dir / locations.COUNTRY_FILE


def ids() -> list[str]:
    return [m.id for m in checks.check_settings()]


def test_the_check_warns_when_geoip_path_names_no_database(tmp_path, settings):
    settings.GEOIP_PATH = str(tmp_path / "missing")
    assert "django_charon_sessions.W008" in ids()
    settings.GEOIP_PATH = str(tmp_path)  # a directory without the files
    assert "django_charon_sessions.W008" in ids()
    with override_settings(CHARON_SESSIONS={"CAPTURE_LOCATION": False}):
        assert "django_charon_sessions.W008" not in ids()
    (tmp_path / locations.COUNTRY_FILE).write_bytes(b"")
    assert "django_charon_sessions.W008" not in ids()
    del settings.GEOIP_PATH
    assert "django_charon_sessions.W008" not in ids()
