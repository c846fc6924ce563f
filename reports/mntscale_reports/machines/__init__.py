"""Compare machines (issue 13): one directory of invocation files per machine.

The subcommand in five modules, each with one job:
- loading: the directories into Machines (MachinesError on bad input);
- model: the metrics, series and ratios, and the Report (definitions in its docstring);
- tables: the tables and findings (build);
- figures: the plots (render_plots);
- output: Markdown, HTML, JSON and write.

The names the CLI and the tests use are re-exported here (`machines.build`, `machines.write`...).
"""

from .loading import COLORS, MachinesError, Machine, load_machines
from .model import (THROUGHPUT, KNEE_EFFICIENCY, SCALING_SCENARIO, CHURN_SCENARIO, STORM_SCENARIO, SPREAD,
    SOCKET0, SMT_OFF, PLACEMENT_ORDER, LINE_AXES, NOT_AVAILABLE, cores_used, per_core, samples, mean,
    spread_of, Ratio, ratio, density_of, density_label, scaling, densities, placements, efficiency, knee,
    sustained, cores_of, CHURN_PLACES, churn_groups, STORM_METRICS, storm_points, html_ns, Report)
from .tables import NOISY_WARN, MIN_INVOCATIONS, build
from .figures import FORMATS, Figure, render_plots
from .output import to_markdown, to_html, to_json, write

__all__ = ['COLORS', 'MachinesError', 'Machine', 'load_machines', 'THROUGHPUT', 'KNEE_EFFICIENCY',
           'SCALING_SCENARIO', 'CHURN_SCENARIO', 'STORM_SCENARIO', 'SPREAD', 'SOCKET0', 'SMT_OFF',
           'PLACEMENT_ORDER', 'LINE_AXES', 'NOT_AVAILABLE', 'cores_used', 'per_core', 'samples', 'mean',
           'spread_of', 'Ratio', 'ratio', 'density_of', 'density_label', 'scaling', 'densities', 'placements',
           'efficiency', 'knee', 'sustained', 'cores_of', 'CHURN_PLACES', 'churn_groups', 'STORM_METRICS',
           'storm_points', 'html_ns', 'Report', 'NOISY_WARN', 'MIN_INVOCATIONS', 'build', 'FORMATS', 'Figure',
           'render_plots', 'to_markdown', 'to_html', 'to_json', 'write']
