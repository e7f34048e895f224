"""The benchmark script: table structure and report entry (timings are not asserted: see the README)."""

from __future__ import annotations

import json

from algm_export.bench import main, speed_table


def test_bench_prints_table_and_stores_speed(research_checkpoint, tmp_path, capsys):
    code = main([str(research_checkpoint), "-o", str(tmp_path), "--image-size", "256", "--batches", "1,2",
                 "--runs", "2", "--warmup", "1", "--frames", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    speed = json.loads((tmp_path / "report.json").read_text())["speed"]
    rows = speed["rows"]
    assert [(r["backend"], r["batch"]) for r in rows] == [
        (name, batch) for batch in (1, 2)
        for name in ("pytorch dense", "pytorch ALGM", "onnxruntime dense", "onnxruntime ALGM")]
    for row in rows:
        assert row["latency_ms"] > 0 and row["images_per_s"] > 0
        assert (row["token_counts"] is None) == ("dense" in row["backend"])
        if row["backend"] == "pytorch dense":
            assert row["speedup_vs_pytorch_dense"] == 1.0
    algm_rows = [r for r in rows if "ALGM" in r["backend"]]
    assert all(r["token_counts"][0] < 257 for r in algm_rows)
    assert all(ratio > 1.0 for ratio in speed["flop_ratio_dense_over_algm"].values())
    assert 0.0 < speed["merge_unmerge_time_share_onnxruntime"] < 1.0
    assert speed_table(speed) in printed
    choices = [(r["backend"], r["outputs"]) for r in speed["outputs"]]
    assert choices == [(b, o) for b in ("pytorch ALGM", "onnxruntime ALGM")
                       for o in ("labels", "scores", "logits", "labels,scores")]
    research = speed["research_style_pytorch"]
    assert research["ours_ms"] > 0 and research["research_style_ms"] > 0
    predict = speed["predict_1080p"]
    assert predict["status"] == "timed" and predict["frames"] == 1
    assert predict["dense_frames_per_s"] > 0 and predict["flop_ratio_dense_over_algm"] > 1.0
    assert "latency per output choice" in printed and "predict on 1 1920x1080 frames" in printed
    assert speed["tensorrt"]["status"] == "skipped" and "TensorRT" in speed["tensorrt"]["reason"]
    assert f"TensorRT rows: skipped ({speed['tensorrt']['reason']})" in printed
