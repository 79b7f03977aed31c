"""The notebooks execute headlessly, offline, and show what they claim to show."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

import ig_widget as igw

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = (
    "quickstart",
    "reference_walkthrough",
    "how_integrated_gradients_work",
    "finding_a_shortcut",
    "auditing_a_dataset",
    "which_explanation_to_trust",
    "what_changed_between_two_models",
    "beyond_one_class",
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The "which explanation to trust" notebook under test: two images, fewer samples.
TRUST_PARAMETERS = "N_IMAGES = 2\nSAMPLES = 8\nCURVE_STEPS = 16\nSEED = 0"
# The shortcut notebook under test: smaller, still a real training run.
SHORTCUT_PARAMETERS = "N_TRAIN = 2000\nEPOCHS = 2\nSEED = 0"
SHORTCUT_RESULTS = (
    "accuracy_with_marks",
    "accuracy_with_wrong_marks",
    "follows_mark",
    "mark_share",
    "object_share",
    "mark_area",
    "object_area",
)

# The audit under test: a smaller training run and audit, the same steps.
AUDIT_PARAMETERS = "N_TRAIN = 2000\nEPOCHS = 2\nN_AUDIT = 120\nSEED = 0"
AUDIT_RESULTS = (
    "accuracy",
    "follows_mark",
    "mark_share",
    "mark_area",
    "wrong_mark",
    "cluster_agreement",
)

# The two-model comparison under test: a smaller training run and fewer images.
DRIFT_PARAMETERS = "N_TRAIN = 2000\nEPOCHS = 2\nN_COMPARE = 60\nSEED = 0"
DRIFT_RESULTS = (
    "accuracy_old",
    "accuracy_new",
    "mark_area",
    "share_old",
    "share_new",
    "moved_to_mark",
    "median_correlation",
)


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def execute(notebook: nbformat.NotebookNode, timeout: int) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel from this venv that imports this checkout.

    The notebook must print nothing to stderr: no framework start-up logs
    (the package keeps TensorFlow's out, see ``ig_widget.frameworks``), no warnings.
    """
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    # The kernel gets the user's default: no log level chosen.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    client.execute(env={**env, "PYTHONPATH": path})
    stderr = [out for out in outputs(notebook) if out.get("name") == "stderr"]
    assert stderr == [], "".join(out["text"] for out in stderr)[:3000]
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "") for out in outputs(notebook) if out["output_type"] == "stream"
    )


def count_in(cell: nbformat.NotebookNode, mime: str) -> int:
    return sum(mime in out.get("data", {}) for out in cell.outputs)


def count(notebook: nbformat.NotebookNode, mime: str) -> int:
    return sum(count_in(cell, mime) for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name):
    notebook = read(name)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


FRAMEWORKS = ("keras", "tensorflow", "torch", "jax")


def _imports(notebook: nbformat.NotebookNode) -> list[str]:
    """The top-level modules a notebook's code imports, in order."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            match = re.match(r"(?:import|from) ([\w]+)", line)
            if match:
                found.append(match.group(1))
    return found


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_import_ig_widget_before_any_framework(name):
    # import ig_widget keeps TensorFlow's start-up log off stderr; a framework
    # imported before it prints its block of C++ log lines into the notebook.
    modules = _imports(read(name))
    assert "ig_widget" in modules
    first = modules.index("ig_widget")
    assert not [module for module in modules[:first] if module in FRAMEWORKS], modules


def test_quickstart_says_the_baseline_its_code_uses():
    notebook = read("quickstart")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    text = " ".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    text = " ".join(text.split())
    baseline = re.search(r'baseline="(\w+)"', code).group(1)
    said = {"blur": "here a strongly blurred copy of the image", "black": "here all black"}
    assert said[baseline] in text
    assert all(words not in text for name, words in said.items() if name != baseline)


def test_quickstart_class_menu_offers_every_class():
    # "Pick another class in the class list": every one of the six can be picked.
    notebook = read("quickstart")
    (cell,) = [c for c in notebook.cells if c.cell_type == "code"]
    *statements, last = cell.source.strip().splitlines()
    namespace: dict = {}
    exec("\n".join(statements), namespace)
    w = eval(last, namespace)
    assert sorted(index for index, _, _ in w.classes) == list(range(len(igw.demo.class_names)))
    markdown = " ".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "Pick another class in the class list" in markdown


@pytest.mark.slow
def test_quickstart_shows_the_widget_in_under_ten_lines():
    notebook = read("quickstart")
    code = [
        line
        for cell in notebook.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert len(code) < 10
    execute(notebook, timeout=120)
    assert count(notebook, WIDGET_VIEW) == 1


@pytest.mark.slow
def test_reference_walkthrough_runs_offline_on_the_demo_model():
    notebook = execute(read("reference_walkthrough"), timeout=180)
    text = printed(notebook)
    # Offline, it says so exactly once and goes on with the bundled model.
    assert text.count("ImageNet weights are not available") == 1
    assert "Predicted: circle" in text
    delta = float(text.split("delta = ")[1].split()[0])
    assert delta < 0.05
    # The example's two figures in its look, the same in the default picture, the widget.
    figures = [c for c in notebook.cells if c.cell_type == "code" and "igw.plot(" in c.source]
    assert ['style="keras"' in cell.source for cell in figures] == [True, True, False]
    assert all(count_in(cell, "image/png") == 1 for cell in figures)
    assert count(notebook, WIDGET_VIEW) == 1


def test_the_reference_fallback_shows_ig_on_the_object_and_the_gradient_around_it():
    # What the walkthrough says of its offline picture, measured with the
    # circle's mask: IG (blurred baseline) on the object, the plain gradient
    # at the image largely beside it.
    generated, labels, masks = igw.demo.make_shapes(24, seed=igw.demo.EXAMPLES_SEED)
    circle = int(np.flatnonzero(labels == 0)[0])
    image, mask = generated[circle], masks[circle]
    np.testing.assert_array_equal(image, igw.demo.images()[0][0])
    result = igw.integrated_gradients(igw.demo.model(), image, steps=50, baseline="blur")

    def on_object(values):
        positive = np.maximum(values.sum(axis=2), 0)
        return positive[mask].sum() / positive.sum()

    assert on_object(result.attributions) > 0.65
    assert on_object(result.gradients) < 0.35


@pytest.mark.slow
def test_how_integrated_gradients_work_runs_and_passes_its_sanity_check():
    notebook = execute(read("how_integrated_gradients_work"), timeout=240)
    assert count(notebook, "image/png") >= 6
    text = printed(notebook)
    line = next(row for row in text.splitlines() if row.startswith("share of positive"))
    trained = float(line.split("trained ")[1].split("%")[0])
    randomised = float(line.split("randomised ")[1].split("%")[0])
    assert trained >= 50 and randomised < trained / 2


@pytest.mark.slow
def test_finding_a_shortcut_trains_and_exposes_the_mark():
    notebook = read("finding_a_shortcut")
    parameters = [c for c in notebook.cells if c.source.lstrip().startswith("N_TRAIN =")]
    assert len(parameters) == 1
    parameters[0].source = SHORTCUT_PARAMETERS
    report = "import json\nprint(json.dumps({" + ", ".join(f"{n!r}: {n}" for n in SHORTCUT_RESULTS)
    notebook.cells.append(nbformat.v4.new_code_cell(report + "}))"))
    execute(notebook, timeout=240)
    results = json.loads(notebook.cells[-1].outputs[0]["text"])
    print("\nshortcut notebook (reduced):", results)
    # The accuracy looks fine...
    assert results["accuracy_with_marks"] >= 0.9
    # ...but the model reads the mark: IG puts its mass there, and a wrong mark fools it.
    mark_density = results["mark_share"] / results["mark_area"]
    object_density = results["object_share"] / results["object_area"]
    assert mark_density > 5 * object_density
    assert results["follows_mark"] >= 0.7
    assert results["accuracy_with_wrong_marks"] <= 0.3
    assert count(notebook, WIDGET_VIEW) == 1


@pytest.mark.slow
def test_auditing_a_dataset_finds_the_shortcut():
    notebook = read("auditing_a_dataset")
    parameters = [c for c in notebook.cells if c.source.lstrip().startswith("N_TRAIN =")]
    assert len(parameters) == 1
    parameters[0].source = AUDIT_PARAMETERS
    report = "import json\nprint(json.dumps({" + ", ".join(f"{n!r}: {n}" for n in AUDIT_RESULTS)
    notebook.cells.append(nbformat.v4.new_code_cell(report + "}))"))
    execute(notebook, timeout=600)
    results = json.loads(notebook.cells[-1].outputs[0]["text"])
    print("\naudit notebook (reduced):", results)
    # The attribution crowds onto the mark, far beyond its share of the pixels...
    assert results["mark_share"] > 10 * results["mark_area"]
    # ...the model answers the mark, and its mistakes are the images with another class's mark.
    assert results["follows_mark"] >= 0.9
    assert results["wrong_mark"] >= 0.8
    # Clustered without the masks, marked and unmarked images fall into separate clusters
    # (measured: 58 of the reduced run's 60 images; a class with 2 unmarked of 7 stays whole).
    assert results["cluster_agreement"] >= 0.9
    gallery = next(c for c in notebook.cells if c.source.startswith("gallery = igw.Gallery("))
    assert count_in(gallery, WIDGET_VIEW) == 1
    clustered = next(c for c in notebook.cells if c.source.startswith("clustered = igw.Gallery("))
    assert count_in(clustered, WIDGET_VIEW) == 1
    # The progress bar and the two galleries are widgets; nothing else is.
    assert count(notebook, WIDGET_VIEW) == 3
    # The bar's last text: done/total [elapsed<ETA, rate] (tqdm's widget escapes HTML and
    # spaces with figure spaces).
    states = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    values = [widget["state"].get("value") for widget in states.values()]
    texts = [value for value in values if isinstance(value, str)]
    bar = r"120/120\s\[\d\d:\d\d&lt;\d\d:\d\d,\s+[\d.]+(image/s|s/image)\]"
    assert any(re.search(bar, text) for text in texts), texts


@pytest.mark.slow
def test_what_changed_between_two_models_finds_the_explanations_that_moved_to_the_mark():
    notebook = read("what_changed_between_two_models")
    parameters = [c for c in notebook.cells if c.source.lstrip().startswith("N_TRAIN =")]
    assert len(parameters) == 1
    parameters[0].source = DRIFT_PARAMETERS
    report = "import json\nprint(json.dumps({" + ", ".join(f"{n!r}: {n}" for n in DRIFT_RESULTS)
    notebook.cells.append(nbformat.v4.new_code_cell(report + "}))"))
    execute(notebook, timeout=600)
    results = json.loads(notebook.cells[-1].outputs[0]["text"])
    print("\ndrift notebook (reduced):", results)
    # Both models are right on the marked images...
    assert results["accuracy_old"] >= 0.9 and results["accuracy_new"] >= 0.9
    # ...but the new one's attribution moved onto the mark, image after image.
    assert results["share_old"] < 3 * results["mark_area"]
    assert results["share_new"] > 10 * results["mark_area"]
    assert results["moved_to_mark"] >= 0.9
    assert results["median_correlation"] < 0.5
    gallery = next(c for c in notebook.cells if c.source.startswith("gallery = igw.Gallery("))
    assert count_in(gallery, WIDGET_VIEW) == 1
    assert count(notebook, WIDGET_VIEW) == 1


@pytest.mark.slow
def test_which_explanation_to_trust_shows_what_its_conclusions_say():
    notebook = read("which_explanation_to_trust")
    parameters = [c for c in notebook.cells if c.source.lstrip().startswith("# The sizes")]
    assert len(parameters) == 1
    parameters[0].source = TRUST_PARAMETERS
    notebook.cells.append(nbformat.v4.new_code_cell("import json\nprint(json.dumps(summary))"))
    execute(notebook, timeout=600)
    summary = json.loads(notebook.cells[-1].outputs[0]["text"])
    print("\ntrust notebook (reduced):", json.dumps(summary, indent=1))
    random_map = summary.pop("random map")
    # Every method finds pixels whose deletion costs the score more than random ones.
    for name, row in summary.items():
        assert row["deletion_auc"] < random_map["deletion_auc"], name
    # The two methods the conclusion recommends: on the object, faithful, model-dependent.
    for name in ("IG, noise x8", "Expected Gradients"):
        row = summary[name]
        assert row["object_share"] > max(0.4, 3 * random_map["object_share"]), name
        assert row["random_model_correlation"] < 0.3, name
        assert row["object_share"] > 2 * row["random_model_share"], name
    # The two that build the image into the map keep the most under a random model.
    ranked = sorted(summary, key=lambda name: -summary[name]["random_model_correlation"])
    assert set(ranked[:2]) == {"XRAI", "Blur IG"}
    assert count(notebook, "image/png") >= 2


@pytest.mark.slow
def test_beyond_one_class_shows_what_its_prose_says():
    # Run as committed: it takes about 20 s on two busy cores.
    notebook = read("beyond_one_class")
    report = (
        "import json\nprint(json.dumps({'summary': summary, 'linear_gap': float(linear_gap), "
        "'delta': contrast.delta, 'change': float(change), "
        "'total': float(contrast.attributions.sum()), "
        "'opposed': float(opposed), 'explained': contrast.explained, "
        "'layers': {name: [(r['Grad-CAM'].parameters['layer'], "
        "tuple(models[name].get_layer(r['Grad-CAM'].parameters['layer']).output.shape)) "
        "for r in maps[name]] for name in models}}))"
    )
    notebook.cells.append(nbformat.v4.new_code_cell(report))
    execute(notebook, timeout=300)
    results = json.loads(notebook.cells[-1].outputs[0]["text"])
    print("\nbeyond one class (reduced):", json.dumps(results, indent=1))
    summary = results["summary"]
    # Grad-CAM's default layers: the CNN's last convolution, the ViT's last attention's
    # input (its last block's first norm, after the convolutional stem), both a 12 x 12 grid.
    cnn = igw.demo.model()
    last_convolution = [layer.name for layer in cnn.layers if "Conv2D" in type(layer).__name__][-1]
    assert all(name == last_convolution for name, _ in results["layers"]["CNN"])
    assert results["layers"]["CNN"][0][1][1:3] == [12, 12]
    assert all(row == ["block1_norm1", [None, 144, 48]] for row in results["layers"]["ViT"])
    for model in ("CNN", "ViT"):
        # IG's map adds up to the score's change; Grad-CAM's and occlusion's do not.
        assert all(abs(ratio - 1) < 0.1 for ratio in summary[f"{model} IG"]["sum_ratios"])
        for method in ("Grad-CAM", "occlusion"):
            ratios = summary[f"{model} {method}"]["sum_ratios"]
            assert max(abs(ratio - 1) for ratio in ratios) > 0.5, (model, method)
        # Grad-CAM puts most of its weight beside the shape, where IG and occlusion find it,
        # and has the largest deletion area.
        cam, ig, occlusion = (summary[f"{model} {m}"] for m in ("Grad-CAM", "IG", "occlusion"))
        assert cam["object_share"] < 0.5 < min(ig["object_share"], occlusion["object_share"])
        assert cam["deletion_auc"] > max(ig["deletion_auc"], occlusion["deletion_auc"])
    # The contrast: completeness for the difference, the star map minus the circle map,
    # and the circle's map the star's with the colours swapped.
    assert results["explained"] == "class 3 and not class 0"
    assert results["delta"] < 0.05
    assert abs(results["total"] - results["change"]) <= 0.05 * abs(results["change"])
    assert results["linear_gap"] < 1e-6
    assert results["opposed"] < -0.5
    assert count(notebook, "image/png") == 4
    assert count(notebook, WIDGET_VIEW) == 0
