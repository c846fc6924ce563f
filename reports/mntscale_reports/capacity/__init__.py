"""The `capacity` subcommand: what `mntscale capacity --out FILE.json` found, for people and schedulers.

    mntscale_report.py capacity A.json [B.json ...] [--out DIR]

One result: each objective metric against N (log x) with its bound, N* and its 95% interval marked and
undecided densities marked as such; the attribution buckets against N below; one answer sentence.
Several results (kernels, machines, profiles, churn strategies): a table of their capacities and
the curves overlaid. Always a Kubernetes snippet (node labels and an extended-resource capacity
patch) that is printed and written, never applied. See docs/capacity.md.

The input is the JSON document the contract between the capacity command and this report fixes
(docs/capacity.md, "The result file"); anything else is refused with exit 2 before anything is drawn.

The subcommand in seven modules, each with one job:
- model: the fixed metrics, verdicts and endings, and the Capacity a file gives;
- loading: the schema check, the rules across fields and load (CapacityError);
- reading: what a result says, up to the answer sentence;
- k8s: the Kubernetes snippet;
- tables and figures: the tables and the plots;
- output: summary.md, index.html, the snippets, and the command line (add_parser).

The names the CLI and the tests use are re-exported here (`capacity.load`, `capacity.sentence`...).
"""

from .model import (EXIT_OK, EXIT_BAD_INPUT, MAX_FILE_BYTES, METRICS, OPS, VERDICTS, ENDED_BY, VERDICT_STYLE,
    LABEL_PREFIX, RAW_SECTIONS, RESOURCE, Capacity, flat_buckets, first_failing)
from .loading import CapacityError, SCHEMA_FILE, schema_validator, validate, load
from .reading import (attribution_unit, unsupported_reason, unsupported, metric_name, value_text,
    growing_bucket, ACTOR_NAMES, bucket_phrase, noisy_counts, decisive_noise, withheld, sentence)
from .k8s import label_value, publishable, k8s_snippet
from .tables import slo_table, density_table, attribution_table, context_label_parts, labels, comparison_table
from .figures import metric_plot, attribution_plot, overlay_plot
from .output import noise_header, summary_markdown, write, cmd_capacity, add_parser

__all__ = ['EXIT_OK', 'EXIT_BAD_INPUT', 'MAX_FILE_BYTES', 'METRICS', 'OPS', 'VERDICTS', 'ENDED_BY',
           'VERDICT_STYLE', 'LABEL_PREFIX', 'RAW_SECTIONS', 'RESOURCE', 'Capacity', 'flat_buckets',
           'first_failing', 'CapacityError', 'SCHEMA_FILE', 'schema_validator', 'validate', 'load',
           'attribution_unit', 'unsupported_reason', 'unsupported', 'metric_name', 'value_text',
           'growing_bucket', 'ACTOR_NAMES', 'bucket_phrase', 'noisy_counts', 'decisive_noise', 'withheld',
           'sentence', 'label_value', 'publishable', 'k8s_snippet', 'slo_table', 'density_table',
           'attribution_table', 'context_label_parts', 'labels', 'comparison_table', 'metric_plot',
           'attribution_plot', 'overlay_plot', 'noise_header', 'summary_markdown', 'write', 'cmd_capacity',
           'add_parser']
