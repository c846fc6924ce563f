#!/usr/bin/python3
"""Usage: check_schema.py RESULT.json...: each result must match docs/results-schema.json.

Issue 14: every result file the test suite produces is validated against the schema.
"""

import json
import os
import sys

import jsonschema

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "results-schema.json")

with open(SCHEMA, encoding="utf-8") as f:
    schema = json.load(f)
validator = jsonschema.validators.validator_for(schema)(schema)
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(json.load(f))]
    if errors:
        sys.exit(f"{path} does not match docs/results-schema.json:\n" + "\n".join(errors[:20]))
