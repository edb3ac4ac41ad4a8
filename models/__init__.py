"""Forecasting domain: features, forecasters, intervals and metrics.

Pure pandas/numpy/xgboost/statsmodels: no SQL, no Flask, no RQ (see docs/architecture in README).
"""
