"""Training: Dice+CE loss, per-stage checkpoints, the loop-state base, the bi-level search
loop, the from-scratch trainer and the activation-memory measure."""
from nasengine.training.checkpoint import capture_rng, checkpoint_exists, latest_reporter_seq, restore_rng, stage_path
from nasengine.training.loop_state import LoopState
from nasengine.training.losses import DiceCELoss
from nasengine.training.memory_check import measure_saved_bytes
from nasengine.training.retrain import RETRAIN_PRESETS, RetrainConfig, RetrainData, retrain, train_from_scratch
from nasengine.training.search_loop import SearchableNetwork, SearchSchedule, run_bilevel_search

__all__ = ["DiceCELoss", "capture_rng", "restore_rng", "checkpoint_exists",
           "latest_reporter_seq", "stage_path", "LoopState", "SearchSchedule",
           "SearchableNetwork", "run_bilevel_search", "RetrainConfig", "RetrainData",
           "RETRAIN_PRESETS", "retrain", "train_from_scratch", "measure_saved_bytes"]
