"""benchmarks/run.py assembles docs/benchmarks.md from sections that may come from separate runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_run():
    spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rerunning_some_sections_keeps_the_others(tmp_path, monkeypatch):
    run = load_run()
    calls = []

    def fake_section(name, folder):  # the sections' own scripts are exercised by their own tests
        calls.append(name)
        return f"# {name.title()}\n\n| figure |\n|---|\n| {name}-{len(calls)} |\n", {"value": len(calls)}

    monkeypatch.setattr(run, "run_section", fake_section)
    out = tmp_path / "benchmarks.md"
    assert run.main(["--sections", "speed", "motion", "--out", str(out)]) == 0
    text = out.read_text()
    assert "speed-1" in text and "motion-2" in text
    assert "Not measured yet: accuracy, ablation, product, detect, people, world, multiview, camera, hands, fingers, swaps, detector_errors, keyframes, blender, scale" in text

    assert run.main(["--sections", "scale", "speed", "--out", str(out)]) == 0
    text = out.read_text()
    assert "motion-2" in text, "a section not rerun must be kept"
    assert "speed-4" in text and "speed-1" not in text, "a rerun section must be replaced"
    assert "scale-3" in text
    assert "Not measured yet: accuracy, ablation, product, detect, people, world, multiview, camera, hands, fingers, swaps, detector_errors, keyframes, blender (" in text
    # Canonical order whatever the order asked for, each section stamped with its own command.
    assert text.index("## Speed") < text.index("## Motion") < text.index("## Scale")
    assert "`python benchmarks/run.py --sections scale`" in text
    figures = json.loads(out.with_suffix(".json").read_text())
    assert list(figures) == ["speed", "motion", "scale"]
    assert figures["motion"]["figures"] == {"value": 2}
