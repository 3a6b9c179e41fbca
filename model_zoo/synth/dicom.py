"""DICOM writers for the synthetic cohort: 12-lead ECG waveform, US multi-frame, CR/DX.

Every UID is a name-based UUID of the cohort seed, the case and the file's role, dates are fixed
per case and nothing depends on the clock, so the same seed writes byte-identical files.
Identifying fields carry obviously fake values (``SYNTH^P00042``) so privacy handling has
something to hide.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from fuselens.model_zoo.case import STANDARD_LEADS
from fuselens.model_zoo.synth import GENERATOR_VERSION
from fuselens.model_zoo.synth.vocab import ECHO_VIEW_CODES

ECG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.9.1.1"
US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
CR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"
UTC_SYNCHRONIZATION_UID = "1.2.840.10008.15.1.1"

SCPECG_LEAD_CODES = {
    "I": "5.6.3-9-1",
    "II": "5.6.3-9-2",
    "III": "5.6.3-9-61",
    "aVR": "5.6.3-9-62",
    "aVL": "5.6.3-9-63",
    "aVF": "5.6.3-9-64",
    "V1": "5.6.3-9-3",
    "V2": "5.6.3-9-4",
    "V3": "5.6.3-9-5",
    "V4": "5.6.3-9-6",
    "V5": "5.6.3-9-7",
    "V6": "5.6.3-9-8",
}


@dataclass(frozen=True)
class PatientMeta:
    """What every file of one synthetic patient shares."""

    seed: int
    index: int
    case_id: str
    age: int
    sex: str

    @property
    def study_date(self) -> dt.date:
        return dt.date(2024, 1, 1) + dt.timedelta(days=(self.index * 7) % 360)

    @property
    def birth_date(self) -> dt.date:
        """A birth date giving the patient's age (in whole years) on the study date."""
        study = self.study_date
        return dt.date(study.year - self.age - 1, 1, 1) + dt.timedelta(
            days=study.timetuple().tm_yday
        )

    def uid(self, role: str) -> str:
        """A ``2.25.<UUID>`` UID from a name-based (v5) UUID of seed, case and role."""
        name = f"fuselens-synth/{self.seed}/{self.case_id}/{role}"
        return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, name).int}"


def _code(value: str, scheme: str, meaning: str, version: str | None = None) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    if version:
        item.CodingSchemeVersion = version
    item.CodeMeaning = meaning
    return item


def _base(meta: PatientMeta, sop_class: str, modality: str, role: str, time: str) -> Dataset:
    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = meta.uid(f"{role}/instance")
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = fm
    date = meta.study_date.strftime("%Y%m%d")
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
    ds.AccessionNumber = f"SYN{meta.index:06d}{modality}"
    ds.Modality = modality
    ds.Manufacturer = "FuseLens synthetic cohort"
    ds.ManufacturerModelName = "fuselens-synth"
    ds.SoftwareVersions = GENERATOR_VERSION
    ds.InstitutionName = "Synthetic General Hospital"
    ds.ReferringPhysicianName = "SYNTH^REFERRER"
    ds.PatientName = f"SYNTH^{meta.case_id}"
    ds.PatientID = f"SYNTH-{meta.case_id}"
    ds.PatientBirthDate = meta.birth_date.strftime("%Y%m%d")
    ds.PatientSex = meta.sex
    ds.PatientAge = f"{meta.age:03d}Y"
    ds.StudyInstanceUID = meta.uid(f"{role}/study")
    ds.SeriesInstanceUID = meta.uid(f"{role}/series")
    ds.StudyID = f"{meta.index}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    return ds


def _save(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)


def write_ecg(
    path: Path, meta: PatientMeta, signal_mv: np.ndarray, rate_hz: float, sensitivity_uv: float
) -> None:
    """12-lead ECG Waveform Storage: one RHYTHM group, int16 counts of ``sensitivity_uv``."""
    ds = _base(meta, ECG_SOP_CLASS, "ECG", "ecg", "091500")
    ds.AcquisitionDateTime = ds.ContentDate + "091500"
    ds.SynchronizationFrameOfReferenceUID = UTC_SYNCHRONIZATION_UID
    ds.SynchronizationTrigger = "NO TRIGGER"
    ds.AcquisitionTimeSynchronized = "N"
    ds.StudyDescription = "Resting 12-lead ECG"
    context = Dataset()
    context.ValueType = "CODE"
    context.ConceptNameCodeSequence = Sequence(
        [_code("5.4.5-33-1", "SCPECG", "Electrode Placement", "1.3")]
    )
    context.ConceptCodeSequence = Sequence(
        [
            _code(
                "5.4.5-33-1-1",
                "SCPECG",
                "Standard 12-lead positions: limb leads placed at extremities",
                "1.3",
            )
        ]
    )
    ds.AcquisitionContextSequence = Sequence([context])

    counts = np.clip(np.round(signal_mv * 1000.0 / sensitivity_uv), -32768, 32767).astype("<i2")
    group = Dataset()
    group.MultiplexGroupTimeOffset = "0"
    group.TriggerTimeOffset = "0"
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(STANDARD_LEADS)
    group.NumberOfWaveformSamples = int(signal_mv.shape[1])
    group.SamplingFrequency = f"{rate_hz:g}"
    group.MultiplexGroupLabel = "RHYTHM"
    channels = []
    for lead in STANDARD_LEADS:
        ch = Dataset()
        ch.ChannelSourceSequence = Sequence(
            [_code(SCPECG_LEAD_CODES[lead], "SCPECG", f"Lead {lead}", "1.3")]
        )
        ch.ChannelSensitivity = f"{sensitivity_uv:g}"
        ch.ChannelSensitivityUnitsSequence = Sequence([_code("uV", "UCUM", "microvolt", "1.4")])
        ch.ChannelSensitivityCorrectionFactor = "1"
        ch.ChannelBaseline = "0"
        ch.ChannelSampleSkew = "0"
        ch.WaveformBitsStored = 16
        ch.FilterLowFrequency = "0.05"
        ch.FilterHighFrequency = "150"
        ch.NotchFilterFrequency = "0"
        channels.append(ch)
    group.ChannelDefinitionSequence = Sequence(channels)
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformData = np.ascontiguousarray(counts.T).tobytes()
    ds.WaveformSequence = Sequence([group])
    _save(ds, path)


def write_echo(
    path: Path,
    meta: PatientMeta,
    view: str,
    frames: np.ndarray,
    frame_time_ms: float,
    heart_rate: float,
    mm_per_px: float,
) -> None:
    """Ultrasound Multi-frame Image Storage, MONOCHROME2 uint8, with the view coded."""
    ds = _base(meta, US_MULTIFRAME_SOP_CLASS, "US", "echo", "101000")
    ds.SeriesInstanceUID = meta.uid(f"echo/series/{view}")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = meta.uid(f"echo/instance/{view}")
    code, meaning = ECHO_VIEW_CODES[view]
    ds.InstanceNumber = list(ECHO_VIEW_CODES).index(view) + 1
    ds.StudyDescription = "Transthoracic echocardiogram"
    ds.SeriesDescription = meaning
    ds.ImageType = ["ORIGINAL", "PRIMARY", "CARDIAC", "0001"]
    ds.ViewCodeSequence = Sequence([_code(code, "SCT", meaning)])
    ds.PatientOrientation = ""
    ds.HeartRate = int(round(heart_rate))
    ds.FrameTime = f"{frame_time_ms:.3f}"
    ds.CineRate = int(round(1000.0 / frame_time_ms))
    ds.RecommendedDisplayFrameRate = ds.CineRate
    ds.NumberOfFrames = int(frames.shape[0])
    ds.FrameIncrementPointer = 0x00181063
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    region = Dataset()
    region.RegionSpatialFormat = 1
    region.RegionDataType = 1
    region.RegionFlags = 0
    region.RegionLocationMinX0 = 0
    region.RegionLocationMinY0 = 0
    region.RegionLocationMaxX1 = ds.Columns - 1
    region.RegionLocationMaxY1 = ds.Rows - 1
    region.PhysicalUnitsXDirection = 3
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = mm_per_px / 10.0
    region.PhysicalDeltaY = mm_per_px / 10.0
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    _save(ds, path)


@dataclass(frozen=True)
class RadiographStyle:
    """How a chest film is stored: CR or DX, MONOCHROME1 or 2, bit depth."""

    modality: str
    photometric: str
    bits_stored: int


def draw_style(rng: np.random.Generator) -> RadiographStyle:
    return RadiographStyle(
        modality="CR" if rng.random() < 0.6 else "DX",
        photometric="MONOCHROME1" if rng.random() < 0.4 else "MONOCHROME2",
        bits_stored=12 if rng.random() < 0.6 else 14,
    )


def _stored(image: np.ndarray, style: RadiographStyle) -> np.ndarray:
    top = 2**style.bits_stored - 1
    values = np.round(np.clip(image, 0.0, 1.0) * top).astype(np.uint16)
    if style.photometric == "MONOCHROME1":
        values = (top - values).astype(np.uint16)
    return values


def stored_radiograph(
    image: np.ndarray, style: RadiographStyle, window_of: np.ndarray | None = None
) -> tuple[np.ndarray, float, float]:
    """Stored uint16 pixels (inverted for MONOCHROME1) and a window centre and width, the
    window from ``window_of`` (the film before burnt-in text) when given."""
    values = _stored(image, style)
    lo, hi = np.percentile(values if window_of is None else _stored(window_of, style), [0.5, 99.5])
    return values, float(round((lo + hi) / 2)), float(round(max(hi - lo, 1.0)))


def write_cxr(
    path: Path,
    meta: PatientMeta,
    image: np.ndarray,
    style: RadiographStyle,
    spacing_mm: float,
    unannotated: np.ndarray | None = None,
) -> None:
    """A frontal (PA) chest radiograph as CR or DX (for presentation). ``image`` may carry
    burnt-in text; ``unannotated`` is then the film without it, the window's source (as a
    detector windows the exposure before text is burnt in)."""
    sop = CR_SOP_CLASS if style.modality == "CR" else DX_PRESENTATION_SOP_CLASS
    ds = _base(meta, sop, style.modality, "cxr", "113000")
    pixels, center, width = stored_radiograph(image, style, unannotated)
    ds.StudyDescription = "Chest X-ray PA"
    ds.SeriesDescription = "PA"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.ImagerPixelSpacing = [f"{spacing_mm:g}", f"{spacing_mm:g}"]
    ds.PixelSpacing = [f"{spacing_mm:g}", f"{spacing_mm:g}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = style.photometric
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = style.bits_stored
    ds.HighBit = style.bits_stored - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = f"{center:g}"
    ds.WindowWidth = f"{width:g}"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.LossyImageCompression = "00"
    if style.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.RescaleType = "US"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1 if style.photometric == "MONOCHROME1" else -1
        ds.PresentationLUTShape = "INVERSE" if style.photometric == "MONOCHROME1" else "IDENTITY"
        ds.BurnedInAnnotation = "NO" if unannotated is None else "YES"
        ds.DetectorType = "SCINTILLATOR"
        ds.ImageLaterality = "U"
        ds.AnatomicRegionSequence = Sequence([_code("51185008", "SCT", "Thorax")])
    ds.PixelData = pixels.tobytes()
    _save(ds, path)
