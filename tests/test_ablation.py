"""The readings-against-twin ablation runs end to end: trains each run, resumes, and writes its table."""

import json

import pytest

from training import ablation

pytestmark = pytest.mark.slow  # trains every run of an ablation, for real


def test_ablation_trains_every_seed_and_tables_readings_against_the_twin(tmp_path, tiny_dataset):
    md = tmp_path / "ablation.md"
    args = ["--steps", "2", "--batch", "4", "--seeds", "0", "1", "--readings", "staged depth", "--jobs", "2",
            "--set", "frames=9", "width=16", "heads=2", "--data", str(tiny_dataset[0]), "--detections", str(tiny_dataset[1]),
            "--out", str(tmp_path / "runs"), "--eval-every", "1", "--every", "1", "--markdown", str(md)]
    assert ablation.main(args) == 0
    text = md.read_text()
    for needle in ("| staged depth | `posemoe-t27-staged` |", "| entangled twin | `baseline-t27` |", "seed 1 P1 / P2",
                   "Learning curves", "| staged depth | 1 | "):
        assert needle in text, needle
    rows = json.loads(md.with_suffix(".json").read_text())["rows"]
    assert [r["config"] for r in rows] == ["posemoe-t27-staged", "baseline-t27"]
    for row in rows:
        assert len(row["runs"]) == 2 and all(run["step"] == 2 and 0 < run["p2"] <= run["p1"] for run in row["runs"])
        assert sorted(row["runs"][0]["curve"]) == ["1", "2"]  # JSON keys
    seed0 = tmp_path / "runs" / "posemoe-t27-staged-seed0"
    saved = json.loads((seed0 / "config.json").read_text())
    assert saved["model"]["staged_depth"] and saved["model"]["width"] == 16 and saved["train"]["views_prob"] == 0.5
    # Run again with a longer schedule: the runs resume to it instead of starting over.
    assert ablation.main([*args[:1], "3", *args[2:]]) == 0
    assert json.loads((seed0 / "config.json").read_text())["step"] == 3
