"""Training: the Trainer (the loop, resuming, preemption), its settings (TrainConfig), the run folder and its
checkpoints, data-parallel runs, weight averaging, mixed precision, experiment loggers, and recipes (a
model's whole training as a file, checked stage by stage before any trains).

Modules: averaging, checkpoints, config, folder, loggers, parallel, precision, recipe_checks, recipes, trainer. Its
public names are exported lazily (importing the wing imports no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .averaging import (
        averaged_count,
        check_decay,
        choose_published,
        create_averages,
        ema_model,
        swa_epoch,
        swa_model,
    )
    from .checkpoints import (
        check_state,
        checkpoint_path,
        list_checkpoints,
        optimizer_from_tensors,
        optimizer_to_tensors,
        restore_checkpoint,
        verify_checkpoint,
        write_checkpoint,
    )
    from .config import TrainConfig, load_train_config
    from .folder import RunFolderMixin
    from .loggers import CallbackList, TensorBoardLogger, WandbLogger, create_loggers, sample_grid
    from .parallel import DataParallelMixin
    from .precision import enable_bf16
    from .recipe_checks import check_recipe, check_stage_settings, scan_yaml
    from .recipes import (
        Recipe,
        Stage,
        find_recipe,
        load_recipe,
        parse_recipe,
        recipe_of_run,
        refit_stage,
        run_recipe,
        stage_dir,
        train_config_of,
    )
    from .trainer import Callback, Trainer, evaluate_bpd

_LAZY = {
    "Callback": "trainer", "CallbackList": "loggers", "DataParallelMixin": "parallel", "Recipe": "recipes",
    "RunFolderMixin": "folder", "Stage": "recipes", "TensorBoardLogger": "loggers", "TrainConfig": "config",
    "Trainer": "trainer", "WandbLogger": "loggers", "averaged_count": "averaging", "check_decay": "averaging",
    "check_recipe": "recipe_checks", "check_stage_settings": "recipe_checks", "check_state": "checkpoints",
    "checkpoint_path": "checkpoints", "choose_published": "averaging", "create_averages": "averaging",
    "create_loggers": "loggers", "ema_model": "averaging", "enable_bf16": "precision", "evaluate_bpd": "trainer",
    "find_recipe": "recipes", "list_checkpoints": "checkpoints", "load_recipe": "recipes",
    "load_train_config": "config", "optimizer_from_tensors": "checkpoints", "optimizer_to_tensors": "checkpoints",
    "parse_recipe": "recipes", "recipe_of_run": "recipes", "refit_stage": "recipes",
    "restore_checkpoint": "checkpoints", "run_recipe": "recipes", "sample_grid": "loggers",
    "scan_yaml": "recipe_checks", "stage_dir": "recipes", "swa_epoch": "averaging", "swa_model": "averaging",
    "train_config_of": "recipes", "verify_checkpoint": "checkpoints", "write_checkpoint": "checkpoints",
}
__all__ = [
    "Callback", "CallbackList", "DataParallelMixin", "Recipe", "RunFolderMixin", "Stage", "TensorBoardLogger",
    "TrainConfig", "Trainer", "WandbLogger", "averaged_count", "check_decay", "check_recipe", "check_stage_settings",
    "check_state", "checkpoint_path", "choose_published", "create_averages", "create_loggers", "ema_model",
    "enable_bf16", "evaluate_bpd", "find_recipe", "list_checkpoints", "load_recipe", "load_train_config",
    "optimizer_from_tensors", "optimizer_to_tensors", "parse_recipe", "recipe_of_run", "refit_stage",
    "restore_checkpoint", "run_recipe", "sample_grid", "scan_yaml", "stage_dir", "swa_epoch", "swa_model",
    "train_config_of", "verify_checkpoint", "write_checkpoint",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
