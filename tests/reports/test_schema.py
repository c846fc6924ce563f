"""docs/results-schema.json: valid, used by the loader, and matched by every valid result we have.

The smoke tests validate each result they produce (tests/smoke/check_schema.py); here the
fixtures, the example in docs/results-schema.md, and one real run of the binary.
"""

import glob
import json
import os
import re
import subprocess

import jsonschema
import pytest

from conftest import FIXTURES, ROOT
from mntscale_reports import load

# Fixtures that exist to be rejected.
INVALID_FIXTURES = {"report/malformed.json", "report/future-version.json",
                    "list.json"}  # list.json is `mntscale list --json`, not a result
BINARY = os.environ.get("MNTSCALE_BINARY", os.path.join(ROOT, "build", "mntscale"))


def _validator():
    with open(os.path.join(ROOT, "docs", "results-schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(doc):
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(doc)]


def _valid_fixtures(capacity=False):
    """Result fixtures; with capacity=True the `mntscale capacity` documents instead (their own
    format, docs/capacity.md, whose context is a run's context)."""
    paths = sorted(glob.glob(os.path.join(FIXTURES, "**", "*.json"), recursive=True))
    rel = [os.path.relpath(p, FIXTURES) for p in paths]
    return [p for p, r in zip(paths, rel)
            if r not in INVALID_FIXTURES and r.startswith("capacity" + os.sep) == capacity]


@pytest.mark.parametrize("path", _valid_fixtures(capacity=True), ids=lambda p: os.path.relpath(p, FIXTURES))
def test_capacity_fixture_context_matches_the_run_context_schema(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    schema = dict(_validator().schema)
    context = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/context"}
    cls = jsonschema.validators.validator_for(context)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in cls(context).iter_errors(doc["context"])]
    assert errors == []


def test_schema_is_a_valid_draft_2020_12_schema_and_the_loaders():
    assert _validator().schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert os.path.samefile(load.SCHEMA_FILE, os.path.join(ROOT, "docs", "results-schema.json"))


@pytest.mark.parametrize("path", _valid_fixtures(), ids=lambda p: os.path.relpath(p, FIXTURES))
def test_valid_fixture_matches_schema(path):
    with open(path, encoding="utf-8") as f:
        assert _errors(json.load(f)) == []


def test_invalid_fixtures_are_invalid():
    for rel in INVALID_FIXTURES:
        with pytest.raises(load.LoadError):
            load.load_file(os.path.join(FIXTURES, rel))


def test_example_in_results_schema_md_matches():
    """The annotated example in the Markdown doc (comments stripped) is a valid document."""
    with open(os.path.join(ROOT, "docs", "results-schema.md"), encoding="utf-8") as f:
        text = f.read()
    example = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    doc = json.loads(re.sub(r"\s*//[^\n]*", "", example))
    assert _errors(doc) == []


def test_unknown_keys_are_allowed_known_keys_are_typed():
    """Permissive for future fields (new sections under entries), strict on the types of known ones."""
    with open(os.path.join(FIXTURES, "report", "xeon-6.18.json"), encoding="utf-8") as f:
        doc = json.load(f)
    entry = doc["benchmarks"][0]
    entry["attribution"] = {"samples": 10, "waits": {"mount_lock": {"ns": 5, "count": 2}}}
    entry["future_section"] = {"anything": [1, "two", None]}
    doc["context"]["future_context"] = "x"
    assert _errors(doc) == []
    entry["iterations"] = "many"
    assert any("iterations" in e for e in _errors(doc))


def test_a_real_result_matches_schema_and_loads(tmp_path):
    """One short real run of the binary (root: real mounts)."""
    if not os.access(BINARY, os.X_OK):
        pytest.skip(f"no mntscale binary at {BINARY} (set MNTSCALE_BINARY)")
    if os.geteuid() != 0:
        pytest.skip("needs root for real mounts")
    out = tmp_path / "r.json"
    proc = subprocess.run([BINARY, "run", "--scenario", "path_walk", "--containers", "1", "--workers", "1",
                           "--layers", "1", "--warmup", "0.05", "--window", "0.05", "--windows", "2",
                           "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(out, encoding="utf-8") as f:
        doc = json.load(f)
    assert _errors(doc) == []
    result = load.load_file(str(out))
    assert result.complete and result.points
