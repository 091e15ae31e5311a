"""Forecasting: time-series CSV data, M4 metrics, baselines, LSTM/GRU forecasters."""
