"""A preset naming scenarios the binary lacks still runs the rest, and says what it dropped."""

import json
import os
import types

from kmatrix import cli

LIST = json.dumps({"schema": "mntscale-list/1", "ops": ["open", "stat"], "scenarios": [
    {"name": "path_walk", "axes": [{"name": "containers"}], "claims": []},
    {"name": "farm_build", "axes": [{"name": "containers"}], "claims": []}]})


def test_unknown_scenarios_are_dropped_and_noted(tmp_path):
    binary = tmp_path / "mntscale"
    binary.write_text("#!/bin/sh\ncat <<'X'\n" + LIST + "\nX\n")
    binary.chmod(0o755)
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"name": "p", "version": 1, "scenarios": [
        {"scenario": "path_walk", "set": {"containers": "1"}},
        {"scenario": "mount_table_read", "set": {}}]}))
    out = tmp_path / "out"
    out.mkdir()
    opts = types.SimpleNamespace(preset=str(preset), source_dir=str(tmp_path), binary=str(binary),
                                 out=str(out), run_args="", quiet_guest=False)
    cli.prepare_preset(opts)
    assert opts.preset == str(out / "preset.json")
    kept = json.load(open(opts.preset))["scenarios"]
    assert [s["scenario"] for s in kept] == ["path_walk"]
    assert "mount_table_read" in opts.preset_note
    assert cli.mntscale_args(opts) == ["--preset", str(out / "preset.json")]
    assert cli.mntscale_args(opts, guest=True) == ["--preset", cli.GUEST_PRESET]


def test_default_preset_exists():
    """Regression: the default was 'nightly', which no file in presets/ is."""
    assert os.path.isfile(os.path.join(cli.SOURCE_DIR, "presets", cli.DEFAULT_PRESET + ".json"))


def test_scenarios_come_from_list_json_not_text(tmp_path):
    binary = tmp_path / "mntscale"
    binary.write_text("#!/bin/sh\n[ \"$2\" = --json ] || exit 9\ncat <<'X'\n" + LIST + "\nX\n")
    binary.chmod(0o755)
    assert cli.binary_scenarios(str(binary)) == {"path_walk", "farm_build"}
