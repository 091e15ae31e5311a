"""Time series shared by forecasting and anomaly detection: CSV files in long or wide layout and M4
(:mod:`.series`), ``timestamp,value`` files as NAB lays them out (:mod:`.stamped`), and windows,
normalisation and calendar features (:mod:`.windows`)."""
from .series import Series, load_m4, parse_step, read_series
from .stamped import NabFile, read_column

__all__ = ["NabFile", "Series", "load_m4", "parse_step", "read_column", "read_series"]
