"""Quality metrics comparable with the published tables, and the feature detectors behind them."""

from stylegan.metrics.detectors import DETECTORS, load_detector

__all__ = ["DETECTORS", "load_detector"]
