"""The synthetic cohort: patients in real file formats with planted, masked evidence of HF.

``latent`` draws the planted truth, ``labs``/``ecg``/``echo``/``cxr`` render it,
``dicom`` writes the DICOM files, ``reports`` writes and parses the reference report,
``cohort`` writes a whole cohort and ``truth`` reads the ground truth back.
"""

GENERATOR_VERSION = "1.0.0"
