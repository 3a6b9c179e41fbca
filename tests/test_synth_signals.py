"""Physiology of the rendered signals and images: what is planted is where and how it should be."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fuselens.model_zoo.case import STANDARD_LEADS
from fuselens.model_zoo.synth.cxr import simulate_cxr
from fuselens.model_zoo.synth.cxr_anatomy import (
    draw_thorax,
    heart_silhouette,
    lung_fields,
    measured_ctr,
)
from fuselens.model_zoo.synth.dicom import PatientMeta, RadiographStyle, stored_radiograph
from fuselens.model_zoo.synth.ecg import RATE_HZ, simulate_ecg
from fuselens.model_zoo.synth.echo import simulate_echo
from fuselens.model_zoo.synth.echo_anatomy import BLOOD, Heart, cycle_phase, render_anatomy
from fuselens.model_zoo.synth.latent import draw_latent, patient_rng

SEED = 31


def _find(predicate, limit: int = 2000):
    for i in range(limit):
        lat = draw_latent(SEED, i)
        if predicate(lat):
            return lat
    raise AssertionError("no such latent")


def _beat_starts(row: np.ndarray) -> np.ndarray:
    on = np.flatnonzero(np.diff(row.astype(int)) == 1)
    return on / RATE_HZ


def test_ecg_leads_obey_einthoven_and_goldberger():
    lat = _find(lambda x: "ecg" in x.modalities)
    sig, _ = simulate_ecg(lat, patient_rng(SEED, lat.index, 2))
    i, ii, iii, avr, avl, avf = sig[:6]
    assert sig.shape == (12, 5000) and sig.dtype == np.float32
    assert np.abs(iii - (ii - i)).max() < 1e-5
    assert np.abs(avr + avl + avf).max() < 1e-5
    assert 0.5 < np.abs(sig).max() < 5.0


def test_atrial_fibrillation_is_irregular_and_sinus_is_not():
    af = _find(lambda x: "atrial_fibrillation" in x.findings["ecg"])
    _, mask = simulate_ecg(af, patient_rng(SEED, af.index, 2))
    rr = np.diff(_beat_starts(mask[1]))
    assert rr.std() / rr.mean() > 0.08
    lbbb = _find(lambda x: x.findings["ecg"] == ("lbbb",))
    _, mask = simulate_ecg(lbbb, patient_rng(SEED, lbbb.index, 2))
    rr = np.diff(_beat_starts(mask[STANDARD_LEADS.index("V1")]))
    assert rr.std() / rr.mean() < 0.05
    assert abs(60.0 / rr.mean() - lbbb.params["heart_rate"]) < 4


def test_lateral_st_t_change_lowers_the_lateral_leads_inside_its_mask():
    lat = _find(lambda x: x.findings["ecg"] == ("lateral_st_t",))
    plain = dataclasses.replace(
        lat, findings={**lat.findings, "ecg": ()}, params={**lat.params, "st_depression_mv": 0.0}
    )
    sig, mask = simulate_ecg(lat, patient_rng(SEED, lat.index, 2))
    ref, _ = simulate_ecg(plain, patient_rng(SEED, lat.index, 2))
    for lead in ("I", "aVL", "V5", "V6"):
        k = STANDARD_LEADS.index(lead)
        assert mask[k].any()
        assert (sig[k] - ref[k])[mask[k]].mean() < -0.08, lead
    v1 = STANDARD_LEADS.index("V1")
    assert not mask[v1].any()
    assert abs((sig[v1] - ref[v1]).mean()) < 0.05


@pytest.mark.parametrize("ef,low,high", [(0.3, 0.7, 0.9), (0.62, 0.4, 0.62)])
def test_echo_lv_cavity_shrinks_with_the_planted_ejection_fraction(ef, low, high):
    heart = Heart(
        lv_length=60.0, lv_width=32.0, la_scale=1.0, ef=ef, wall=6.0, shift=(0.0, 0.0), tilt_deg=0.0
    )
    short, long_ = heart.es_scales
    assert short**2 * long_ == pytest.approx(1.0 - ef)

    def cavity(phi: float) -> int:
        canvas = render_anatomy("A4C", heart, cycle_phase(phi))
        return int(((canvas.refl < 10 * BLOOD) & canvas.regions["lv"]).sum())

    ratio = cavity(0.35) / cavity(0.0)
    assert low < ratio < high


def test_echo_views_put_the_chambers_in_place():
    heart = Heart(
        lv_length=60.0,
        lv_width=32.0,
        la_scale=1.0,
        ef=0.6,
        wall=6.0,
        shift=(0.0, 0.0),
        tilt_deg=0.0,
    )

    def centroid(mask: np.ndarray) -> tuple[float, float]:
        ys, xs = np.nonzero(mask)
        return float(xs.mean()), float(ys.mean())

    a4c = render_anatomy("A4C", heart, cycle_phase(0.0))
    (lv_x, lv_y), (la_x, la_y) = centroid(a4c.regions["lv"]), centroid(a4c.regions["la"])
    assert lv_x > 56 and la_y > lv_y
    left_half = a4c.refl[30:60, 25:50]
    assert (left_half < 10 * BLOOD).mean() > 0.2
    plax = render_anatomy("PLAX", heart, cycle_phase(0.0))
    (lv_x, _), (la_x, _) = centroid(plax.regions["lv"]), centroid(plax.regions["la"])
    assert la_x > lv_x


def test_echo_clips_move_and_masks_follow_the_lv():
    lat = _find(lambda x: "reduced_ef" in x.findings["echo"] and len(x.echo_views) == 3)
    clips = simulate_echo(lat, patient_rng(SEED, lat.index, 3))
    assert [c.view for c in clips] == list(lat.echo_views)
    for clip in clips:
        area = clip.mask.sum(axis=(1, 2))
        assert area.min() > 0 and area.max() > area.min()
        assert np.abs(np.diff(clip.frames.astype(float), axis=0)).mean() > 2
        assert 1000.0 / 60.0 <= clip.frame_time_ms <= 1000.0 / 20.0


def test_cxr_heart_width_gives_the_planted_ctr():
    rng = np.random.default_rng(0)
    for ctr in (0.42, 0.48, 0.55, 0.63):
        th = draw_thorax(rng, ctr, female=False, copd=False)
        assert measured_ctr(th, heart_silhouette(th)) == pytest.approx(ctr, abs=0.01)


def test_cxr_is_a_chest_film_and_masks_sit_on_their_findings():
    lat = _find(lambda x: {"cardiomegaly", "pleural_effusion"} <= set(x.findings["cxr"]))
    image, mask = simulate_cxr(lat, patient_rng(SEED, lat.index, 4))
    assert image.dtype == np.float32 and image.shape == (512, 512)
    assert 0.0 <= image.min() and image.max() <= 1.0
    th = draw_thorax(
        patient_rng(SEED, lat.index, 4),
        float(lat.params["ctr"]),
        lat.sex == "F",
        "copd" in lat.confounders,
    )
    heart = heart_silhouette(th)
    lungs = lung_fields(th) & ~heart
    assert image[heart].mean() > image[lungs].mean() + 0.2
    assert (mask & heart).sum() == heart.sum()
    lower = mask.copy()
    lower[: int(0.6 * 512)] = False
    assert (lower & ~heart).any()


def test_monochrome1_is_stored_inverted():
    image = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    mono2, c2, w2 = stored_radiograph(image, RadiographStyle("CR", "MONOCHROME2", 12))
    mono1, c1, w1 = stored_radiograph(image, RadiographStyle("DX", "MONOCHROME1", 12))
    assert mono2.dtype == np.uint16 and mono2.max() == 4095
    assert np.array_equal(mono1, 4095 - mono2)
    assert w1 == w2 and c1 == pytest.approx(4095 - c2, abs=1)


def test_birth_dates_match_the_age_on_every_study_date():
    for index in range(0, 800, 7):
        for age in (30, 67, 95):
            meta = PatientMeta(1, index, "P", age, "F")
            born, seen = meta.birth_date, meta.study_date
            years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
            assert years == age
