"""Property tests (Debian's python3-hypothesis, issue 14): hostile input never escapes the
loader or `compare` as anything but a LoadError with a reason.

Bounded for the test suite: EXAMPLES examples per test, about 20-30 s in all. For a longer
nightly run: MNTSCALE_HYPOTHESIS_EXAMPLES=20000 /usr/bin/python3 -m pytest tests/reports/test_property.py
"""

import json
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from mntscale_reports import compare, load

# Hypothesis caches data under its home directory, by default .hypothesis/ in the source tree.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "mntscale-hypothesis"))
EXAMPLES = int(os.environ.get("MNTSCALE_HYPOTHESIS_EXAMPLES", "300"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Any JSON value, including what Python's json module reads beyond the standard:
# NaN, ±Infinity and integers of any size.
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2 ** 63),
                    st.floats(), st.text(max_size=6))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=8)


# A valid document, cheap to draw: two points, a few invocations each, sometimes zero throughput.
throughput = st.one_of(st.just(0.0), st.floats(min_value=1.0, max_value=1e7), st.integers(1, 10 ** 7))
entry = st.builds(
    lambda name, inv, x, ips, windows: {
        "name": name, "run_name": name, "run_type": "iteration", "invocation": inv, "repetition_index": 0,
        "scenario": "path_walk", "params": {"containers": x, "workers": 1, "placement": "spread"},
        "items_per_second": ips, "real_time": 1e9 / ips if ips else 0.0, "windows": windows},
    st.sampled_from(["p/a", "p/b"]), st.integers(0, 4), st.integers(1, 3), throughput,
    st.lists(throughput, max_size=3))
skipped = st.builds(lambda r: {"name": "p/s", "run_type": "iteration", "skipped": r, "error_occurred": True},
                    st.sampled_from(["unsupported: x", "skipped: y"]))
valid_document = st.builds(
    lambda entries, complete, release: {
        "schema": "mntscale-result", "schema_version": 1, "complete": complete,
        "context": {"kernel": {"release": release}, "machine": {"name": "vm"}, "placement": "spread"},
        "benchmarks": entries},
    st.lists(st.one_of(entry, entry, entry, skipped), max_size=12), st.booleans(), st.sampled_from(["6.1", "6.18"]))


def _slots(node, out):
    """Every (container, key) in a document, for mutations."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append((node, key))
        _slots(child, out)
    return out


def hostile(data, doc):
    """``doc`` with up to three of its values replaced by any JSON value, or deleted."""
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        slots = _slots(doc, [])
        if not slots:
            break
        node, key = data.draw(st.sampled_from(slots), label="slot")
        if isinstance(node, dict) and data.draw(st.booleans(), label="delete"):
            del node[key]
        else:
            node[key] = data.draw(json_values, label="value")
    return doc


def _parse(name, doc):
    """parse() returns a result or raises LoadError naming the file; nothing else escapes."""
    try:
        return load.parse(name, doc)
    except load.LoadError as e:
        assert e.path == name and e.reason
        return None


@BOUNDED
@given(json_values)
def test_loader_rejects_any_json_value_cleanly(doc):
    _parse("any.json", doc)


@BOUNDED
@given(st.data())
def test_loader_and_compare_never_raise_on_hostile_documents(data):
    doc_a, doc_b = (hostile(data, data.draw(valid_document, label=side)) for side in "AB")
    a, b = _parse("a.json", doc_a), _parse("b.json", doc_b)
    for r in (a, b):
        if r is not None:  # what loaded is what later stages trust
            assert isinstance(r.complete, bool)
            assert all(isinstance(p.run_name, str) and isinstance(p.params, dict) for p in r.points)
    if a is None or b is None:
        return
    result = compare.compare_results([a], [b], compare.Options(min_invocations=2))
    json.dumps(compare.to_json(result, [a.path], [b.path]))
    compare.to_markdown(result)
    compare.to_markdown(result, only_changes=True)


@BOUNDED
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 json_values.map(lambda v: json.dumps(v).encode()),
                 valid_document.map(lambda d: json.dumps(d).encode())))
def test_load_many_never_raises_on_any_file_content(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("prop") / "r.json"
    path.write_bytes(data)
    results, errors = load.load_many([str(path)])
    assert len(results) + len(errors) == 1
    assert all(e.path == str(path) and e.reason for e in errors)
