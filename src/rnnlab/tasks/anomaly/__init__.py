"""Anomaly detection on streams: NAB scoring, LSTM detectors."""
