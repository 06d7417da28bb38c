"""The shipped translations: complete, well-formed, compiled, and used by the pages."""

from __future__ import annotations

import gettext
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import modify_settings, override_settings
from django.urls import reverse
from django.utils import translation

from tests.catalogs import (
    LANGUAGES,
    LOCALE,
    REFRESH,
    SHIPPED,
    extract,
    nplurals,
    parse_po,
    placeholders,
    read_catalog,
)
from tests.devices import PASSWORD, device

FIX = (
    f"Run {REFRESH} (makemessages + compilemessages), translate the new, changed and "
    "fuzzy entries in django_charon_sessions/locale/<lang>/LC_MESSAGES/django.po "
    f"(remove the fuzzy flag), then run {REFRESH} again and commit the .po and .mo files."
)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """What makemessages extracts from the code and templates now."""
    return extract(tmp_path_factory.mktemp("makemessages"))


def test_the_three_languages_ship():
    assert set(SHIPPED) <= set(LANGUAGES)
    for language in LANGUAGES:
        folder = LOCALE / language / "LC_MESSAGES"
        assert (folder / "django.po").is_file(), language
        assert (folder / "django.mo").is_file(), f"{language}: {FIX}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_translates_every_marked_string(extracted, language):
    """Every string makemessages finds has a finished translation, and nothing else is there."""
    catalog = {e.key: e for e in read_catalog(language)}
    forms = nplurals(language)
    problems = []
    for wanted in extracted:
        entry = catalog.get(wanted.key)
        if entry is None:
            problems.append(f"missing: {wanted.msgid!r}")
        elif entry.msgid_plural != wanted.msgid_plural:
            problems.append(f"plural changed: {wanted.msgid!r} ({wanted.msgid_plural!r})")
        elif "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {wanted.msgid!r}")
        elif not all(entry.msgstr) or not entry.msgstr:
            problems.append(f"untranslated: {wanted.msgid!r}")
        elif wanted.msgid_plural is not None and len(entry.msgstr) != forms:
            problems.append(f"{len(entry.msgstr)} plural forms, not {forms}: {wanted.msgid!r}")
    marked = {e.key for e in extracted}
    problems += [f"no longer marked: {key[1]!r}" for key in catalog if key not in marked]
    assert not problems, f"{language} catalog is not up to date:\n  " + "\n  ".join(
        [*problems, FIX]
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language):
    problems = []
    for entry in read_catalog(language):
        python = "python-format" in entry.flags
        if entry.msgid_plural is None:
            if placeholders(entry.msgstr[0], python) != placeholders(entry.msgid, python):
                problems.append(f"{entry.msgid!r} -> {entry.msgstr[0]!r}")
            continue
        # A form may leave out the count ("the selected user"), but keeps
        # every other placeholder and invents none.
        one = set(placeholders(entry.msgid, python))
        many = set(placeholders(entry.msgid_plural, python))
        for text in entry.msgstr:
            found = set(placeholders(text, python))
            if not (one & many) <= found <= (one | many):
                problems.append(f"{entry.msgid_plural!r} -> {text!r}")
    assert not problems, f"{language}: placeholders differ:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalog_matches_the_po(language):
    """The .mo in the wheel is the .po compiled: nobody forgot compilemessages."""
    folder = LOCALE / language / "LC_MESSAGES"
    with (folder / "django.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    po = parse_po((folder / "django.po").read_text(encoding="utf-8"))
    stale = []
    for entry in po:
        if not entry.msgid or "fuzzy" in entry.flags:
            continue
        prefix = f"{entry.context}\x04" if entry.context else ""
        if entry.msgid_plural is None:
            got = compiled._catalog.get(prefix + entry.msgid)
            ok = got == entry.msgstr[0]
        else:
            got = [
                compiled._catalog.get((prefix + entry.msgid, i)) for i in range(len(entry.msgstr))
            ]
            ok = got == entry.msgstr
        if not ok:
            stale.append(entry.msgid)
    assert not stale, f"{language}: django.mo is older than django.po for {stale}. {FIX}"


def test_parser_reads_what_the_checks_rely_on():
    """The coverage test is only as good as the reader: fuzzy, plurals, continuations."""
    text = (
        'msgid ""\nmsgstr "Plural-Forms: nplurals=2;\\n"\n\n'
        '#, fuzzy, python-format\nmsgid "a %(n)d"\nmsgid_plural ""\n"b %(n)d"\n'
        'msgstr[0] "x"\nmsgstr[1] ""\n"y %(n)d"\n\n'
        '#~ msgid "gone"\n#~ msgstr "weg"\n\n'
        'msgctxt "c"\nmsgid "q \\"z\\""\nmsgstr ""\n'
    )
    header, plural, quoted = parse_po(text)
    assert header.msgid == "" and "nplurals" in header.msgstr[0]
    assert (plural.msgid, plural.msgid_plural) == ("a %(n)d", "b %(n)d")
    assert plural.msgstr == ["x", "y %(n)d"]
    assert plural.flags == {"fuzzy", "python-format"}
    assert (quoted.context, quoted.msgid, quoted.msgstr) == ("c", 'q "z"', [""])
    assert not quoted.flags
    assert placeholders("%(a)s %d %% {0} {{x}}", True) == ["%(a)s", "%d", "{0}"]
    assert placeholders("100% {name}", False) == ["{name}"]


# -- the pages in each language --------------------------------------------------

# Column headings of both pages: (English, German, French, Spanish).
HEADINGS = [
    ("Device", "Gerät", "Appareil", "Dispositivo"),
    ("IP address", "IP-Adresse", "Adresse IP", "Dirección IP"),
    ("Last seen", "Zuletzt aktiv", "Dernière activité", "Última actividad"),
]
UNKNOWN = {"de": "Unbekannt", "fr": "Inconnu", "es": "Desconocido"}
LOCALE_MIDDLEWARE = modify_settings(
    MIDDLEWARE={"append": "django.middleware.locale.LocaleMiddleware"}
)


def _assert_translated(page: str, language: str) -> None:
    column = 1 + SHIPPED.index(language)
    for row in HEADINGS:
        assert f">{row[column]}<" in page, (language, row[column])
        assert f">{row[0]}<" not in page, (language, row[0])
    # A device without a User-Agent header: "Unknown" is shown in the reader's language.
    assert UNKNOWN[language] in page
    assert "Unknown" not in page


@pytest.mark.django_db
@pytest.mark.backends("fake")
@pytest.mark.parametrize("language", SHIPPED)
@LOCALE_MIDDLEWARE
def test_users_page_is_shown_in_the_browsers_language(backend, language):
    user = get_user_model().objects.create_user("ada", password=PASSWORD)
    device(user, agent="")
    client = device(user)
    page = client.get(reverse("charon_sessions:list"), HTTP_ACCEPT_LANGUAGE=language).text
    _assert_translated(page, language)
    assert f'<html lang="{language}">' in page
    english = client.get(reverse("charon_sessions:list"), HTTP_ACCEPT_LANGUAGE="en").text
    assert ">Device<" in english and "Unknown" in english


@pytest.mark.django_db
@pytest.mark.backends("fake")
@pytest.mark.parametrize("language", SHIPPED)
@LOCALE_MIDDLEWARE
def test_admin_sessions_page_is_shown_in_the_browsers_language(backend, language):
    users = get_user_model().objects
    ada = users.create_user("ada", password=PASSWORD)
    boss = users.create_superuser("boss", "boss@example.com", PASSWORD)
    device(ada, agent="")
    opts = get_user_model()._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_sessions", args=[ada.pk])
    page = device(boss).get(url, HTTP_ACCEPT_LANGUAGE=language).text
    _assert_translated(page, language)
    with translation.override(language):
        caption = translation.gettext("Live sessions of %(user)s") % {"user": "ada"}
    assert caption in page and "Live sessions of" not in page


@pytest.mark.django_db
@pytest.mark.backends("fake")
@override_settings(LANGUAGE_CODE="de")
def test_command_output_stays_in_english(backend):
    """Operators grep command output and paste it into bug reports: it is never translated."""
    user = get_user_model().objects.create_user("ada", password=PASSWORD)
    device(user, agent="")
    out = io.StringIO()
    with translation.override("de"):
        call_command("sessions_list", "ada", stdout=out)
        assert translation.get_language() == "de"  # and the caller's language is back
    assert "Unknown" in out.getvalue() and "Unbekannt" not in out.getvalue()
