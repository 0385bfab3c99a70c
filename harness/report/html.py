"""``report.html``: the contrast report as one self-contained page.

One file that opens from disk with no network: the CSS is inline and every
figure is embedded as a ``data:`` URI (PNG; the SVG files sit next to it in
``plots/``).  All text from the runs is escaped.  A few lines of inline script
mark the page once its images have loaded (``<html data-images="N/M">``), which
is how tests/unit/test_contrast_browser.py checks it in a headless browser.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from harness.report.contrast import COLUMN_TITLES, Contrast, columns
from harness.report.plots import Plot

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; white-space: nowrap; }
tr.first td { border-top: 2px solid #888; }
td.scenario { font-weight: 600; background: #fafafa; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.kind { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; }
.note { color: #8a4b00; } code { font-size: 0.95em; }
"""

#: Sets ``<html data-images="loaded/total">`` once the page has loaded.
LOADED_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.documentElement.setAttribute("data-images", ok + "/" + imgs.length);
});
"""


def data_uri(path: Path, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _kernels(c: Contrast) -> str:
    from harness.report.plots import KIND_COLOURS

    out = ["<table id=\"kernels\"><thead><tr><th>kernel</th><th>version</th>"
           "<th>what it does with a removed memcg's pages</th><th>run</th><th>exit</th>"
           "</tr></thead><tbody>"]
    for k in c.kernels:
        colour = KIND_COLOURS.get(k.kind, KIND_COLOURS["other"])
        out.append(
            f"<tr data-kernel=\"{escape(k.key)}\"><td><span class=\"kind\" "
            f"style=\"background:{colour}\"></span>{escape(k.label)}</td>"
            f"<td>{escape(k.version)}</td><td>{escape(k.behaviour)}</td>"
            f"<td><code>{escape('/'.join(k.run_dir.parts[-2:]))}</code></td>"
            f"<td class=\"num\">{'-' if k.exit_code is None else k.exit_code}</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _table(c: Contrast) -> str:
    out = ["<table id=\"contrast\"><thead><tr><th>scenario</th><th>kernel</th>"
           + "".join(f"<th>{escape(t)}</th>" for t in COLUMN_TITLES.values())
           + "</tr></thead><tbody>"]
    for row in c.rows:
        ks = [k for k in c.kernels if k.key in row.cells]
        for i, k in enumerate(ks):
            cols = columns(row.cells[k.key])
            first = i == 0
            head = (f"<td class=\"scenario\" rowspan=\"{len(ks)}\">{escape(row.label)}</td>"
                    if first else "")
            out.append(f"<tr class=\"{'first' if first else 'more'}\" "
                       f"data-row=\"{escape(row.slug)}\" data-kernel=\"{escape(k.key)}\">"
                       f"{head}<td>{escape(k.label)}</td>"
                       + "".join(f"<td class=\"num\">{escape(cols[x])}</td>" for x in COLUMN_TITLES)
                       + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _figures(plots: list[Plot]) -> str:
    out = []
    for p in plots:
        out.append(f"<figure id=\"fig-{escape(p.name)}\"><img src=\"{data_uri(p.png)}\" "
                   f"alt=\"{escape(p.title)}\"><figcaption>{escape(p.caption)} "
                   f"(vector: <code>plots/{escape(p.svg.name)}</code>)</figcaption></figure>")
    return "\n".join(out)


def render(c: Contrast, plots: list[Plot], *, title: str = "Series versus upstream") -> str:
    """The page's text."""
    dying = [p for p in plots if p.name.startswith("dying-")]
    rest = [p for p in plots if not p.name.startswith("dying-")]
    notes = "".join(f"<li class=\"note\">{escape(n)}</li>" for n in c.notes)
    parts = [
        "<!DOCTYPE html>",
        "<html lang=\"en\">",
        "<head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>",
        "<body>",
        f"<h1>{escape(title)}: what happens to a removed memcg's memory</h1>",
        "<p>The same scenarios (the project's <code>scenarios</code> program, and "
        "<code>test_recharge</code> when it ran) on each kernel. A memcg that wrote or faulted "
        "memory is removed while another, live memcg keeps using that memory. On kernels "
        "without <code>vm.recharge_offline_memcgs</code> the cases only observe (their "
        "verdict is SKIP) and print the same measurements.</p>",
        "<h2>Kernels</h2>",
        _kernels(c),
        "<h2>Dying memcgs over time</h2>" if dying else "",
        _figures(dying),
        "<h2>Where the bytes ended up</h2>" if rest else "",
        _figures(rest),
        "<h2>Scenarios</h2>",
        "<p>Bytes are of the scenario's <code>memory.stat</code> key (file, shmem, anon). "
        "&le;/&ge;: memcgs were still dying, so userspace cannot tell dead memcgs from the "
        "parent (selftests/README, &ldquo;How parent and dead are told apart&rdquo;). "
        "&ldquo;never&rdquo;: the dying count was not back to its baseline within the "
        "window.</p>",
        _table(c),
        f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "",
        f"<script>{LOADED_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
