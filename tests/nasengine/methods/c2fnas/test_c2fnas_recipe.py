"""Issue 12: C2FNAS candidates train with the nnU-Net recipe, except under the paper preset,
which keeps the paper's own (sec. 4.1: SGD momentum 0.9, warm-up, step decay)."""
from nasengine.config import build_config
from nasengine.methods.c2fnas.config import PRESETS, C2FNASConfig
from nasengine.methods.c2fnas.search import candidate_train_config
from nasengine.training.retrain import RetrainConfig


def _candidate_recipe(preset: str) -> RetrainConfig:
    return build_config(RetrainConfig, candidate_train_config(build_config(C2FNASConfig, PRESETS[preset])))


def test_the_paper_preset_trains_candidates_with_the_papers_recipe():
    paper = _candidate_recipe("paper")
    assert paper.recipe == "paper"
    assert (paper.lr_peak, paper.momentum, paper.weight_decay) == (0.02, 0.9, 4e-5)


def test_other_presets_train_candidates_with_the_nnunet_recipe():
    assert _candidate_recipe("tiny").recipe == "nnunet"
