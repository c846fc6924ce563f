"""The committed fixtures are exactly what make_fixtures.py generates (deterministic)."""

import os

import make_fixtures
from conftest import FIXTURES


def test_fixtures_are_current():
    for rel, text in make_fixtures.fixtures().items():
        with open(os.path.join(FIXTURES, rel), encoding="utf-8") as f:
            assert f.read() == text, f"{rel} is stale: run tests/reports/make_fixtures.py"
