"""Forecasting: time-series CSV data, M4 metrics, baselines, LSTM/GRU forecasters."""
from .api import Forecast, Forecaster, train_run  # noqa: F401
from .spec import ForecastSpec  # noqa: F401
from .task import ForecastConfig, ForecastTask  # noqa: F401

__all__ = ["Forecast", "ForecastConfig", "ForecastSpec", "ForecastTask", "Forecaster", "train_run"]
