"""Deployment outputs (labels / scores / logits) through PyTorch, ONNX Runtime portable, plugin and FP16 graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from algm_export.artifacts import parse_outputs
from algm_export.cli import main
from algm_export.errors import AlgmExportError
from algm_export.export.heads import keep_outputs
from algm_export.preprocess import make_batch
from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend
from algm_export.runtime.sliding import SlidingWindow
from algm_export.runtime.torch_backend import TorchBackend

CHOICES = [("labels",), ("scores",), ("logits",), ("labels", "scores")]
SHAPES = {"labels": ((2, 512, 512), np.int32), "scores": ((2, 150, 32, 32), np.float32),
          "logits": ((2, 150, 512, 512), np.float32)}


@pytest.fixture(scope="module")
def images(tiny_model, photos):
    return make_batch([photos["chelsea"], photos["rocket"]], (512, 512), tiny_model.config.normalization)


def _output_cases():
    """Every choice through every graph; the default run keeps every choice on the portable graph and the
    default choice on every graph."""
    for graph in ("portable", "plugin", "fp16"):
        for outputs in CHOICES:
            quick = graph == "portable" or outputs == ("labels", "scores")
            yield pytest.param(graph, outputs, id=f"{','.join(outputs)}-{graph}",
                               marks=() if quick else pytest.mark.slow)


@pytest.mark.parametrize("graph, outputs", _output_cases())
def test_every_output_through_every_graph(all_output_graphs, tiny_model, images, graph, outputs):
    """Each chosen output has its shape and type and is judged as verification judges its graph (FP32 or FP16
    criteria of verify/parity.py): decisions within eps of PyTorch's, float outputs within max_abs_logit of
    PyTorch replaying them, labels agreeing with that replay (FP16: near-ties forgiven). Token counts are
    compared through the decisions, not exactly: a near-tie may legitimately change a count."""
    from algm_export.verify.decisions import judge_merges
    from algm_export.verify.parity import CRITERIA, label_agreement

    criteria = CRITERIA["fp16" if graph == "fp16" else "fp32"]
    backend = OnnxRuntimeBackend(getattr(all_output_graphs, graph))
    torch_backend = TorchBackend(tiny_model, (512, 512))
    got = backend.run(images, outputs)
    assert sorted(got.outputs) == sorted(outputs)
    merge_inputs: list = []
    reference = torch_backend.replay(images, got.token_maps, ("labels", "scores", "logits"), merge_inputs)
    judged = judge_merges(got.token_maps, merge_inputs, tiny_model.algm, (32, 32), criteria["decision_epsilon"])
    assert max(m.required_epsilon for m in judged) <= criteria["decision_epsilon"]
    assert np.array_equal(got.token_counts, reference.token_counts), "counts follow from the maps"
    for name in outputs:
        shape, dtype = SHAPES[name]
        assert got.outputs[name].shape == shape and got.outputs[name].dtype == dtype
        if name == "labels":
            agreement = label_agreement(got.outputs[name], reference.logits, criteria["label_tie"])
            assert agreement >= criteria["label_agreement"], agreement
        else:
            difference = np.abs(got.outputs[name] - reference.outputs[name]).max()
            assert difference <= criteria["max_abs_logit"], difference


@pytest.mark.parametrize("outputs", CHOICES, ids=",".join)
def test_pytorch_outputs_agree_with_each_other(tiny_model, images, outputs):
    everything = TorchBackend(tiny_model, (512, 512)).run(images, ("labels", "scores", "logits"))
    chosen = TorchBackend(tiny_model, (512, 512)).run(images, outputs)
    for name in outputs:
        assert np.array_equal(chosen.outputs[name], everything.outputs[name])
    assert np.array_equal(everything.labels(), everything.logits.argmax(axis=1))
    assert np.array_equal(everything.scores.shape[2:], (32, 32))


def test_graph_labels_are_the_argmax_of_its_logits(all_output_graphs, images):
    got = OnnxRuntimeBackend(all_output_graphs.portable).run(images, ("labels", "logits"))
    assert (got.outputs["labels"] == got.logits.argmax(axis=1)).mean() >= 0.9999


def test_graph_outputs_and_metadata(all_output_graphs, pipeline_run):
    full = OnnxRuntimeBackend(all_output_graphs.portable)
    assert full.output_names == ["labels", "scores", "logits", "token_counts", "token_maps"]
    default = OnnxRuntimeBackend(pipeline_run[2] / "model.onnx")
    assert default.output_names == ["labels", "scores", "token_counts", "token_maps"]
    assert default.info.outputs == ("labels", "scores")
    assert default.info.windows.to_dict() == {"im_size": 512, "window_size": 512, "window_stride": 512}
    with pytest.raises(AlgmExportError, match="has no logits output"):
        default.run(np.zeros((1, 3, 512, 512), np.float32), ("logits",))


def test_pruned_graph_drops_the_unused_heads(all_output_graphs):
    model = onnx.load(all_output_graphs.portable)
    pruned = keep_outputs(model, ["scores", "token_counts", "token_maps"])
    heads = lambda m: sorted(n.name for n in m.graph.node if n.name.startswith("heads/"))  # noqa: E731
    assert {"heads/logits", "heads/scores", "heads/labels/crop"} <= set(heads(model))
    assert any(name.startswith("heads/labels/TopK") for name in heads(model))
    assert heads(pruned) == ["heads/scores"]
    assert [o.name for o in pruned.graph.output] == ["scores", "token_counts", "token_maps"]


def test_labels_only_graph_segments_window_sized_images_only(tmp_path, tiny_model, photos):
    from algm_export.export.onnx_export import export_graphs
    from algm_export.preprocess import resize_rgb

    graphs = export_graphs(tiny_model, tmp_path, (512, 512), outputs=("labels",))
    backend = OnnxRuntimeBackend(graphs.portable)
    assert backend.output_names == ["labels", "token_counts", "token_maps"]
    square = resize_rgb(photos["coffee"], (512, 512))
    labels = next(SlidingWindow(backend).segment([square]))
    assert labels.shape == (512, 512)
    with pytest.raises(AlgmExportError, match="outputs only labels"):
        next(SlidingWindow(backend).segment([photos["chelsea"]]))


def test_outputs_option_is_checked(capsys, research_checkpoint, tmp_path):
    assert parse_outputs("logits,labels") == ("labels", "logits")
    code = main([str(research_checkpoint), "--outputs", "labels,probabilities", "-o", str(tmp_path / "out")])
    assert code == 2
    assert "expected one or more of labels, scores, logits" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
