"""Quality metrics comparable with the published tables (FID, KID, precision/recall, IS, PPL) and the
feature detectors behind them.

    results = stylegan.metrics.evaluate("fid50k_full,kid50k_full", G, "ffhq.zip", detector_dir="detectors")
    for r in results:
        stylegan.metrics.report_to_run_dir(run_dir, r)      # <run_dir>/metric-fid50k_full.jsonl
"""

from stylegan.metrics.detectors import DETECTORS, load_detector
from stylegan.metrics.evaluation import evaluate, reference_stats
from stylegan.metrics.reports import (
    MetricResult,
    append_result,
    format_table,
    report_to_run_dir,
    write_reference_stats,
)
from stylegan.metrics.specs import MetricSpec, known_metrics, parse_metrics
from stylegan.metrics.stats import FeatureStats
from stylegan.metrics.training_hook import training_hook

__all__ = [
    "DETECTORS",
    "FeatureStats",
    "MetricResult",
    "MetricSpec",
    "append_result",
    "evaluate",
    "format_table",
    "known_metrics",
    "load_detector",
    "parse_metrics",
    "reference_stats",
    "report_to_run_dir",
    "training_hook",
    "write_reference_stats",
]
