"""Training: Dice+CE loss, checkpoints, bi-level search loop, retraining loop."""
from nasengine.training.checkpoint import capture_rng, restore_rng
from nasengine.training.losses import DiceCELoss
from nasengine.training.retrain import RETRAIN_PRESETS, RetrainConfig, RetrainData, retrain
from nasengine.training.search_loop import SearchableNetwork, SearchSchedule, run_bilevel_search

__all__ = ["DiceCELoss", "capture_rng", "restore_rng", "SearchSchedule", "SearchableNetwork",
           "run_bilevel_search", "RetrainConfig", "RetrainData", "RETRAIN_PRESETS", "retrain"]
