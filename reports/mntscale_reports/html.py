"""The self-contained index.html pages: inline CSS, no scripts, images by relative path in OUTDIR.

Every page is a jinja2 template (templates/, autoescaped) extending templates/base.html;
templates/macros.html draws the tables, plots and findings the pages share.
"""

import functools
import os

import jinja2

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

SECTION_TITLES = {
    "headline-kernels": "Throughput vs containers, per kernel release",
    "headline-machines": "Throughput vs containers, per machine",
    "per-worker": "Per-worker throughput vs workers, per placement",
    "latency": "Latency percentiles",
    "time-split": "Kernel / user time split",
    "attribution": "Kernel time attribution",
}


@functools.lru_cache(maxsize=1)
def environment():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["ext"] = lambda name: os.path.splitext(name)[1][1:].upper()
    return env


def render(template, **context):
    """templates/TEMPLATE rendered with CONTEXT (values are escaped, never trusted as HTML)."""
    return environment().get_template(template).render(**context)


def plot_sections(plots):
    """[(section title, plots)] in SECTION_TITLES order, sections without plots left out."""
    sections = []
    for kind, title in SECTION_TITLES.items():
        members = [p for p in plots if p.kind == kind]
        if members:
            sections.append((title, members))
    return sections


def page(title, intro, tables_before, plots, tables_after, findings=None):
    """The report's document; tables_* are tables.Table lists around the plots; findings: sentences on top."""
    return render("report.html", title=title, heading=title, intro=intro, findings=findings or [],
                  tables_before=tables_before, sections=plot_sections(plots), tables_after=tables_after)
