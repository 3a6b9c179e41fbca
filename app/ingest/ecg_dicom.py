"""12-lead ECG from a DICOM waveform file (e.g. pydicom's ``waveform_ecg.dcm``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.waveforms import multiplex_array

from fuselens.app.ingest import dicom, limits
from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.leads import build_ecg, canonical_lead, lead_from_code, unit_scale_to_mv
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import ECG

NOT_RHYTHM_WORDS = ("MEDIAN", "BEAT", "TEMPLATE", "AVERAGE")


def rhythm_group_index(path: str | Path, ds: Dataset) -> int:
    """The multiplex group holding the rhythm recording, never the median beat."""
    groups = list(ds.get("WaveformSequence", []))
    if not groups:
        raise IngestError(path, "ecg", "DICOM file has no waveform data (WaveformSequence)")
    candidates = []
    for i, group in enumerate(groups):
        label = str(group.get("MultiplexGroupLabel", "")).upper()
        if "RHYTHM" in label:
            return i
        if any(word in label for word in NOT_RHYTHM_WORDS):
            continue
        rate = float(group.get("SamplingFrequency", 0) or 0)
        duration = int(group.get("NumberOfWaveformSamples", 0)) / rate if rate > 0 else 0.0
        candidates.append((duration, int(group.get("NumberOfWaveformChannels", 0)), i))
    if not candidates:
        raise IngestError(path, "ecg", "only a median beat in the file, no rhythm recording")
    return max(candidates)[2]


def channel_label(channel: Dataset) -> str:
    """A channel's lead name from its ChannelSourceSequence code meaning or code value."""
    sources = channel.get("ChannelSourceSequence") or []
    if not sources:
        return str(channel.get("ChannelLabel", "")) or "unlabelled"
    source = sources[0]
    meaning = str(source.get("CodeMeaning", ""))
    code = str(source.get("CodeValue", ""))
    lead = canonical_lead(meaning) or lead_from_code(code)
    return lead or meaning or code or "unlabelled"


def channel_scale(path: str | Path, channel: Dataset, label: str) -> tuple[float, float, bool]:
    """``(multiplier to mV, baseline in mV, assumed)`` for one channel."""
    if "ChannelSensitivity" not in channel:
        return 1e-3, 0.0, True
    sensitivity = float(channel.ChannelSensitivity)
    correction = float(channel.get("ChannelSensitivityCorrectionFactor", 1.0) or 1.0)
    units_seq = channel.get("ChannelSensitivityUnitsSequence") or []
    unit = str(units_seq[0].get("CodeValue", "")) if units_seq else "uV"
    to_mv = unit_scale_to_mv(unit)
    if to_mv is None:
        raise IngestError(path, "ecg", f"lead {label}: unit {unit!r} is not a voltage")
    baseline = float(channel.get("ChannelBaseline", 0.0) or 0.0)
    return sensitivity * correction * to_mv, baseline * to_mv, False


@guarded("ecg")
def read_ecg_dicom(path: str | Path) -> Reading[ECG]:
    """The rhythm group of a DICOM ECG waveform, in mV, leads in canonical order."""
    ds = dicom.read_dicom(path, "ecg")
    index = rhythm_group_index(path, ds)
    group = ds.WaveformSequence[index]
    samples = int(group.get("NumberOfWaveformSamples", 0) or 0)
    channels = int(group.get("NumberOfWaveformChannels", 0) or 0)
    limits.check_ecg(path, samples, channels, float(group.get("SamplingFrequency", 0) or 0))
    raw = multiplex_array(ds, index, as_raw=True).astype(np.float64).T
    channels = list(group.ChannelDefinitionSequence)
    labels = [channel_label(ch) for ch in channels]
    assumed = False
    for row, (channel, label) in enumerate(zip(channels, labels, strict=True)):
        scale, baseline, guessed = channel_scale(path, channel, label)
        assumed = assumed or guessed
        raw[row] = raw[row] * scale + baseline
    rate = float(group.get("SamplingFrequency", 0) or 0) or None
    reading = build_ecg(path, raw, labels, rate)
    if assumed:
        reading.warnings.append("no ChannelSensitivity: raw values taken as microvolts")
    reading.details.update(dicom.dicom_details(ds))
    reading.details["multiplex_group"] = str(group.get("MultiplexGroupLabel", index))
    reading.identifiers = dicom.identifiers(ds)
    reading.demographics = dicom.demographics(ds)
    return reading
