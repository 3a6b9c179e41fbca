"""Synthetic 12-lead ECG: a moving cardiac dipole projected onto the standard leads.

Each beat is a sum of Gaussian waves (P, septal Q, R, S, T), each with a 3-D Frank-lead
vector; the inverse-Dower coefficients project it onto I, II and V1–V6, and III, aVR, aVL,
aVF follow from Einthoven's and Goldberger's relations, so limb leads are consistent. Noise
(baseline wander, muscle noise, mains hum) is added per electrode before the leads are
formed. Findings: left bundle branch block (broad notched R, discordant ST-T), atrial
fibrillation (irregular RR, no P, fibrillatory waves), lateral ST depression / T inversion.

The heart rate and QRS duration a case's truth records are those of the drawn ECG
(:func:`drawn_intervals`), not the latent draw they start from: atrial fibrillation's random
RR intervals move the rate off the planted one, and the Gaussian tails of LBBB's two R
waves reach about 40 ms past the planted width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from fuselens.model_zoo.case import STANDARD_LEADS
from fuselens.model_zoo.synth.latent import Latent

RATE_HZ = 500
DURATION_S = 10.0
N_SAMPLES = int(RATE_HZ * DURATION_S)

# Inverse Dower: Frank X (left), Y (feet), Z (back) -> I, II, V1..V6 (Edenbrandt & Pahlm).
DOWER = np.array(
    [
        [0.632, -0.235, 0.059],
        [0.235, 1.066, -0.132],
        [-0.515, 0.157, -0.917],
        [0.044, 0.164, -1.387],
        [0.882, 0.098, -1.277],
        [1.213, 0.127, -0.601],
        [1.125, 0.127, -0.086],
        [0.831, 0.076, 0.230],
    ]
)
LBBB_LEADS = ("I", "aVL", "V1", "V5", "V6")
LATERAL_WEIGHTS = {"V4": 0.35, "V5": 1.0, "V6": 0.85}
VISIBLE_MV = 0.05  # half a small box at 10 mm/mV: a QRS deflection a caliper reads
LATERAL_AXIS_DEG = 160.0


@dataclass(frozen=True)
class Wave:
    """One dipole wave: Gaussian in time (asymmetric widths) along a fixed 3-D vector."""

    center: float
    sigma_left: float
    sigma_right: float
    vector: np.ndarray
    part: str


@dataclass(frozen=True)
class BeatShape:
    waves: tuple[Wave, ...]
    qrs_on: float
    qrs_off: float
    t_end: float


def _unit(v: list[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


def _direction(theta_deg: float, phi: float) -> np.ndarray:
    th = np.deg2rad(theta_deg)
    return np.array([np.cos(th) * np.cos(phi), np.sin(th) * np.cos(phi), np.sin(phi)])


def _beat_shape(rng: np.random.Generator, latent: Latent, rr: float) -> BeatShape:
    """The dipole waves of the patient's beat, relative to the QRS centre (seconds)."""
    p = latent.params
    ecg = latent.findings["ecg"]
    qrs = float(p["qrs_ms"]) / 1000.0
    axis = rng.uniform(15.0, 70.0)
    qt = float(np.clip(rng.normal(0.405, 0.015) * np.sqrt(rr), 0.3, 0.5))
    waves: list[Wave] = []
    if "atrial_fibrillation" not in ecg:
        pr = rng.uniform(0.14, 0.19)
        p_vec = rng.uniform(0.12, 0.18) * _direction(rng.uniform(45.0, 65.0), -0.15)
        waves.append(Wave(-qrs / 2 - pr + 0.05, 0.02, 0.02, p_vec, "P"))
    if "lbbb" in ecg:
        a1, a2 = rng.uniform(1.3, 1.8), rng.uniform(1.5, 2.1)
        r1 = a1 * _unit([0.75, 0.05, 0.65])
        r2 = a2 * _unit([0.55, -0.25, 0.8])
        waves.append(Wave(-qrs / 2 + 0.035, 0.02, 0.02, r1, "QRS"))
        waves.append(Wave(0.0, qrs / 6, qrs / 6, 0.45 * (r1 + r2) / 2, "QRS"))
        waves.append(Wave(qrs / 2 - 0.035, 0.022, 0.022, r2, "QRS"))
        opposite = -_unit(r1 + r2)
        waves.append(Wave(qrs / 2 + 0.06, 0.04, 0.05, 0.25 * opposite, "ST"))
        t_vec = rng.uniform(0.45, 0.7) * opposite
        waves.append(Wave(qt - qrs / 2 - 0.1, 0.06, 0.04, t_vec, "T"))
    else:
        q_vec = rng.uniform(0.15, 0.3) * _unit([-0.45, 0.1, -0.9])
        r_vec = rng.uniform(1.3, 2.0) * _direction(axis, rng.uniform(0.15, 0.4))
        s_vec = rng.uniform(0.35, 0.7) * _unit([-0.35, -0.45, 0.8])
        waves.append(Wave(-qrs / 2 + 0.014, 0.007, 0.007, q_vec, "QRS"))
        waves.append(Wave(-0.003, qrs / 7.5, qrs / 7.5, r_vec, "QRS"))
        waves.append(Wave(qrs / 2 - 0.014, 0.009, 0.009, s_vec, "QRS"))
        t_vec = rng.uniform(0.3, 0.5) * _direction(axis + rng.uniform(-15.0, 15.0), -0.3)
        waves.append(Wave(qt - qrs / 2 - 0.09, 0.05, 0.032, t_vec, "T"))
    return BeatShape(tuple(waves), -qrs / 2, qrs / 2, qt - qrs / 2 + 0.01)


def _r_times(rng: np.random.Generator, heart_rate: float, af: bool) -> np.ndarray:
    rr0 = 60.0 / heart_rate
    t = rng.uniform(0.15, 0.15 + rr0)
    times = []
    while t < DURATION_S + 0.6:
        times.append(t)
        if af:
            rr = rr0 * float(np.exp(rng.normal(0.0, 0.22)))
            rr = float(np.clip(rr, 0.32, 1.6))
        else:
            rr = rr0 * (1.0 + 0.03 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0.0, 0.008))
        t += rr
    return np.array(times)


def _wave(w: Wave, dt: np.ndarray) -> np.ndarray:
    """(3, len(dt)) dipole of one wave at times ``dt`` from its centre (asymmetric Gaussian)."""
    sigma = np.where(dt < 0, w.sigma_left, w.sigma_right)
    return np.outer(w.vector, np.exp(-0.5 * (dt / sigma) ** 2))


def _render_dipole(
    shape: BeatShape, r_times: np.ndarray, gains: np.ndarray, parts: set[str]
) -> np.ndarray:
    """The (3, N) dipole of the selected wave parts over all beats."""
    t = np.arange(N_SAMPLES) / RATE_HZ
    out = np.zeros((3, N_SAMPLES))
    for r, g in zip(r_times, gains, strict=True):
        for w in shape.waves:
            if w.part not in parts:
                continue
            c = r + w.center
            lo = max(0, int((c - 5 * w.sigma_left) * RATE_HZ))
            hi = min(N_SAMPLES, int((c + 5 * w.sigma_right) * RATE_HZ) + 1)
            if hi <= lo:
                continue
            out[:, lo:hi] += g * _wave(w, t[lo:hi] - c)
    return out


def limb_and_chest(base: np.ndarray) -> np.ndarray:
    """From (8, N) rows I, II, V1..V6 to the 12 standard leads."""
    i, ii = base[0], base[1]
    return np.stack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2, *base[2:]])


def _lateral_st_t(
    latent: Latent,
    shape: BeatShape,
    r_times: np.ndarray,
    t_leads8: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(8, N) change in I, II, V1..V6: ST depression and T inversion facing the lateral wall."""
    depth = float(latent.params["st_depression_mv"])
    flip = 1.0 + rng.uniform(0.6, 1.6)
    t = np.arange(N_SAMPLES) / RATE_HZ
    plateau = np.zeros(N_SAMPLES)
    for r in r_times:
        j, end = r + shape.qrs_off, r + shape.t_end
        ramp = np.clip((t - j) / max(end - j, 1e-3), 0.0, 1.0)
        on = expit((t - j - 0.01) / 0.006)
        off = expit((end - 0.02 - t) / 0.02)
        plateau += on * off * (0.7 + 0.3 * ramp)
    ax = np.deg2rad(LATERAL_AXIS_DEG)
    weights = np.zeros(8)
    weights[0], weights[1] = -np.cos(ax), -np.cos(ax - np.deg2rad(60.0))
    for lead, w in LATERAL_WEIGHTS.items():
        weights[2 + STANDARD_LEADS.index(lead) - 6] = w
    return -weights[:, None] * (flip * t_leads8 + depth * plateau[None, :])


def lateral_mask_leads() -> tuple[str, ...]:
    """Leads where the planted lateral ST-T change is at least half its largest size."""
    ax = np.deg2rad(LATERAL_AXIS_DEG)
    i, ii = np.cos(ax), np.cos(ax - np.deg2rad(60.0))
    limb = {
        "I": i,
        "II": ii,
        "III": ii - i,
        "aVR": -(i + ii) / 2,
        "aVL": i - ii / 2,
        "aVF": ii - i / 2,
    }
    size = {**{k: -v for k, v in limb.items()}, **LATERAL_WEIGHTS}
    top = max(size.values())
    return tuple(lead for lead in STANDARD_LEADS if size.get(lead, 0.0) >= 0.5 * top)


def _fibrillatory(rng: np.random.Generator) -> np.ndarray:
    """(3, N) atrial fibrillatory dipole: 4–8 Hz waves of drifting amplitude and rate."""
    t = np.arange(N_SAMPLES) / RATE_HZ
    f0 = rng.uniform(4.5, 7.5)
    drift = 0.6 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0 + drift) / RATE_HZ
    amp = rng.uniform(0.06, 0.14) * (1.0 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
    wave = amp * (np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi)))
    return np.outer(_unit([0.25, 0.45, -0.85]), wave)


def _electrode_noise(rng: np.random.Generator) -> np.ndarray:
    """(8, N) noise on I, II, V1..V6 formed from nine electrodes (RA, LA, LL, V1..V6)."""
    t = np.arange(N_SAMPLES) / RATE_HZ
    resp = np.sin(2 * np.pi * rng.uniform(0.15, 0.35) * t + rng.uniform(0, 2 * np.pi))
    mains_hz = 50.0 if rng.random() < 0.5 else 60.0
    mains = rng.uniform(0.0, 0.012) * np.sin(2 * np.pi * mains_hz * t)
    emg_level = rng.uniform(0.004, 0.015)
    kernel = np.ones(3) / 3
    elec = np.empty((9, N_SAMPLES))
    for k in range(9):
        wander = rng.uniform(0.01, 0.06) * resp
        for _ in range(2):
            f = rng.uniform(0.05, 0.5)
            wander += rng.uniform(0.01, 0.08) * np.sin(
                2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
            )
        emg = np.convolve(rng.normal(0.0, emg_level, N_SAMPLES), kernel, mode="same")
        elec[k] = wander + emg + mains * rng.uniform(0.5, 1.0)
    ra, la, ll = elec[0], elec[1], elec[2]
    wct = (ra + la + ll) / 3
    return np.stack([la - ra, ll - ra, *(elec[3:] - wct)])


def _windows(r_times: np.ndarray, start: float, stop: float) -> np.ndarray:
    """(N,) bool: the union of [r + start, r + stop] over beats."""
    mask = np.zeros(N_SAMPLES, dtype=bool)
    for r in r_times:
        lo, hi = int(round((r + start) * RATE_HZ)), int(round((r + stop) * RATE_HZ))
        lo, hi = max(lo, 0), min(hi, N_SAMPLES)
        if hi > lo:
            mask[lo:hi] = True
    return mask


def _beats(latent: Latent, rng: np.random.Generator) -> tuple[np.ndarray, BeatShape]:
    """The R-peak times and the beat shape: the first draws of the patient's ECG stream."""
    hr = float(latent.params["heart_rate"])
    r_times = _r_times(rng, hr, "atrial_fibrillation" in latent.findings["ecg"])
    return r_times, _beat_shape(rng, latent, 60.0 / hr)


def drawn_intervals(latent: Latent, rng: np.random.Generator) -> dict[str, float]:
    """The heart rate and QRS duration of the ECG that ``simulate_ecg`` draws from ``rng``.

    ``rng`` must be a fresh generator of the same stream. Heart rate: 60 / the median RR
    interval of the beats inside the strip. QRS: the span over which the noise-free QRS
    waves exceed ``VISIBLE_MV`` in any of the 12 leads.
    """
    r_times, shape = _beats(latent, rng)
    inside = r_times[(r_times > 0.0) & (r_times < DURATION_S)]
    t = np.arange(-0.4, 0.4, 0.0005)
    dipole = np.zeros((3, t.size))
    for w in shape.waves:
        if w.part == "QRS":
            dipole += _wave(w, t - w.center)
    seen = t[np.abs(limb_and_chest(DOWER @ dipole)).max(axis=0) > VISIBLE_MV]
    return {
        "heart_rate": 60.0 / float(np.median(np.diff(inside))),
        "qrs_ms": float(seen[-1] - seen[0]) * 1000.0,
    }


def simulate_ecg(latent: Latent, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 10 s, 500 Hz, 12-lead ECG in mV (float32, canonical lead order) and its evidence mask."""
    findings = set(latent.findings["ecg"])
    af = "atrial_fibrillation" in findings
    r_times, shape = _beats(latent, rng)
    gains = rng.uniform(0.97, 1.03, len(r_times)) * rng.uniform(0.8, 1.2)
    dipole = _render_dipole(shape, r_times, gains, {"P", "QRS", "ST", "T"})
    if af:
        dipole += _fibrillatory(rng)
    base8 = DOWER @ dipole
    if "lateral_st_t" in findings:
        t_only = DOWER @ _render_dipole(shape, r_times, gains, {"T"})
        base8 += _lateral_st_t(latent, shape, r_times, t_only, rng)
    base8 += _electrode_noise(rng)
    signal = limb_and_chest(base8).astype(np.float32)

    mask = np.zeros((len(STANDARD_LEADS), N_SAMPLES), dtype=bool)
    if "lbbb" in findings:
        qrs = _windows(r_times, shape.qrs_on - 0.01, shape.qrs_off + 0.01)
        for lead in LBBB_LEADS:
            mask[STANDARD_LEADS.index(lead)] |= qrs
    if af:
        mask |= _windows(r_times, shape.qrs_on - 0.22, shape.qrs_on - 0.03)[None, :]
    if "lateral_st_t" in findings:
        st_t = _windows(r_times, shape.qrs_off, shape.t_end)
        for lead in lateral_mask_leads():
            mask[STANDARD_LEADS.index(lead)] |= st_t
    return signal, mask
