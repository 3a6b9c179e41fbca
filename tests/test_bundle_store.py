"""The content-keyed bundle store and the common geometry of cohort maps."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_model_support import tiny_explainable

from fuselens.explain.bundle_store import (
    FEATURES,
    BundleStore,
    bundle_key,
    case_digest,
    model_digest,
)
from fuselens.explain.cohort_maps import SHAPES, ecg_grid, pool_image, pool_time
from fuselens.explain.pipeline import explain_case
from fuselens.model_zoo.synth.cohort import write_cohort


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    from fuselens.app.ingest import load_case

    root = tmp_path_factory.mktemp("store")
    write_cohort(root / "cohort", n=2, seed=3, progress=False, workers=1)
    model = tiny_explainable()
    case, _ = load_case(root / "cohort" / "P00000")
    return model, case, explain_case(model, case)


def test_case_digest_follows_content_not_the_case_id(explained):
    _, case, _ = explained
    renamed = copy.deepcopy(case)
    renamed.case_id = "review-3-P00000"
    assert case_digest(renamed) == case_digest(case)
    changed = copy.deepcopy(case)
    changed.ecg.signal[3, 100] += 0.01
    assert case_digest(changed) != case_digest(case)
    lab = copy.deepcopy(case)
    lab.labs.items[0].value += 1
    assert case_digest(lab) != case_digest(case)


def test_model_digest_follows_the_weights(explained):
    model, _, _ = explained
    other = tiny_explainable(seed=1)
    assert model_digest(model) == model_digest(tiny_explainable(seed=0))
    assert model_digest(model) != model_digest(other)
    renamed = tiny_explainable(seed=0)
    renamed.name = "/checkpoints/the-same-weights"
    assert model_digest(renamed) == model_digest(model)


def test_the_demo_model_has_one_digest_under_either_name():
    from fuselens.model_zoo.loading import load_explainable
    from fuselens.model_zoo.registry import resolve_model_dir

    by_name = load_explainable("demo")
    by_path = load_explainable(str(resolve_model_dir("demo")))
    assert by_name.name != by_path.name
    assert model_digest(by_name) == model_digest(by_path)


def test_a_key_changes_with_every_part(explained):
    model, case, _ = explained
    base = bundle_key(case, model, "heart_failure", "yes", ["gradcam_pp"], {"text_max_evals": 1})
    assert base == bundle_key(
        case_digest(case), model_digest(model), "heart_failure", "yes", ["gradcam_pp"],
        {"text_max_evals": 1},
    )  # fmt: skip
    for change in (
        dict(target="no"),
        dict(methods=["gradcam"]),
        dict(settings={"text_max_evals": 2}),
    ):
        parts = dict(target="yes", methods=["gradcam_pp"], settings={"text_max_evals": 1})
        parts.update(change)
        other = bundle_key(case, model, "heart_failure", parts["target"], parts["methods"],
                           parts["settings"])  # fmt: skip
        assert other != base


def test_round_trip_keeps_everything_and_maps_within_half_a_step(explained, tmp_path):
    _, _, bundle = explained
    bundles = BundleStore(tmp_path / "b")
    key = "ab" * 32
    assert bundles.get(key) is None and not bundles.has(key)
    assert bundles.put(key, bundle) is True
    assert bundles.put(key, bundle) is False  # stored once
    assert [p.name for p in (tmp_path / "b" / "ab").iterdir()] == [key]
    back = bundles.get(key, case_id="another id")
    assert back.case_id == "another id"
    assert back.probability == bundle.probability and back.prediction == bundle.prediction
    np.testing.assert_array_equal(back.text.token_values, bundle.text.token_values)
    assert back.shapley.values == bundle.shapley.values
    for method, maps in bundle.maps.items():
        got = back.maps[method]
        assert np.abs(got.cxr - maps.cxr).max() <= 0.5 / 255 + 1e-7
        assert np.abs(got.ecg - maps.ecg).max() <= 0.5 / 255 + 1e-7
        for view, cine in maps.echo.items():
            assert got.echo[view].dtype == np.float32
            assert np.abs(got.echo[view] - cine).max() <= 0.5 / 255 + 1e-7
    feats = bundles.features(key)
    for m in ("ecg", "echo", "cxr"):
        assert feats[f"map_{m}"].shape == SHAPES[m]
    assert set(bundle.shapley.values) == {k[len("shapley_") :] for k in feats if "shapley_" in k}
    assert bundles.header(key)["prediction"] == bundle.prediction
    assert (bundles.path(key) / FEATURES).is_file()


def test_a_malformed_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a bundle key"):
        BundleStore(tmp_path).path("../../etc")


def test_time_pooling_is_the_mean_of_each_stretch():
    a = np.arange(1000, dtype=np.float32)[None]
    pooled = pool_time(a, 10)
    np.testing.assert_allclose(
        pooled[0], [np.arange(i * 100, i * 100 + 100).mean() for i in range(10)]
    )


def test_ecg_grid_puts_leads_in_the_standard_order():
    values = np.zeros((2, 500), dtype=np.float32)
    values[0] = 1.0  # V1
    values[1, :250] = 2.0  # II, first half
    grid = ecg_grid(values, ["V1", "II"])
    assert grid.shape == SHAPES["ecg"]
    assert np.all(grid[6] == 1.0) and np.all(grid[0] == 0.0)
    assert grid[1, :125].min() == 2.0 and grid[1, 125:].max() == 0.0


def test_image_pooling_is_a_box_mean():
    img = np.zeros((128, 128), dtype=np.float32)
    img[:64, :64] = 1.0
    out = pool_image(img, 2)
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.0, 0.0]], atol=1e-6)


def test_a_case_of_a_multi_method_run_finds_its_one_bundle_for_either_method(tmp_path):
    """A review of several map methods stores one bundle holding them all; the Case view,
    which asks for one method, finds it for each of them and draws that method's maps."""
    from fuselens.app.ingest import load_case
    from fuselens.app.review.workers import ExplainPlan
    from fuselens.app.session import Current, LoadedCase, LoadedModel, Workstation

    write_cohort(tmp_path / "cohort", n=1, seed=3, progress=False, workers=1)
    model = tiny_explainable()
    case, reports = load_case(tmp_path / "cohort" / "P00000")
    methods = ("gradcam_pp", "integrated_gradients")
    bundle = explain_case(model, case, "heart_failure", "yes", methods=methods)
    key = bundle_key(
        case, model_digest(model), "heart_failure", "yes", methods, ExplainPlan(methods).settings()
    )
    BundleStore(tmp_path / "store").put(key, bundle)
    extras = {"bundle_store": str(tmp_path / "store"), "review_methods": methods}
    loaded = LoadedCase(case, reports, key="k", title="t", extras=extras)
    ws = Workstation(LoadedModel(model, "tiny", "cpu"), [])
    try:
        for method in methods:
            got = ws.stored_bundle(loaded, "heart_failure", "yes", method)
            assert got is not None and set(got.maps) == set(methods), method
            shown = Current(loaded, got, method=method).shown_maps()
            assert shown is got.maps[method]
        alone = LoadedCase(
            case, reports, key="k", title="t", extras={**extras, "review_methods": ()}
        )
        assert ws.stored_bundle(alone, "heart_failure", "yes", methods[1]) is None
    finally:
        ws.close()
    a, b = (got.maps[m].cxr for m in methods)
    assert not np.allclose(a, b)  # the two methods' maps differ, so the choice matters
