"""machines: the report as Markdown, HTML and JSON, and writing them with the figures."""

import json
import os

from .. import html, tables
from .figures import render_plots
from .loading import _hex
from .model import KNEE_EFFICIENCY


def to_markdown(rep):
    lines = ["# mntscale machines", "", rep.intro(), "", "## Findings", ""]
    lines += [f"- {f}" for f in rep.findings] or ["(none)"]
    lines.append("")
    lines += [tables.markdown(t) for t in rep.tables]
    skipped = [f for f in rep.plots if f.skipped]
    if skipped:
        lines += ["### Plots not drawn", ""] + [f"- {f.title}: {f.skipped}" for f in skipped] + [""]
    return "\n".join(lines)


def to_html(rep):
    return html.render("machines.html", title="mntscale machines", heading="mntscale: machines compared",
                       intro=rep.intro(), findings=rep.findings or ["(none)"], tables_before=rep.tables[:2],
                       plots=rep.plots, tables_after=rep.tables[2:], errors=rep.errors)


def to_json(rep):
    return {
        "schema": "mntscale-machines", "schema_version": 1, "sampling_unit": "invocation",
        "knee_efficiency": KNEE_EFFICIENCY,
        "machines": [{"name": m.name, "directory": m.directory, "color": _hex(m.color), "files": m.invocations,
                      "topology": m.topology} for m in rep.machines],
        "findings": rep.findings,
        "tables": [{"title": t.title, "headers": t.headers, "rows": t.rows} for t in rep.tables],
        "unsupported": rep.unsupported,
        "plots": [{"kind": f.kind, "title": f.title, "files": f.files, "skipped": f.skipped} for f in rep.plots],
        "lines": rep.drawn,
        "panels": rep.panels,
    }


def write(rep, outdir):
    os.makedirs(outdir, exist_ok=True)
    render_plots(rep, outdir)
    for name, text in (("index.html", to_html(rep)), ("summary.md", to_markdown(rep)),
                       ("machines.json", json.dumps(to_json(rep), indent=1, ensure_ascii=False) + "\n")):
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
