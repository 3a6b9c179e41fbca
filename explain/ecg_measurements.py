"""ECG interval measurements (HR, rhythm regularity, PR, QRS, QT/QTc) with neurokit2.

Pipeline: ``nk.ecg_clean`` (neurokit) on every non-flat lead; ``nk.ecg_peaks`` (neurokit)
on the RMS of the cleaned leads (on lead II alone it missed 6 and 11 of 19 and 18 beats in
two LBBB + AF ECGs; on the RMS only first beats within 0.3 s of the start go unfound);
``nk.ecg_delineate(method="dwt")`` on the measured lead (II, else V5, I, V1, then the rest)
for P onsets and T offsets; medians over beats, NaNs ignored. HR is 60 / median RR; QTc is
Bazett's, QT / sqrt(median RR in s). The rhythm is regular when the RR coefficient of
variation is under ``REGULAR_MAX_RR_CV`` (synthetic sinus reached 0.029, AF no less than
0.117). PR is None when the rhythm is irregular (atrial fibrillation), when P onsets are
found in fewer than half the beats, or when the per-beat PR's interquartile range exceeds
``MAX_PR_IQR_MS`` (no P wave in fixed relation to the QRS); values outside
``PLAUSIBLE_MS`` are None too.

QRS boundaries do not come from ``ecg_delineate``. On 100 synthetic ECGs (seed 11,
``benchmarks/ecg_measurements.py``) dwt puts R onsets near the P wave: lead-II QRS +111 ms
over the planted width, 1 % within 20 ms (NeuroKit issue #1042 reports this on real 500 Hz
ECGs), 206 ms on the real ``waveform_ecg.dcm`` whose recording machine says 75 ms;
"prominence" takes R onset and offset within +-50 ms of the R peak, so no QRS reads much
over 100 ms (LBBB -51 ms, 0 % within 20 ms); "cwt" gives no R onsets. The QRS is instead
read the way ECG machines read the global QRS: on the median beat of every lead, QRS onset
and offset are where the spatial velocity (root sum of squares of the leads' slopes) stays
under ``QRS_VELOCITY_FRACTION`` of its peak for ``QRS_QUIET_S``. A 20 ms quiet stretch, not
10 ms, keeps the notch of an LBBB complex from ending its QRS early.

The fraction was chosen on 300 synthetic ECGs of seed 11 (45 LBBB), against the QRS the
generator draws (``synth.ecg.drawn_intervals``: the noise-free QRS waves above 50 uV in
any lead; LBBB's drawn QRS is about 40 ms wider than its latent draw): at 20 % every QRS is
within 20 ms (LBBB median +4.5 ms, others -3.5 ms); 15 % reads LBBB +14.5 ms (73 % within
20 ms), 25 % puts 87 % of LBBB within 20 ms and 10 % 11 %. The real ``waveform_ecg.dcm``
reads 64 ms at 20 % against its machine's 75 ms (68 at 15 %, 76 at 10 %); its PR 160 ms
(machine 161) and QT 356 ms (368). On the same synthetic cases at 20 % the heart rate is
within 5/min of the drawn one in 98.7 % (AF 93.8 %), PR (sinus) within 20 ms of the
planted PR in 97 % and QT within 30 ms of the tangent-method T end in 92.7 %.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import neurokit2 as nk
import numpy as np

from fuselens.model_zoo.case import ECG

LEAD_PREFERENCE = ("II", "V5", "I", "V1")
MIN_DURATION_S = 2.5
MIN_PEAK_TO_PEAK_MV = 0.05  # a lead with less swing than this is flat (no ECG)
REGULAR_MAX_RR_CV = 0.08  # RR coefficient of variation below which the rhythm is regular
EDGE_S = 0.15  # R peaks this near an end belong to complexes the recording cuts
QRS_VELOCITY_FRACTION = 0.20
QRS_QUIET_S = 0.02  # velocity must stay under the threshold this long to end the QRS
QRS_SEARCH_S = 0.15  # the QRS velocity peak is sought within this of the R peak
BEAT_WINDOW_S = (0.3, 0.35)  # median beat from R - 0.3 s to R + 0.35 s
MIN_P_SHARE = 0.5
MAX_PR_IQR_MS = 40.0
PLAUSIBLE_MS = {"pr": (60.0, 400.0), "qrs": (40.0, 250.0), "qt": (200.0, 700.0)}


@dataclass(frozen=True)
class ECGMeasurements:
    """Interval measurements of one ECG; None where a value could not be measured."""

    lead: str
    n_beats: int
    heart_rate: float | None
    rr_cv: float | None
    regular: bool | None
    pr_ms: float | None
    qrs_ms: float | None
    qt_ms: float | None
    qtc_ms: float | None
    method: str

    def print_line(self) -> str:
        """The line an ECG machine prints, e.g. ``HR 72/min · RR regular · PR 160 ms · ...``."""
        rhythm = {True: "regular", False: "irregular", None: "–"}[self.regular]
        if self.qt_ms is None:
            qt = "QT/QTc –"
        elif self.qtc_ms is None:
            qt = f"QT {self.qt_ms:.0f} ms"
        else:
            qt = f"QT/QTc {self.qt_ms:.0f}/{self.qtc_ms:.0f} ms"
        hr = "HR –" if self.heart_rate is None else f"HR {self.heart_rate:.0f}/min"
        return " · ".join([hr, f"RR {rhythm}", _ms("PR", self.pr_ms), _ms("QRS", self.qrs_ms), qt])

    def to_dict(self) -> dict:
        """Plain JSON-ready fields."""
        return asdict(self)


def _ms(name: str, value: float | None) -> str:
    return f"{name} –" if value is None else f"{name} {value:.0f} ms"


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _plausible(name: str, value: float | None) -> float | None:
    lo, hi = PLAUSIBLE_MS[name]
    return value if value is not None and lo <= value <= hi else None


def _is_flat(row: np.ndarray) -> bool:
    return float(np.ptp(row)) < MIN_PEAK_TO_PEAK_MV


def _pick_lead(ecg: ECG, lead: str | None) -> str:
    if lead is not None:
        if lead not in ecg.lead_names:
            raise ValueError(f"lead {lead} is not in the recording ({', '.join(ecg.lead_names)})")
        if _is_flat(ecg.lead(lead)):
            raise ValueError(f"lead {lead} is flat (under {MIN_PEAK_TO_PEAK_MV} mV peak to peak)")
        return lead
    order = [n for n in LEAD_PREFERENCE if n in ecg.lead_names]
    order += [n for n in ecg.lead_names if n not in order]
    for name in order:
        if not _is_flat(ecg.lead(name)):
            return name
    raise ValueError(f"every lead is flat (under {MIN_PEAK_TO_PEAK_MV} mV peak to peak)")


def _wave(waves: dict, key: str, n: int) -> np.ndarray:
    """One delineated fiducial per beat as float samples (NaN where not found)."""
    values = np.asarray(waves.get(key, []), dtype=float)
    return values if values.size == n else np.full(n, np.nan)


def _r_peaks(clean: np.ndarray, rate: float) -> np.ndarray:
    """R peaks on the RMS of the cleaned leads, less those too near an end to be whole."""
    rms = np.sqrt((clean**2).mean(axis=0))
    peaks = np.asarray(nk.ecg_peaks(rms, sampling_rate=int(round(rate)))[1]["ECG_R_Peaks"])
    edge = EDGE_S * rate
    return peaks[(peaks >= edge) & (peaks < clean.shape[1] - edge)].astype(int)


def _qrs_bounds(clean: np.ndarray, rpeaks: np.ndarray, rate: float) -> tuple[int, int] | None:
    """Global QRS onset and offset in samples from the R peak, from the median beat."""
    pre, post = (int(round(s * rate)) for s in BEAT_WINDOW_S)
    inside = rpeaks[(rpeaks >= pre) & (rpeaks + post <= clean.shape[1])]
    if inside.size == 0:
        return None
    beat = np.median(np.stack([clean[:, r - pre : r + post] for r in inside]), axis=0)
    velocity = np.sqrt((np.gradient(beat, axis=1) ** 2).sum(axis=0))
    reach = int(round(QRS_SEARCH_S * rate))
    centre = pre - reach + int(np.argmax(velocity[pre - reach : pre + reach]))
    quiet = velocity < QRS_VELOCITY_FRACTION * velocity[centre]
    run = max(1, int(round(QRS_QUIET_S * rate)))
    calm = np.convolve(quiet, np.ones(run, dtype=int), mode="valid") == run  # calm[i]: i..i+run
    before = np.flatnonzero(calm[: centre - run + 1])
    after = np.flatnonzero(calm[centre:])
    if before.size == 0 or after.size == 0:
        return None
    return int(before[-1] + run) - pre, int(centre + after[0]) - pre


def _pr(samples: np.ndarray, rate: float) -> float | None:
    """Median PR over beats, None unless P onsets are found in most beats at a steady PR."""
    found = samples[np.isfinite(samples)] / rate * 1000.0
    if found.size < MIN_P_SHARE * samples.size or found.size == 0:
        return None
    if float(np.subtract(*np.percentile(found, [75, 25]))) > MAX_PR_IQR_MS:
        return None
    return _plausible("pr", float(np.median(found)))


def measure_ecg(ecg: ECG, lead: str | None = None) -> ECGMeasurements:
    """HR, RR regularity, PR, QRS, QT and Bazett QTc of ``ecg``, measured on ``lead``
    (II, else V5, I, V1, ...); raises ValueError on a recording too short or flat."""
    rate = float(ecg.sampling_rate)
    if ecg.duration_s < MIN_DURATION_S:
        raise ValueError(
            f"recording too short: {ecg.duration_s:.1f} s, need at least {MIN_DURATION_S} s"
        )
    name = _pick_lead(ecg, lead)
    live = [i for i, row in enumerate(ecg.signal) if not _is_flat(row)]
    sr = int(round(rate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = np.stack([nk.ecg_clean(ecg.signal[i], sampling_rate=sr) for i in live])
        rpeaks = _r_peaks(clean, rate)
        if rpeaks.size < 2:
            raise ValueError(f"{rpeaks.size} heartbeat(s) found, need at least 2")
        main = clean[live.index(ecg.lead_names.index(name))]
        try:
            _, waves = nk.ecg_delineate(main, rpeaks, sampling_rate=sr, method="dwt")
        except (ValueError, IndexError, KeyError):  # neurokit2 fails so on beats it can't split
            waves = {}
    rr = np.diff(rpeaks) / rate
    rr_median = float(np.median(rr))
    rr_cv = float(np.std(rr) / np.mean(rr)) if rr.size >= 3 else None
    regular = None if rr_cv is None else rr_cv < REGULAR_MAX_RR_CV

    pr = qrs = qt = qtc = None
    bounds = _qrs_bounds(clean, rpeaks, rate)
    if bounds is not None:
        qrs_on = rpeaks + bounds[0]
        qrs = _plausible("qrs", (bounds[1] - bounds[0]) / rate * 1000.0)
        p_on = _wave(waves, "ECG_P_Onsets", rpeaks.size)
        t_off = _wave(waves, "ECG_T_Offsets", rpeaks.size)
        pr = _pr(qrs_on - p_on, rate) if regular else None
        qt = _plausible("qt", _median((t_off - qrs_on) / rate * 1000.0))
        qtc = None if qt is None else qt / math.sqrt(rr_median)
    method = (
        f"neurokit2 {nk.__version__}: ecg_clean (neurokit) on {len(live)} leads, ecg_peaks "
        f"(neurokit) on their RMS, ecg_delineate (dwt) P onsets / T offsets on {name}; global "
        f"QRS from the spatial velocity of the median beats ({QRS_VELOCITY_FRACTION:.0%} of "
        f"peak); medians over beats; QTc Bazett"
    )
    return ECGMeasurements(
        lead=name,
        n_beats=int(rpeaks.size),
        heart_rate=60.0 / rr_median,
        rr_cv=rr_cv,
        regular=regular,
        pr_ms=pr,
        qrs_ms=qrs,
        qt_ms=qt,
        qtc_ms=qtc,
        method=method,
    )
