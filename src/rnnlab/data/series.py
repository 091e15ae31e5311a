"""Moved to :mod:`rnnlab.timeseries.series`; the old name stays an alias of that module so that old imports keep
working."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("rnnlab.timeseries.series")
