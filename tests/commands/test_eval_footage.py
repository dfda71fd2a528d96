"""`edge-agent eval-footage` on the committed demo footage and its ground truth."""

from __future__ import annotations

import json

from edge_agent.cli import main
from tests.support.paths import REPO

SAMPLES = REPO / "samples"


def test_demo_footage_is_counted_close_to_the_truth(tmp_path, capsys):
    out = tmp_path / "footage.json"
    code = main(["eval-footage", str(SAMPLES / "demo.mp4"), str(SAMPLES / "demo_truth.json"),
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    truth = json.loads((SAMPLES / "demo_truth.json").read_text())
    countable = [p for p in truth["people"] if p["visible_face_s"]]
    assert result["truth_people"] == len(countable)
    assert abs(result["predicted_people"] - len(countable)) <= 1
    assert result["matched_people"] >= len(countable) - 1
    assert result["median_dwell_error_s"] < 1.0
    assert result["viewer_recall_pct"] >= 80 and result["viewer_precision_pct"] >= 80
    assert "count_error_pct" in capsys.readouterr().out
