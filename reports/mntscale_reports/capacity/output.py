"""capacity: summary.md, index.html and the snippets written to --out, and the command line."""

import os
import sys

from .. import html
from ..plots import slug
from ..tables import markdown
from .figures import attribution_plot, metric_plot, overlay_plot
from .k8s import k8s_snippet
from .loading import CapacityError, load
from .model import EXIT_BAD_INPUT, EXIT_OK
from .reading import noisy_counts, sentence
from .tables import attribution_table, comparison_table, density_table, labels, slo_table


def noise_header(res):
    """The share of noisy invocations next to the rule that withholds the answer."""
    noisy, total = (sum(x) for x in zip(*(noisy_counts(d) for d in res.densities))) if res.densities else (0, 0)
    share = f" ({100 * noisy / total:.0f}%)" if total else ""
    return (f"Noise: {noisy} of {total} invocations{share} flagged noisy; the answer is withheld when at least "
            "half of those deciding it (N*'s density and the first failing one) were.")


def summary_markdown(results, sentences, snippets):
    lines = ["# mntscale capacity", ""]
    if len(results) > 1:
        lines += [markdown(comparison_table(results)), ""]
    for label, r, s, k in zip(labels(results), results, sentences, snippets):
        lines += [f"## {label or os.path.basename(r.path)}" if len(results) > 1 else f"## {os.path.basename(r.path)}",
                  "", f"**{s}**", "", noise_header(r), "", markdown(slo_table(r)), markdown(density_table(r)),
                  markdown(attribution_table(r)), "Kubernetes (not applied):", "", "```sh", k.rstrip(), "```", ""]
    return "\n".join(lines)


def _snippet_name(results, i, r):
    """k8s-capacity.sh, or k8s-capacity-I-FILE.sh per result (I keeps two files of one name apart)."""
    stem = slug(os.path.splitext(os.path.basename(r.path))[0])
    return "k8s-capacity.sh" if len(results) == 1 else f"k8s-capacity-{i + 1}-{stem}.sh"


def write(results, outdir):
    """Plots, index.html, summary.md and the Kubernetes snippets in ``outdir``; returns summary text."""
    sentences = [sentence(r) for r in results]
    snippets = [k8s_snippet(r) for r in results]
    plots = []
    if len(results) > 1:
        plots.append(overlay_plot(results, outdir))
    for i, r in enumerate(results):
        suffix = "" if len(results) == 1 else f"-{i + 1}"
        plots += [metric_plot(r, outdir, "capacity-metrics" + suffix),
                  attribution_plot(r, outdir, "capacity-attribution" + suffix)]
    several = len(results) > 1
    pages = []
    for i, (label, r) in enumerate(zip(labels(results), results)):
        own = plots[(1 if several else 0) + 2 * i:][:2]
        pages.append({"label": label if several else None, "sentence": sentences[i], "slo": slo_table(r),
                      "plots": own, "densities": density_table(r), "attribution": attribution_table(r),
                      "snippet_name": _snippet_name(results, i, r), "snippet": snippets[i]})
    page = html.render("capacity.html", title="mntscale capacity", heading="mntscale capacity",
                       sentences=sentences, comparison=comparison_table(results) if several else None,
                       overlay=plots[0] if several else None, results=pages)
    summary = summary_markdown(results, sentences, snippets)
    files = {"index.html": page, "summary.md": summary}
    files.update({_snippet_name(results, i, r): s for i, (r, s) in enumerate(zip(results, snippets))})
    for name, text in files.items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
    return summary



# --- command line ----------------------------------------------------------------------------

def cmd_capacity(args, check_outputs=None):
    if check_outputs and args.out and not check_outputs([("--out", args.out, "directory")]):
        return EXIT_BAD_INPUT
    seen = set()
    for path in args.inputs:
        if os.path.realpath(path) in seen:
            print(f"mntscale_report: {path!r} is given more than once", file=sys.stderr)
            return EXIT_BAD_INPUT
        seen.add(os.path.realpath(path))
    results = []
    for path in args.inputs:
        try:
            results.append(load(path))
        except CapacityError as e:
            print(f"mntscale_report: not a capacity result: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        print(write(results, args.out))
        print(f"wrote {os.path.join(args.out, 'index.html')}")
    else:
        print(summary_markdown(results, [sentence(r) for r in results], [k8s_snippet(r) for r in results]))
    return EXIT_OK


def add_parser(sub, check_outputs=None):
    c = sub.add_parser("capacity", help="N*, the curves, the answer sentence and a Kubernetes snippet from "
                                        "`mntscale capacity` results; several files are compared")
    c.add_argument("inputs", nargs="+", metavar="CAPACITY_JSON")
    c.add_argument("--out", help="directory for index.html, summary.md, PNG/SVG plots and k8s-capacity*.sh")
    c.set_defaults(func=lambda args: cmd_capacity(args, check_outputs))
