"""A real headless Chromium for the end-to-end tests, and axe-core to audit pages.

Chromium is Debian's ``chromium`` package, driven by Playwright. Without it
the browser tests are skipped, except under ``CI=true``, where that is an
error (``.ci/run`` installs it). axe-core is fetched once from the npm
registry, checked against its published SHA-512, and cached.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

AXE_VERSION = "4.14.1"
AXE_URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
AXE_SHA512 = (
    "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
)
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    _unavailable("chromium is not installed (apt-get install chromium)")
    raise AssertionError  # unreachable: skip and fail raise


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )


def axe_source() -> str:
    """Return axe.min.js, fetching and verifying it on first use."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = cache / "django-charon-sessions" / f"axe-core-{AXE_VERSION}.min.js"
    if not path.exists():
        try:
            with urllib.request.urlopen(AXE_URL, timeout=30) as response:
                tarball = response.read()
        except OSError as exc:
            _unavailable(f"cannot fetch axe-core from the npm registry: {exc}")
        digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        assert digest == AXE_SHA512, "axe-core tarball does not match its published hash"
        with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None
            script = member.read()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(script)
    return path.read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core in ``page`` (WCAG 2.1 A and AA, and best practices)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    result: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                             "best-practice"]},
        })"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def tab_order(page: Any, limit: int = 200) -> list[str]:
    """Press Tab from the top of the page until focus comes round again.

    Return the accessible names (aria-label, value or text) of the elements
    focused, in order.
    """
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
    names: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        name = page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el || el === document.body) return null;
                if (el.dataset.charonVisited) return null;
                el.dataset.charonVisited = "1";
                return (el.getAttribute("aria-label") || el.value || el.innerText || "").trim();
            }"""
        )
        if name is None:
            return names
        names.append(name)
    raise AssertionError(f"focus did not come round after {limit} presses of Tab")
