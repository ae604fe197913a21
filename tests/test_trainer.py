"""The Trainer around every run: all of Lightning's arguments from the shell, a validation after
the last step whatever the run's length, a progress bar in steps, and the debug modes."""

import inspect
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from omegaconf import OmegaConf

from conftest import TINY, make_cfg
from dlstudies import CONF_DIR
from dlstudies.callbacks.final_validation import ValidateAtEnd
from dlstudies.callbacks.progress import StepProgressBar
from dlstudies.config.argv import check_choices, group_options
from dlstudies.config.errors import ConfigError
from dlstudies.summary import read_summary
from dlstudies.train import train


def test_the_trainer_config_lists_every_lightning_trainer_argument() -> None:
    """So each one is set without `+`; the logger and callbacks groups give the other two."""
    listed = set(OmegaConf.load(CONF_DIR / "trainer" / "default.yaml")) - {"_target_"}
    arguments = set(inspect.signature(L.Trainer).parameters) - {"logger", "callbacks"}
    assert listed == arguments


def test_any_trainer_argument_is_set_without_plus_and_a_misspelt_one_is_named(tmp_path: Path) -> None:
    cfg = make_cfg(["trainer.fast_dev_run=true", "trainer.detect_anomaly=true"], tmp_path)
    assert cfg.trainer.fast_dev_run is True and cfg.trainer.detect_anomaly is True
    check_choices(["trainer.limit_val_batches=0.5", "trainer=cpu"])
    with pytest.raises(ConfigError, match=r"^trainer\.max_step is not a lightning\.Trainer argument; "
                                          r"did you mean trainer\.max_steps\?$"):
        check_choices(["trainer.max_step=5"])
    with pytest.raises(ConfigError, match=r"^trainer\.logger is set by the logger group"):
        check_choices(["trainer.logger=false"])


def _validated_steps(run_dir: Path) -> list[int]:
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    return [int(row.split(",")[header.index("step")]) for row in rows[1:]
            if row.split(",")[header.index("val/loss")]]


def test_a_run_shorter_than_the_validation_interval_is_validated_at_its_end(tmp_path: Path,
                                                                            names_file: Path) -> None:
    """30 steps, validation every 1000: one validation after the last step, so the run has its
    validation metrics, a best checkpoint, and a test of the best weights."""
    cfg = make_cfg([*TINY, "trainer.val_check_interval=1000", f"data.path={names_file}"], tmp_path)
    summary = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert summary["status"] == "completed" and summary["steps"] == 30
    assert "val/loss" in summary["metrics"] and "test/loss" in summary["metrics"]
    assert summary["best_ckpt"] == str(run_dir / "checkpoints" / "best.ckpt") and Path(summary["best_ckpt"]).is_file()
    assert len(_validated_steps(run_dir)) == 1


class _CountValidations(BoringModel):
    def __init__(self) -> None:
        super().__init__()
        self.validated_at: list[int] = []

    def on_validation_end(self) -> None:
        self.validated_at.append(self.trainer.global_step)


@pytest.mark.parametrize(("max_steps", "expected"), [(10, [4, 8, 10]), (8, [4, 8])])
def test_the_end_is_validated_once_and_the_bar_counts_steps(max_steps: int, expected: list[int]) -> None:
    """Epochs of 3 batches, validation every 4 steps; a last step that validates anyway is not
    validated twice. The progress bar is one bar of steps out of max_steps across the epochs."""
    model, bar = _CountValidations(), StepProgressBar()
    trainer = L.Trainer(max_steps=max_steps, limit_train_batches=3, val_check_interval=4,
                        check_val_every_n_epoch=None, limit_val_batches=1, num_sanity_val_steps=0,
                        callbacks=[bar, ValidateAtEnd()], logger=False, enable_checkpointing=False,
                        enable_model_summary=False)
    trainer.fit(model)
    assert model.validated_at == expected
    (steps,) = [task for task in bar.progress.tasks if task.description.startswith("Steps")]
    assert steps.total == steps.completed == max_steps


def test_the_bar_takes_steps_a_few_times_a_second_not_after_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's update after each batch costs ~0.2 ms, 8% of a small convnet's step."""
    updates = []
    draw = RichProgressBar.on_train_batch_end
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end",
                        lambda self, *args: updates.append(args[-1]) or draw(self, *args))
    bar = StepProgressBar()
    trainer = L.Trainer(max_steps=300, limit_val_batches=0, callbacks=[bar], logger=False,
                        enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(BoringModel())  # epochs of 64 batches, a fraction of a millisecond each
    assert len(updates) <= 50 and updates[-1] == 299  # the last step is always drawn
    (steps,) = [task for task in bar.progress.tasks if task.description.startswith("Steps")]
    assert steps.completed == 300


@pytest.mark.parametrize(("avx512_bf16", "amx", "precision"),
                         [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"), (False, False, "32-true")])
def test_the_cpu_recipe_autocasts_to_bf16_only_where_the_cpu_computes_it_natively(
        avx512_bf16: bool, amx: bool, precision: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert make_cfg(["experiment=shakespeare_gpt_cpu"], tmp_path).trainer.precision == precision
    assert make_cfg(["experiment=shakespeare_gpt_cpu", "trainer.precision=32-true"], tmp_path).trainer.precision == "32-true"


@pytest.mark.parametrize("mode", group_options("debug"))
def test_debug_modes_run_without_loggers_and_say_so(mode: str, tmp_path: Path, names_file: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    shorter = [] if mode in ("fdr", "limit") else ["trainer.max_steps=20"]
    cfg = make_cfg([f"debug={mode}", f"data.path={names_file}", "data.batch_size=8", "samples=0",
                    "trainer.enable_progress_bar=false", *shorter], tmp_path)
    assert not cfg.logger and cfg.task_name == "debug"
    summary = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert summary["status"] == "completed" and read_summary(run_dir)["status"] == "completed"
    assert f"debug={mode}: no loggers" in capsys.readouterr().out
    assert not (run_dir / "wandb").exists() and not (run_dir / "csv").exists()
    expected_steps = {"fdr": 1, "limit": 60, "overfit": 20, "profiler": 20}[mode]
    assert summary["steps"] == expected_steps
    if mode == "profiler":
        assert "Action" in (run_dir / "fit-profiler.txt").read_text()
