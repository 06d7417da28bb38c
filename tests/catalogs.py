"""Read gettext catalogs (.po) and run makemessages, for the translation tests."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import django_charon_sessions

PACKAGE = Path(django_charon_sessions.__file__).resolve().parent
LOCALE = PACKAGE / "locale"
SHIPPED = ("de", "fr", "es")
# Every catalog there is, so that one a contributor adds is checked too.
LANGUAGES = tuple(sorted(p.name for p in LOCALE.iterdir() if (p / "LC_MESSAGES").is_dir()))
REFRESH = "scripts/messages"

# %(name)s and friends, %s, %d; "%%" is a literal percent sign. {0}/{name}
# too, though the app uses none: a translator must not drop or invent them.
_PRINTF = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%])")
_BRACES = re.compile(r"(?<!\{)\{(\w*)(?:[!:][^{}]*)?\}(?!\})")


@dataclass
class Entry:
    msgid: str
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    context: str | None = None

    @property
    def key(self) -> tuple[str | None, str]:
        return self.context, self.msgid


def parse_po(text: str) -> list[Entry]:
    """Return the live entries of a .po file (obsolete "#~" ones are left out), header too."""
    entries: list[Entry] = []
    flags: set[str] = set()
    current: Entry | None = None
    target: tuple[str, int] | None = None
    for raw in [*text.splitlines(), ""]:
        line = raw.strip()
        if not line or line.startswith("#~"):
            if current is not None:
                entries.append(current)
            current, target = None, None
            if not line:
                flags = set()
            continue
        if line.startswith("#,"):
            flags |= {f.strip() for f in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if line.startswith('"'):
            value, keyword = line, ""
        else:
            value = rest
        string = ast.literal_eval(value) if value else ""
        if keyword in ("msgctxt", "msgid") and (current is None or keyword == "msgctxt"):
            current = Entry(msgid="", flags=flags)
        assert current is not None, f"unexpected line in a catalog: {raw!r}"
        if keyword == "msgctxt":
            current.context, target = string, ("msgctxt", 0)
        elif keyword == "msgid":
            current.msgid, target = string, ("msgid", 0)
        elif keyword == "msgid_plural":
            current.msgid_plural, target = string, ("msgid_plural", 0)
        elif keyword.startswith("msgstr"):
            index = int(keyword[7:-1]) if keyword != "msgstr" else 0
            current.msgstr.extend([""] * (index + 1 - len(current.msgstr)))
            current.msgstr[index], target = string, ("msgstr", index)
        elif keyword == "":
            assert target is not None, f"continuation without a keyword: {raw!r}"
            _append(current, target, string)
    return entries


def _append(entry: Entry, target: tuple[str, int], string: str) -> None:
    name, index = target
    if name == "msgstr":
        entry.msgstr[index] += string
    elif name == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + string
    elif name == "msgctxt":
        entry.context = (entry.context or "") + string
    else:
        entry.msgid += string


def read_catalog(language: str) -> list[Entry]:
    """Return the entries of a shipped catalog, without the header."""
    path = LOCALE / language / "LC_MESSAGES" / "django.po"
    return [e for e in parse_po(path.read_text(encoding="utf-8")) if e.msgid]


def nplurals(language: str) -> int:
    path = LOCALE / language / "LC_MESSAGES" / "django.po"
    [header] = [e for e in parse_po(path.read_text(encoding="utf-8")) if not e.msgid]
    found = re.search(r"nplurals\s*=\s*(\d+)", header.msgstr[0])
    assert found, f"{path}: no Plural-Forms in the header"
    return int(found.group(1))


def extract(workdir: Path) -> list[Entry]:
    """Run makemessages on a copy of the package; return what it extracts now.

    A copy, so the test never rewrites the shipped catalogs: the entries of
    a fresh catalog are exactly the strings marked in the code and templates.
    """
    copy = workdir / "django_charon_sessions"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("locale", "__pycache__", "static"))
    (copy / "locale").mkdir()
    # No settings: makemessages needs none, and the test project is not on
    # the path in the copy's directory.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "xx", "--no-location"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    po = copy / "locale" / "xx" / "LC_MESSAGES" / "django.po"
    return [e for e in parse_po(po.read_text(encoding="utf-8")) if e.msgid]


def placeholders(text: str, python_format: bool) -> list[str]:
    """Return the format placeholders of a message, sorted ("%%" is not one).

    %-placeholders count only in messages makemessages flagged python-format;
    elsewhere a "%" is just a character.
    """
    found = [
        f"%({name}){conv}" if name else f"%{conv}"
        for name, conv in (_PRINTF.findall(text) if python_format else [])
        if conv != "%"
    ]
    found += [f"{{{name}}}" for name in _BRACES.findall(text)]
    return sorted(found)
