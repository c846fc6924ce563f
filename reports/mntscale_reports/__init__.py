"""Reporting for mntscale result files: loading, plots, statistics, USL models, HTML.

The modules are importable on their own so that ci/ scripts can reuse, for
example, ``mntscale_reports.compare.compare_results`` without the CLI.
"""
