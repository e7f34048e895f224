"""The benchmark script: table structure and report entry (timings are not asserted: see the README)."""

from __future__ import annotations

import json

import pytest

from algm_export.bench import main, speed_table


@pytest.mark.slow  # every backend, INT8 calibration, outputs, research-style and predict timings: ~3 minutes
def test_bench_prints_table_and_stores_speed(research_checkpoint, tmp_path, capsys):
    code = main([str(research_checkpoint), "-o", str(tmp_path), "--image-size", "256", "--batches", "1,2",
                 "--runs", "2", "--warmup", "1", "--int8", "--frames", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    speed = json.loads((tmp_path / "report.json").read_text())["speed"]
    if speed["tensorrt"]["status"] != "skipped":
        pytest.skip("TensorRT ran here: this test checks the rows and skip reason of a machine without it")
    rows = speed["rows"]
    assert [(r["backend"], r["precision"], r["batch"]) for r in rows] == [
        (name, precision, batch) for batch in (1, 2)
        for name, precision in (("pytorch dense", "fp32"), ("pytorch ALGM", "fp32"), ("onnxruntime dense", "fp32"),
                                ("onnxruntime ALGM", "fp32"), ("onnxruntime dense", "int8"),
                                ("onnxruntime ALGM", "int8"))]
    for row in rows:
        assert row["latency_ms"] > 0 and row["images_per_s"] > 0
        assert (row["token_counts"] is None) == ("dense" in row["backend"])
        if row["backend"] == "pytorch dense":
            assert row["speedup_vs_pytorch_dense"] == 1.0
    algm_rows = [r for r in rows if "ALGM" in r["backend"]]
    # every batch size runs the same 2 images (max of --batches): batch 1 twice, batch 2 once
    assert all(len(r["token_counts"]) == 2 and all(c[0] < 257 for c in r["token_counts"]) for r in algm_rows)
    assert all(r["token_counts"] == algm_rows[0]["token_counts"] for r in algm_rows)
    assert speed["padded_work_share"]["1"] == 1.0 and speed["padded_work_share"]["2"] >= 1.0
    assert speed["onnxruntime_speedup_over_flop_ratio"]["2"] == pytest.approx(
        speed["onnxruntime_algm_speedup_over_dense"]["2"] / speed["flop_ratio_dense_over_algm"]["2"], abs=2e-3)
    assert all(ratio > 1.0 for ratio in speed["flop_ratio_dense_over_algm"].values())
    assert 0.0 < speed["merge_unmerge_time_share_onnxruntime"] < 1.0
    int8 = speed["onnxruntime_int8_algm"]
    assert set(int8) == {"1", "2"} and all(entry["latency_vs_fp32_algm"] > 0 for entry in int8.values())
    assert all(entry["flop_ratio_dense_over_algm"] == speed["flop_ratio_dense_over_algm"][batch]
               for batch, entry in int8.items())
    assert "ONNX Runtime INT8 ALGM speedup over FP32 dense: batch 1:" in printed and "x1.2 = " in printed
    headroom = speed["onnxruntime_int8_headroom"]
    counts = speed["onnxruntime_int8_matmuls"]  # mixed precision: how many of the scope's MatMuls stayed INT8
    assert counts["ALGM"]["scope_matmuls"] == 41 and counts["dense"]["scope_matmuls"] == 59
    quantized = counts["ALGM"]["int8_matmuls"]
    assert headroom["quantized_matmuls"] == quantized > 0 and 0 < headroom["quantized_share_of_fp32_time"] < 1
    assert f"INT8 changes only the {quantized} quantized Linear MatMuls" in printed
    # ONNX Runtime fuses every quantized MatMul into an integer kernel (which one runs inside differs by CPU)
    kernels = headroom["kernels"]
    assert sum(n for op, n in kernels.items() if op != "QuantizeLinear") == quantized
    assert "ONNX Runtime kernels of the INT8 ALGM graph on this CPU: " + ", ".join(
        f"{n} {op}" for op, n in kernels.items()) in printed
    assert f"INT8 MatMuls (mixed precision): dense {counts['dense']['int8_matmuls']} of 59, ALGM {quantized} of 41" \
        in printed
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


def test_gpu_rows_report_copies_apart(tiny_model):
    from algm_export.bench import Timing, speed_record, speed_table

    timings = [Timing("pytorch dense", "fp32", 1, 100.0, None), Timing("onnxruntime dense", "fp32", 1, 50.0, None),
               Timing("onnxruntime ALGM", "fp32", 1, 25.0, [[755, 539]]),
               Timing("pytorch dense (cuda)", "fp32", 1, 4.0, None, 0.3, 2.5),
               Timing("tensorrt ALGM", "fp16", 1, 1.0, [[755, 539]], 0.3, 0.1)]
    speed = speed_record(timings, {1: 1.8}, 0.02, 5, 1, (512, 512), tiny_model)
    rows = {r["backend"]: r for r in speed["rows"]}
    assert "copy_in_ms" not in rows["onnxruntime ALGM"]  # CPU rows: the run is the whole cost
    assert rows["tensorrt ALGM"]["copy_out_ms"] == 0.1 and rows["tensorrt ALGM"]["latency_ms"] == 1.0
    assert rows["tensorrt ALGM"]["speedup_vs_pytorch_dense"] == 4.0  # against PyTorch on the same GPU
    table = speed_table(speed)
    assert "tensorrt ALGM batch 1: in 0.30 ms, out 0.10 ms" in table
    assert "755 -> 539" in table  # the mean per-image counts after each merge
    assert "ONNX Runtime speedup / FLOP ratio: batch 1: 1.11" in table  # dense 50 ms / ALGM 25 ms over 1.8


def test_backends_take_turns_and_keep_their_own_counts():
    """time_interleaved runs the backends round-robin after each one's warm-up, and returns each backend's own
    token counts with its median."""
    import numpy as np

    from algm_export.bench import time_interleaved

    calls = []

    class Fake:
        def __init__(self, name, counts):
            self.name, self.counts = name, counts

        def run(self, images, outputs):
            calls.append(self.name)
            return type("Prediction", (), {"token_counts": None if self.counts is None else np.array(self.counts)})()

    results = time_interleaved([Fake("a", [[9, 5]]), Fake("b", None)], [np.zeros((1, 3, 8, 8))], warmup=2, runs=3)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert [counts for _, counts in results] == [[[9, 5]], None]
    assert all(latency >= 0 for latency, _ in results)
    calls.clear()  # two batches per pass: each pass runs both, the counts follow the batches in turn
    results = time_interleaved([Fake("a", [[9, 5]]), Fake("b", None)], [np.zeros((1, 3, 8, 8))] * 2, warmup=1,
                               runs=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "a", "b", "b"] * 2
    assert [counts for _, counts in results] == [[[9, 5], [9, 5]], None]


def test_padded_work_share_counts_each_batch_padded_to_its_longest_image():
    """Consecutive batches of the images, each image padded to its batch's longest after each merge."""
    from algm_export.bench.records import padded_work_share

    counts = [[10, 5], [4, 2], [6, 3]]  # [images][merges]: 30 real tokens
    assert padded_work_share(counts, 1) == 1.0
    # batch 2: (10, 5) and (4, 2) padded to 10 and 5: 30 tokens; (6, 3) alone: 9; all three at once would be 45
    assert padded_work_share(counts, 2) == pytest.approx(39 / 30)
    assert padded_work_share(counts, 3) == pytest.approx(45 / 30)
    assert padded_work_share([[7, 3]] * 4, 4) == 1.0, "equal counts: nothing padded"
