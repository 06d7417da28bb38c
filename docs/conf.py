"""Sphinx configuration of the django-charon-sessions documentation.

Build it with ``scripts/docs`` (or ``tox run -e docs``). The build needs no
network: links into the Django, redis-py and Python documentation resolve
through small inventories kept as text in ``_inventories/*.txt``, compiled
into Sphinx's ``objects.inv`` format when the build starts.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import django
from django.conf import settings

import django_charon_sessions

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

HERE = Path(__file__).resolve().parent

# -- Django, so that autodoc can import the app's modules -----------------------

if not settings.configured:
    settings.configure(
        SECRET_KEY="only-for-building-the-docs",  # noqa: S106 - not a secret
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_charon_sessions",
        ],
        SESSION_ENGINE="django_charon_sessions.engine",
        CHARON_SESSIONS={},
        USE_TZ=True,
    )
    django.setup()

# -- Project --------------------------------------------------------------------

project = "django-charon-sessions"
author = "django-charon-sessions developers"
copyright = "django-charon-sessions developers, MIT licence"
release = django_charon_sessions.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]
language = "en"

myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# -- HTML -----------------------------------------------------------------------

html_theme = "furo"
html_title = f"django-charon-sessions {release}"
html_static_path = ["_static"]
# Wide tables wrap inside the text column (tables.css says how).
html_css_files = ["tables.css"]
html_show_sourcelink = False

# -- autodoc --------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# Only this project's own words: no docstrings inherited from Django's classes.
autodoc_inherit_docstrings = False

# -- intersphinx, offline -------------------------------------------------------
#
# Each project's inventory is written from _inventories/<name>.txt, one object
# a line: "name domain:role priority uri dispname", as in Sphinx's own format.
# Links point at the real online documentation (the first value); the build
# reads only the local file, and falls back to the online inventory (None)
# when the local one is missing.

INVENTORY_SOURCES = HERE / "_inventories"
INVENTORY_BUILD = HERE / "_build" / "inventories"
INTERSPHINX_PROJECTS = {
    "python": ("Python", "3", "https://docs.python.org/3/"),
    "django": ("Django", "5.2", "https://docs.djangoproject.com/en/stable/"),
    "redis-py": ("redis-py", "5", "https://redis.readthedocs.io/en/stable/"),
}


def compile_inventory(name: str, project: str, version: str) -> Path:
    """Write ``_build/inventories/<name>.inv`` from ``_inventories/<name>.txt``."""
    lines = []
    for line in (INVENTORY_SOURCES / f"{name}.txt").read_text("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(re.sub(r"\s+", " ", line))
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = zlib.compress(("\n".join(lines) + "\n").encode("utf-8"))
    INVENTORY_BUILD.mkdir(parents=True, exist_ok=True)
    path = INVENTORY_BUILD / f"{name}.inv"
    path.write_bytes(header.encode("utf-8") + body)
    return path


intersphinx_mapping = {
    name: (url, (str(compile_inventory(name, project_name, ver)), None))
    for name, (project_name, ver, url) in INTERSPHINX_PROJECTS.items()
}
intersphinx_timeout = 5

# -- Pages that other tools write ------------------------------------------------
#
# docs/benchmarks.md is written by scripts/bench, and the measurement reports
# (benchmarks-*.md, reliability.md) by their own runs. The index lists
# whichever of them exist, so the site builds before and after a run.

REPORT_ORDER = ["benchmarks", "benchmarks-notes", "benchmarks-cleanup", "reliability"]
GUIDE_PAGES = {
    "index",
    "why",
    "install",
    "settings",
    "users",
    "admin",
    "operations",
    "migrating",
    "production",
    "security",
    "api",
    "design",
    "changelog",
}


def report_pages() -> list[str]:
    """Return the pages of docs/ that no guide toctree names, reports first."""
    found = {p.stem for p in HERE.glob("*.md")} - GUIDE_PAGES
    ordered = [name for name in REPORT_ORDER if name in found]
    return ordered + sorted(found - set(ordered))


def _section(markdown: str, heading: str) -> str | None:
    """Return the body of the ``## heading`` section of a Markdown text, or None."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if match is None:
        return None
    body = [line for line in match.group(1).splitlines() if not line.startswith("![")]
    return "\n".join(body).strip()


def benchmark_excerpt() -> str:
    """Return the benchmark tables shown on the "why" page, or a note without a report."""
    report = HERE / "benchmarks.md"
    if not report.exists():
        return (
            "The benchmark report, `docs/benchmarks.md`, is written by `scripts/bench`; "
            "this copy of the documentation was built without one."
        )
    text = report.read_text("utf-8")
    parts = []
    for heading, title in [
        ("The brief's targets", "The targets"),
        ("Requests", "A signed-in request, per engine"),
        ("Redis memory per session", "Redis memory per session"),
        ("A user's sessions", "Listing and ending a user's sessions"),
    ]:
        body = _section(text, heading)
        if body:
            parts.append(f"### {title}\n\n{body}")
    parts.append("The whole report, with its method and plots: [Benchmarks](benchmarks.md).")
    return "\n\n".join(parts)


def _fill_generated(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname == "index":
        pages = "\n".join(report_pages())
        source[0] = source[0].replace("<!-- report pages -->", pages)
    elif docname == "why":
        source[0] = source[0].replace("<!-- benchmark tables -->", benchmark_excerpt())


def _always_reread(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    # Their generated parts depend on files Sphinx does not track.
    return ["index", "why"]


def setup(app: Sphinx) -> None:
    """Add Django's cross-reference types and fill in the generated parts of pages."""
    # The roles Django's documentation defines, so that {setting}`SECRET_KEY`
    # and {djadmin}`clearsessions` resolve through the Django inventory.
    app.add_crossref_type("setting", "setting", indextemplate="pair: %s; setting")
    app.add_object_type("django-admin", "djadmin", indextemplate="pair: %s; django-admin command")
    app.connect("source-read", _fill_generated)
    app.connect("env-get-outdated", _always_reread)
