"""The documentation (docs/*.md) matches the code, and its Python examples run.

These tests read the Markdown sources; they need no Sphinx and run with the
rest of the suite. The site itself is built by ``scripts/docs`` (tox's
``docs`` environment), with warnings as errors.

1. **Settings.** The table under "## `CHARON_SESSIONS`" in docs/settings.md
   is, row for row, the one rendered from the settings table
   (:data:`django_charon_sessions.conf.SETTINGS`): key, default as a Python
   literal, the id of the check that reports a bad value, and its line of
   meaning. The page is kept by hand, so that it reads the same on GitHub as
   on the built site; a difference fails with the table it should hold.
2. **System checks.** The ids the checks can report (the registries
   :data:`django_charon_sessions.checks.CHECK_IDS` and
   :data:`django_charon_sessions.deploy.DEPLOY_CHECK_IDS`) are exactly the rows
   of the checks table in docs/settings.md, each with a problem and a fix; no
   page names an id the code does not have.
3. **Examples.** Every fenced ```` ```python ```` block in docs/*.md (except
   the generated benchmarks*.md) is preceded, on the line before its fence, by
   a marker saying what to do with it:

   ``<!-- docs-test: settings -->``
       A settings fragment. It is executed as a settings module would be
       (``...`` in a list stands for "your other entries" and is dropped).
       ``CHARON_SESSIONS`` may only use known keys; ``INSTALLED_APPS`` must
       name the app; ``MIDDLEWARE`` must put ``SessionMetadataMiddleware``
       after Django's ``SessionMiddleware``. Then, with the fragment's settings
       in force (all but ``INSTALLED_APPS``), the app's settings checks must
       report nothing.
   ``<!-- docs-test: run -->``
       Code that really runs, against fakeredis and the test database. The
       run blocks of a page run in page order in one namespace, which starts
       with ``user`` (a user signed in on three devices through the real login
       view) and ``request`` (a request of one of those devices, with
       ``request.user`` and ``request.session``). Top-level ``await`` is
       allowed. A block whose first line is a comment naming a Python file
       (``# mysite/redis_sessions.py``) can also be imported under that
       module name by the rest of the page (settings blocks included).
   ``<!-- docs-test: skip -->``
       Shown, not run; the text around it should say why.

   A ```` ```python ```` block without a marker fails the test, so every new
   example is either run or consciously skipped. Other languages (``sh``,
   ``console``, ``text``, ``ini``, ``django``) are not run.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import json
import re
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import DEBUG
from django.test import RequestFactory, override_settings

from django_charon_sessions import checks, deploy
from django_charon_sessions.conf import DEFAULT_URL, DEFAULTS, SETTINGS
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.signals import sessions_ended
from tests.devices import CHROME_MAC, FIREFOX, PASSWORD, device, key_of

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
APP = "django_charon_sessions"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
METADATA_MIDDLEWARE = "django_charon_sessions.middleware.SessionMetadataMiddleware"
CHECK_ID = re.compile(r"django_charon_sessions\.[EW]\d{3}")
MARKER = re.compile(r"<!--\s*docs-test:\s*(\w+)\s*-->")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*$")


def pages() -> list[Path]:
    """Return the hand-written pages (the benchmark reports are generated)."""
    return sorted(p for p in DOCS.glob("*.md") if not p.name.startswith("benchmarks"))


def section(text: str, heading: str) -> str:
    """Return the body of the level-2 section titled ``heading``."""
    match = re.search(rf"^## {re.escape(heading)}[ \t]*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/settings.md has no section {heading!r}"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """Return the cells of every Markdown table row (header and rule rows skipped)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        rows.append(cells)
    return rows


# -- 1. settings -------------------------------------------------------------------


def literal(value: Any) -> str:
    """Return ``value`` as the Python literal the docs show (strings in double quotes)."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def settings_table() -> list[str]:
    """Return the Markdown rows of the settings table, rendered from conf.SETTINGS."""
    rows = ["| Key | Default | Check | |", "|---|---|---|---|"]
    for s in SETTINGS:
        check = s.check.removeprefix(f"{APP}.")
        rows.append(f"| `{s.name}` | `{literal(s.default)}` | `{check}` | {s.doc} |")
    return rows


def test_the_settings_table_is_the_one_in_conf():
    text = section((DOCS / "settings.md").read_text("utf-8"), "`CHARON_SESSIONS`")
    documented = [line.strip() for line in text.splitlines() if line.startswith("|")]
    expected = settings_table()
    assert documented == expected, (
        "docs/settings.md's settings table differs from django_charon_sessions.conf; "
        "it should read:\n" + "\n".join(expected)
    )


def test_the_documented_defaults_are_the_defaults():
    # The rendered table's own promise, read back from the page: each default
    # cell is a Python literal equal to the default (URL: the one used when
    # none is given).
    text = section((DOCS / "settings.md").read_text("utf-8"), "`CHARON_SESSIONS`")
    documented = {cells[0].strip("`"): cells[1] for cells in table_rows(text) if cells[0] != "Key"}
    assert list(documented) == [s.name for s in SETTINGS] == list(DEFAULTS)
    assert DEFAULTS["URL"] == DEFAULT_URL
    for key, cell in documented.items():
        literal_cell = re.fullmatch(r"`(.+)`", cell)
        assert literal_cell, f"{key}: the default column should be a literal in backticks"
        assert ast.literal_eval(literal_cell.group(1)) == DEFAULTS[key], key


def test_the_readme_summary_names_every_setting_with_its_default():
    # README.md has a shorter table of its own (GitHub's front page); it may
    # group keys in one row ("`A`, `B`" with defaults "`x`, `y`").
    text = section((ROOT / "README.md").read_text("utf-8"), "Configuration")
    summary = {}
    for cells in table_rows(text):
        keys = re.findall(r"`([A-Z_]+)`", cells[0])
        defaults = re.findall(r"`([^`]+)`", cells[1])
        if keys:
            assert len(defaults) in (1, len(keys)), cells
            shown = defaults * len(keys) if len(defaults) == 1 else defaults
            summary.update(zip(keys, shown, strict=True))
    assert sorted(summary) == sorted(DEFAULTS), "README.md's settings table"
    for key, cell in summary.items():
        shown = cell if key == "URL" else ast.literal_eval(cell)  # the URL is shown bare
        assert shown == DEFAULTS[key], key


# -- 2. system checks -----------------------------------------------------------------


def check_ids_in_code() -> set[str]:
    """Return every check id the app can report, from the checks' registries."""
    return {*checks.CHECK_IDS, *deploy.DEPLOY_CHECK_IDS}


def documented_checks(text: str) -> dict[str, list[str]]:
    """Return {check id: [problem, fix]} from the checks table of settings.md."""
    out = {}
    for cells in table_rows(section(text, "System checks")):
        match = re.fullmatch(rf"`({CHECK_ID.pattern})`", cells[0])
        if match:
            out[match.group(1)] = cells[1:]
    return out


def test_the_check_id_registries_are_complete():
    ids = check_ids_in_code()
    # A few that are built in different ways: a literal, a settings row, a deploy check.
    assert {f"{APP}.E001", f"{APP}.W006", f"{APP}.E020", f"{APP}.E104"} <= ids
    assert {s.check for s in SETTINGS} <= set(checks.CHECK_IDS)
    assert all(CHECK_ID.fullmatch(i) for i in ids), sorted(ids)
    assert len(ids) >= 34


def test_every_check_id_is_documented_with_a_fix_and_no_other():
    documented = documented_checks((DOCS / "settings.md").read_text("utf-8"))
    code = check_ids_in_code()
    assert sorted(code - set(documented)) == [], "check ids missing from settings.md"
    assert sorted(set(documented) - code) == [], "settings.md lists ids the code lacks"
    for check_id, cells in documented.items():
        assert len(cells) == 2 and all(cells), f"{check_id}: needs a problem and a fix"


def test_no_page_names_a_check_the_code_lacks():
    code = check_ids_in_code()
    for page in pages():
        unknown = set(CHECK_ID.findall(page.read_text("utf-8"))) - code
        assert not unknown, f"{page.name} names {sorted(unknown)}"


def test_the_acl_example_grants_every_command_the_functions_run():
    from django_charon_sessions import library

    run = set(re.findall(r"(?:redis\.p?call|call_chunked)\('([A-Z]+)'", library.SOURCE))
    text = section(
        (DOCS / "production.md").read_text("utf-8"), "ACLs and loading the functions ahead of time"
    )
    acl = re.search(r"ACL SETUSER .*?```", text, re.S)
    assert acl, "production.md has no ACL SETUSER example"
    granted = {g.upper() for g in re.findall(r"\+([a-z_|]+)", acl.group(0))}
    assert sorted((run | {"FCALL", "FCALL_RO"}) - granted) == []


# -- 3. examples ------------------------------------------------------------------------


@dataclass
class Example:
    page: str
    line: int
    kind: str
    source: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def examples(page: Path) -> list[Example]:
    """Return the ```python blocks of a page with their markers."""
    lines = page.read_text("utf-8").splitlines()
    out = []
    n = 0
    while n < len(lines):
        fence = FENCE.match(lines[n])
        if not fence:
            n += 1
            continue
        previous = lines[n - 1].strip() if n else ""
        marker = MARKER.fullmatch(previous)
        kind = marker.group(1) if marker else "missing"
        end = n + 1
        while not re.match(rf"^{fence.group('indent')}```[ \t]*$", lines[end]):
            end += 1
        body = textwrap.dedent("\n".join(lines[n + 1 : end]))
        out.append(Example(page.name, n + 1, kind, body))
        n = end + 1
    return out


ALL_EXAMPLES = [e for page in pages() for e in examples(page)]
KINDS = ("settings", "run", "skip")


def test_the_examples_are_found():
    kinds = {e.kind for e in ALL_EXAMPLES}
    assert {"settings", "run"} <= kinds
    assert len([e for e in ALL_EXAMPLES if e.kind == "run"]) >= 8


@pytest.mark.parametrize("example", ALL_EXAMPLES, ids=lambda e: e.id)
def test_every_python_example_says_what_to_do_with_it(example):
    assert example.kind in KINDS, (
        f"docs/{example.id}: put <!-- docs-test: settings|run|skip --> on the line before "
        "the ```python fence (see tests/test_docs.py)"
    )


def _page_modules(page: str) -> dict[str, types.ModuleType]:
    """Make modules of the page's run blocks that name a file on their first line."""
    modules: dict[str, types.ModuleType] = {}
    for example in ALL_EXAMPLES:
        first = example.source.splitlines()[0] if example.source else ""
        named = re.fullmatch(r"#\s*([\w/]+)\.py\s*", first)
        if example.page != page or example.kind != "run" or not named:
            continue
        dotted = named.group(1).replace("/", ".")
        module = types.ModuleType(dotted)
        exec(compile(example.source, f"docs/{example.id}", "exec"), module.__dict__)
        parts = dotted.split(".")
        for i in range(1, len(parts)):
            modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        modules[dotted] = module
    return modules


@contextlib.contextmanager
def page_modules(page: str):
    modules = _page_modules(page)
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def settings_of(example: Example) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(example.source, f"docs/{example.id}", "exec"), namespace)
    found = {k: v for k, v in namespace.items() if k.isupper()}
    assert found, f"docs/{example.id} sets no setting"
    for name in ("INSTALLED_APPS", "MIDDLEWARE"):
        if name in found:
            found[name] = [entry for entry in found[name] if entry is not Ellipsis]
    return found


@pytest.mark.parametrize(
    "example", [e for e in ALL_EXAMPLES if e.kind == "settings"], ids=lambda e: e.id
)
def test_settings_example(example):
    found = settings_of(example)
    charon = found.get("CHARON_SESSIONS", {})
    assert sorted(set(charon) - set(DEFAULTS)) == [], "unknown CHARON_SESSIONS keys"
    if "INSTALLED_APPS" in found:
        assert APP in found.pop("INSTALLED_APPS")
    middleware = found.get("MIDDLEWARE", [])
    if METADATA_MIDDLEWARE in middleware:
        assert middleware.index(SESSION_MIDDLEWARE) < middleware.index(METADATA_MIDDLEWARE)
    with page_modules(example.page), override_settings(**found):
        messages = [m for m in checks.check_settings() if m.level > DEBUG]
    assert messages == []


@pytest.fixture
def signed_in_user(django_user_model):
    """A user signed in on three devices, and a request of the first one."""
    user = django_user_model.objects.create_user("alice", password=PASSWORD)
    laptop = device(user, FIREFOX, "203.0.113.9")
    device(user, CHROME_MAC, "198.51.100.20")
    device(user, FIREFOX, "192.0.2.44")
    request = RequestFactory().get("/")
    request.user = user
    request.session = SessionStore(key_of(laptop))
    return user, request


def run_block(example: Example, namespace: dict[str, Any]) -> None:
    code = compile(
        example.source, f"docs/{example.id}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    with contextlib.redirect_stdout(io.StringIO()):
        if code.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(code, namespace))
        else:
            exec(code, namespace)


RUN_PAGES = sorted({e.page for e in ALL_EXAMPLES if e.kind == "run"})


@pytest.mark.django_db
@pytest.mark.backends("fake")
@pytest.mark.parametrize("page", RUN_PAGES)
def test_run_examples(page, backend, signed_in_user):
    user, request = signed_in_user
    namespace: dict[str, Any] = {"user": user, "request": request, "__name__": "docs_example"}
    receivers = list(sessions_ended.receivers)
    try:
        with page_modules(page):
            for example in ALL_EXAMPLES:
                if example.page == page and example.kind == "run":
                    run_block(example, namespace)
    finally:
        sessions_ended.receivers[:] = receivers
        sessions_ended.sender_receivers_cache.clear()
