"""One backend registry (algm_export/backends.py) drives the pipeline, verify, build and the Triton repository:
each row is what the commands write and report, and no second list of backends exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from algm_export import backends
from algm_export.arguments import ENGINES
from algm_export.backends import BACKENDS, BY_NAME, ONNXRUNTIME_GRAPHS, ORT_OPS, PRECISIONS, TENSORRT
from algm_export.verify.parity import CRITERIA

ROOT = Path(__file__).parents[1]


def test_rows_are_consistent():
    assert len(BY_NAME) == len(BACKENDS), "report keys are unique"
    assert set(CRITERIA) == set(PRECISIONS), "one parity criterion per precision, and no other"
    for kind in BACKENDS:
        assert kind.precision in PRECISIONS and kind.name.startswith(kind.runtime)
        assert (kind.engine is not None) == (kind.runtime == TENSORRT), kind
    assert ENGINES == tuple(k.cli_name for k in BACKENDS if k.runtime == TENSORRT) == ("fp16", "int8")
    assert ORT_OPS.custom_ops and ORT_OPS not in ONNXRUNTIME_GRAPHS


def test_every_row_is_what_the_pipeline_writes_and_reports(pipeline_run):
    """`algm-export MODEL --fp16 --int8` writes each ONNX Runtime row's graph, judges it under the row's name
    with the row's precision's criterion, and reports each engine row (skipped here: no TensorRT)."""
    code, _, folder = pipeline_run
    report = json.loads((folder / "report.json").read_text())
    for kind in ONNXRUNTIME_GRAPHS:
        assert (folder / kind.graph).is_file(), kind.graph
        entry = report["parity"][kind.name]
        assert entry["graph"] == kind.graph and entry["criteria"] == CRITERIA[kind.precision], kind.name
    engines = {k.name for k in BACKENDS if k.runtime == TENSORRT}
    assert engines <= set(report["parity"]), "each engine has its entry, built or skipped with the reason"
    assert set(report["parity"]) == engines | {k.name for k in ONNXRUNTIME_GRAPHS}, "no backend outside the registry"


def test_no_second_list_of_backends():
    """The report keys of the registry's rows are spelled out only in backends.py (docs and tests may name
    them; the package must read them from the registry)."""
    names = re.compile("|".join(rf'"{re.escape(kind.name)}"' for kind in BACKENDS))
    sources = [*(ROOT / "algm_export").rglob("*.py"), *(ROOT / "calibration").glob("*.py"),
               *(ROOT / "tools").rglob("*.py")]
    spelled = sorted(str(path.relative_to(ROOT)) for path in sources
                     if path != Path(backends.__file__) and names.search(path.read_text()))
    assert spelled == []
