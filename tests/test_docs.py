"""The documentation (docs/*.md) matches the code, and its Python examples run.

These tests read the Markdown sources; they need no Sphinx and run with the
rest of the suite. The site itself is built by ``scripts/docs`` (tox's
``docs`` environment), with warnings as errors.

1. **Settings.** Every key of :data:`django_charon_sessions.conf.DEFAULTS` is
   a row of the table under "## `CHARON_SESSIONS`" in docs/settings.md, whose
   second cell is the key's default as a Python literal (``URL``: the URL used
   when none is given); the table names no key the code does not have.
2. **System checks.** Every check id that django_charon_sessions/checks.py
   can emit (read from its source: the number passed to ``_error`` or
   ``_warning``, or taken from the module-level table a loop feeds them from)
   is a row of the checks table in docs/settings.md, with a fix; no page names
   an id the code does not have.
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

from django_charon_sessions import checks
from django_charon_sessions.conf import DEFAULT_URL, DEFAULTS
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.signals import sessions_ended
from tests.devices import CHROME_MAC, FIREFOX, PASSWORD, device, key_of

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The source of the module under test (the installed wheel under tox).
CHECKS_SOURCE = Path(inspect.getsourcefile(checks) or checks.__file__)
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


def documented_settings(text: str) -> dict[str, str]:
    """Return {key: documented default} from the settings table of settings.md."""
    out = {}
    for cells in table_rows(section(text, "`CHARON_SESSIONS`")):
        key = re.fullmatch(r"`([A-Z_]+)`", cells[0])
        if key:
            out[key.group(1)] = cells[1]
    return out


def expected_default(key: str) -> Any:
    return DEFAULT_URL if key == "URL" else DEFAULTS[key]


def test_every_setting_is_documented_with_its_default():
    documented = documented_settings((DOCS / "settings.md").read_text("utf-8"))
    assert sorted(set(DEFAULTS) - set(documented)) == [], "settings missing from settings.md"
    assert sorted(set(documented) - set(DEFAULTS)) == [], "settings.md names unknown settings"
    for key, cell in documented.items():
        literal = re.fullmatch(r"`(.+)`", cell)
        assert literal, f"{key}: the default column should be a literal in backticks: {cell!r}"
        assert ast.literal_eval(literal.group(1)) == expected_default(key), key


# -- 2. system checks -----------------------------------------------------------------


def check_ids_in_code() -> set[str]:
    """Return every check id checks.py can emit, read from its source."""
    tree = ast.parse(CHECKS_SOURCE.read_text("utf-8"))
    kinds = {"_error": "E", "_warning": "W"}
    ids: set[str] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        loops = {}  # name bound by "for ..., name in TABLE" -> TABLE
        for node in ast.walk(func):
            if isinstance(node, ast.For) and isinstance(node.iter, ast.Name):
                targets = node.target.elts if isinstance(node.target, ast.Tuple) else []
                if targets and isinstance(targets[-1], ast.Name):
                    loops[targets[-1].id] = node.iter.id
        for node in ast.walk(func):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            kind = kinds.get(node.func.id)
            if kind is None or func.name in kinds:
                continue
            number = node.args[-1] if len(node.args) == 3 else None
            if isinstance(number, ast.Constant) and isinstance(number.value, int):
                ids.add(f"django_charon_sessions.{kind}{number.value:03d}")
            elif isinstance(number, ast.Name) and number.id in loops:
                for row in getattr(checks, loops[number.id]):
                    ids.add(f"django_charon_sessions.{kind}{row[-1]:03d}")
            else:
                pytest.fail(f"checks.py line {node.lineno}: cannot tell which id this emits")
    return ids


def documented_checks(text: str) -> dict[str, list[str]]:
    """Return {check id: [problem, fix]} from the checks table of settings.md."""
    out = {}
    for cells in table_rows(section(text, "System checks")):
        match = re.fullmatch(rf"`({CHECK_ID.pattern})`", cells[0])
        if match:
            out[match.group(1)] = cells[1:]
    return out


def test_the_check_ids_are_read_from_the_code():
    ids = check_ids_in_code()
    # A few that are built in different ways: a literal, a table, a deploy check.
    assert {f"{APP}.E001", f"{APP}.W006", f"{APP}.E020", f"{APP}.E104"} <= ids
    assert len(ids) >= 30


def test_every_check_id_is_documented_with_a_fix():
    documented = documented_checks((DOCS / "settings.md").read_text("utf-8"))
    code = check_ids_in_code()
    assert sorted(code - set(documented)) == [], "check ids missing from settings.md"
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
