"""report.html in a real headless browser (Debian's ``chromium``): it renders from disk,
every embedded image loads, the table has every kernel.  Skipped, with the reason, when
no browser is installed (``apt-get install chromium``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.modes import contrast

from contrast_fakes import make_four

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
KERNEL_KEYS = ("6.12", "6.12+series@0", "6.12+series@1", "7.2")


def _browser() -> str | None:
    env = os.environ.get("RECHARGE_HARNESS_BROWSER")
    if env:
        return env if shutil.which(env) else None
    return next((b for b in map(shutil.which, BROWSERS) if b), None)


BROWSER = _browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser installed (apt-get install chromium; or set "
    "RECHARGE_HARNESS_BROWSER): report.html is checked only by the other contrast tests")


def _headless(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The browser, headless, with a private profile (nothing of the user's) and no network
    (a proxy that does not exist: a page that needed the network would fail to load)."""
    assert BROWSER is not None
    env = dict(os.environ, HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_CACHE_HOME=str(tmp / "cache"))
    argv = [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            "--disable-dev-shm-usage", "--disable-extensions", f"--user-data-dir={tmp / 'profile'}",
            "--proxy-server=127.0.0.1:9", "--virtual-time-budget=5000", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contrast-browser")
    out = root / "report"
    out.mkdir()
    res = contrast.write_report(make_four(root / "runs"), out,
                                ["base", "series-0", "series-1", "upstream"])
    assert res.exit_code == 0
    # Only the page goes to the browser: it must not need plots/ or anything else.
    alone = root / "alone"
    alone.mkdir()
    shutil.copy(out / "report.html", alone / "report.html")
    return alone / "report.html"


def test_page_renders_images_load_and_every_kernel_is_there(report: Path, tmp_path: Path) -> None:
    res = _headless(tmp_path, "--dump-dom", report.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    m = re.search(r'<html[^>]*\sdata-images="(\d+)/(\d+)"', dom)
    assert m is not None, "the page's load script did not run: " + dom[:500]
    loaded, total = int(m.group(1)), int(m.group(2))
    assert total == 3 and loaded == total, f"{loaded} of {total} images loaded"
    table = dom[dom.index('<table id="contrast"'):]
    table = table[:table.index("</table>")]
    for key in KERNEL_KEYS:
        assert f'data-kernel="{key}"' in table, key
        assert f'<tr data-kernel="{key}">' in dom  # the kernels' legend
    assert table.count("<tr ") == 5 * len(KERNEL_KEYS)  # 5 scenario rows x 4 kernels


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    res = _headless(tmp_path, "--hide-scrollbars", "--window-size=1280,2400",
                    f"--screenshot={shot}", report.as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from PIL import Image  # matplotlib's own dependency

    with Image.open(shot) as img:
        assert img.size == (1280, 2400)
        colours = img.convert("RGB").resize((64, 120)).getcolors(maxcolors=64 * 120)
    assert colours is not None and len(colours) > 20  # text, figures, table: not a blank page
    # The figures' colours are on the page (the series' green, 7.2's pink, from the plots).
    rgb = {c for _, c in colours}
    assert any(g > 120 and r < 80 for r, g, _b in rgb), "no figure green on the screenshot"
