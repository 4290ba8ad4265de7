"""Instances, ROI fixtures and expected failures for the common estimator tests."""
