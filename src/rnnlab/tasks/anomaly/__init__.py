"""Anomaly detection on streams: NAB scoring, LSTM detectors.

>>> from rnnlab.tasks.anomaly import Detector, run_nab
>>> scores = Detector("pred", seed=0).fit_score(values, timestamps)      # (n,) in [0, 1]
>>> runs = run_nab("../shared/data/nab", "vae", seeds=[0, 1, 2], groups=["realKnownCause"])
"""
from .benchmark import DetectorRun, format_table, nab_table, reference_scores, run_nab
from .detector import Detector, DetectorConfig, probationary_rows

__all__ = ["Detector", "DetectorConfig", "DetectorRun", "format_table", "nab_table", "probationary_rows",
           "reference_scores", "run_nab"]
