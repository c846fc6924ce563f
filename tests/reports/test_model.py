"""The report computes its model once (model.py) and renders it; nothing rebuilds it per consumer."""

import collections
import os

from conftest import FIXTURES, REPORT_FIXTURES

from mntscale_reports import claims, findings, load, model, report, sweeps, tables, usl

LIST = os.path.join(FIXTURES, "list.json")


def _results():
    results, _errors = load.load_many([REPORT_FIXTURES])
    return results


def test_each_axis_is_swept_once_per_report(monkeypatch, tmp_path):
    built = collections.Counter()
    real = sweeps.build

    def counting(points, x_param):
        built[x_param] += 1
        return real(points, x_param)

    monkeypatch.setattr(sweeps, "build", counting)
    results = _results()
    rep = report.build(results, [], tmp_path, claims.obtain_list(LIST, None))
    report.write(rep, tmp_path)
    assert dict(built) == {"workers": 1, "containers": 1}
    assert rep.findings and rep.fits and any(p.files for p in rep.plots)


def test_points_are_loaded_into_the_model_once(monkeypatch, tmp_path):
    calls = []
    real = load.all_points
    monkeypatch.setattr(load, "all_points", lambda results: calls.append(1) or real(results))
    rep = report.build(_results(), [], tmp_path)
    report.write(rep, tmp_path)
    assert len(calls) == 1


def test_model_matches_what_each_consumer_computed_on_its_own():
    """The shared model says exactly what the per-consumer rebuilds said before it."""
    results = _results()
    scenarios = claims.obtain_list(LIST, None)
    m = model.build(results, scenarios)
    points = load.all_points(results)
    own_fits = usl.fit_points(points, "workers") + usl.fit_points(points, "containers")
    assert tables.markdown(tables.usl_table(m.fits)) == tables.markdown(tables.usl_table(own_fits))
    assert (tables.markdown(tables.density_table(m.density))
            == tables.markdown(tables.density_table(usl.density_table(points))))
    own = findings.compute(points, claims.evaluate(results, claims.relevant(scenarios, results)))
    assert [f.text for f in m.findings] == [f.text for f in own]
    assert set(m.sweeps) == set(model.AXES)
