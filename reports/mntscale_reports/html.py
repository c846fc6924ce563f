"""The self-contained index.html: inline CSS, no scripts, images by relative path in OUTDIR."""

import html
import os

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 12px; } .skipped { color: #8a5a00; }
.error { color: #a00; }
#findings { background: #f4f8ff; border: 1px solid #c8d8f0; padding: .2em 1em; max-width: 70em; }
#findings li { margin: .3em 0; }
"""

SECTION_TITLES = {
    "headline-kernels": "Throughput vs containers, per kernel release",
    "headline-machines": "Throughput vs containers, per machine",
    "per-worker": "Per-worker throughput vs workers, per placement",
    "latency": "Latency percentiles",
    "time-split": "Kernel / user time split",
    "attribution": "Kernel time attribution",
}


def esc(v):
    return html.escape(str(v), quote=True)


def render_table(table):
    parts = [f"<h2>{esc(table.title)}</h2>"]
    if table.note:
        parts.append(f'<p class="note">{esc(table.note)}</p>')
    if not table.rows:
        parts.append("<p>(none)</p>")
        return "\n".join(parts)
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>")
    return "\n".join(parts)


def render_plot(plot):
    if plot.skipped:
        return f'<p class="skipped">{esc(plot.title)}: skipped — {esc(plot.skipped)}.</p>'
    links = " · ".join(f'<a href="{esc(f)}">{esc(os.path.splitext(f)[1][1:].upper())}</a>' for f in plot.files)
    return (f'<figure><img src="{esc(plot.image)}" alt="{esc(plot.title)}">'
            f"<figcaption>{esc(plot.title)} ({links})</figcaption></figure>")


def render_plots(plots):
    parts = []
    for kind, title in SECTION_TITLES.items():
        members = [p for p in plots if p.kind == kind]
        if members:
            parts.append(f"<h2>{esc(title)}</h2>")
            parts += [render_plot(p) for p in members]
    return "\n".join(parts)


def render_findings(findings, title="Findings"):
    items = "\n".join(f"<li>{esc(f)}</li>" for f in findings)
    return f'<section id="findings"><h2>{esc(title)}</h2>\n<ul>\n{items}\n</ul></section>'


def page(title, intro, tables_before, plots, tables_after, findings=None):
    """The whole document; tables_* are tables.Table lists around the plots; findings: sentences on top."""
    body = [f"<h1>{esc(title)}</h1>", f"<p>{esc(intro)}</p>"]
    if findings:
        body.append(render_findings(findings))
    body += [render_table(t) for t in tables_before]
    body.append(render_plots(plots))
    body += [render_table(t) for t in tables_after]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
