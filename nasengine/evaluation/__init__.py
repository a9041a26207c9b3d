"""Evaluation of models on held-out cases in each input's own geometry (metrics, reports)."""
from nasengine.evaluation.evaluate import evaluate, report_csv, write_report_csv
from nasengine.evaluation.metrics import DEFAULT_NSD_TOLERANCE_MM, case_metrics, class_metrics, summarise

__all__ = ["evaluate", "report_csv", "write_report_csv", "DEFAULT_NSD_TOLERANCE_MM",
           "case_metrics", "class_metrics", "summarise"]
