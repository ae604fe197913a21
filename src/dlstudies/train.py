"""Train one configuration: ``python train.py [group=option ...] [key=value ...] [-m]``."""

import os
import shlex
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from dlstudies import CONF_DIR
from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.callbacks.final_validation import ValidateAtEnd
from dlstudies.callbacks.metadata import CheckpointMetadata
from dlstudies.callbacks.samples import Samples
from dlstudies.checkpoint import AtomicCheckpointIO, check_resumable, read_checkpoint
from dlstudies.config.argv import check_choices
from dlstudies.config.errors import ConfigError, one_line, print_error
from dlstudies.config.resolvers import register_resolvers
from dlstudies.config.validation import validate
from dlstudies.generation.figures import sample_title
from dlstudies.hub import use_pretrained
from dlstudies.launch import forget_ddp_job, place_job, resume_point, run_ddp_ranks_from_job_config
from dlstudies.loggers import build_loggers, finish, log_config, watch_best
from dlstudies.prerequisites import on_this_device, trained_first
from dlstudies.summary import COMMAND, RunRecord, best_checkpoint, command_line, read_summary, write_failure

console = Console()
register_resolvers()  # on import: launcher workers import this module before resolving hydra.sweep.dir


def build(cfg: DictConfig, trained: dict[str, str]) -> tuple[L.LightningDataModule, L.LightningModule]:
    """Data (loaded and tokenized once) and model, whose ``trained`` arguments are the checkpoints
    of runs trained first; bad data or arguments fail here in one line."""
    try:
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        module = instantiate(cfg.model, **datamodule.model_kwargs(), **trained)
    except (InstantiationException, ValueError, FileNotFoundError) as error:
        raise one_line(error) from None
    return datamodule, module


class NoProfiler(PassThroughProfiler):
    """Lightning's profiler when none is asked for, at less cost: Lightning wraps every hook of a
    training step in ``profiler.profile(...)`` (~130 times a step), and the default's context
    manager, a generator made for each call, costs ~1.9 us each time (7% of a small convnet's step
    on CPU) where one reusable null context costs ~0.3 us."""

    _null = nullcontext()

    def profile(self, action_name: str) -> nullcontext:
        return self._null


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
    """The Trainer with the callbacks group's callbacks, the atomic checkpoint writer and (unless
    one is asked for) the cheaper no-op profiler; ``trainer.enable_progress_bar=false`` drops the
    group's progress bar instead of failing on it."""
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None] + callbacks
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    try:
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except (InstantiationException, ValueError) as error:
        raise one_line(error) from None
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # Lightning's default, not a plugin the user chose
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
    if type(trainer.profiler) is PassThroughProfiler:  # likewise
        trainer.profiler = NoProfiler()
    return trainer


def _report(record: dict) -> None:
    """The run's outcome on the console: status and metrics, samples (or their picture), the run folder."""
    shown = {k: v for k, v in record["metrics"].items() if k.split("/")[0] in ("val", "test", "best")}
    metrics = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
    console.print(f"[bold]status[/bold] {record['status']}  {metrics}")
    if record.get("samples"):
        texts = (repr(s) if "\n" in s else s for s in record["samples"])
        console.print("[bold]samples[/bold] " + " | ".join(texts))
    if record.get("samples_figure"):
        console.print(f"[bold]samples[/bold] {record['samples_figure']}", soft_wrap=True)
    console.print(f"[bold]run folder[/bold] {record['output_dir']}", soft_wrap=True)  # one copyable line


def _debug_note(cfg: DictConfig) -> None:
    """One line when a debug mode is on: what it left out, and where its run folder is."""
    mode = HydraConfig.get().runtime.choices.get("debug") if HydraConfig.initialized() else None
    if mode:
        loggers = f"loggers {', '.join(cfg.logger)}" if cfg.logger else "no loggers (logger=<option> adds one)"
        console.print(f"[yellow]debug={mode}:[/yellow] {loggers}, run folder {cfg.paths.output_dir}",
                      highlight=False, soft_wrap=True)


def train(cfg: DictConfig, gpus: list[str] | None = None) -> dict:
    """Validate; resume or skip; build data, model, callbacks, loggers and Trainer; train the runs
    it needs first; fit; test; record (``summary.json``, the console). ``gpus``: the devices
    ``place_job`` claimed for this job, recorded with it. Returns the summary record."""
    validate(cfg)
    action, ckpt_path = resume_point(cfg)
    if action == "skip":
        console.print(f"[bold]skipped[/bold] (already finished) {cfg.paths.output_dir}", soft_wrap=True)
        return {**read_summary(cfg.paths.output_dir), "action": "skipped"}
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path else None  # one line for a file that is none
    _debug_note(cfg)

    # Where the job runs (its threads and GPUs were placed by run_job): under DDP, how its other
    # ranks start.
    env_before = set(os.environ)  # DDP adds rendezvous variables, dropped again after the job
    if "ddp" in str(cfg.trainer.get("strategy", "")) and HydraConfig.initialized():
        run_ddp_ranks_from_job_config(cfg, ckpt_path)
    started = time.time()

    # Build: data and model (given the checkpoints of the runs it needs trained first), then the
    # callbacks, loggers and Trainer around them.
    use_pretrained(cfg)  # a Hugging Face checkpoint's sizes and tokenizer, recorded as the run's own
    config = OmegaConf.to_container(cfg, resolve=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    recipes = trained_first(cfg)
    datamodule, module = build(cfg, {arg: str(recipe.checkpoint) for arg, recipe in recipes.items()})
    if checkpoint is not None:
        check_resumable(checkpoint, module, ckpt_path)
    tests = bool(cfg.test and datamodule.test_dataloader())
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    divergence = StopOnDivergence()
    samples = Samples(cfg.samples, cfg.seed, after_test=tests, folder=cfg.paths.output_dir,
                      title=sample_title(choices, cfg.samples, cfg.seed))
    resumed_from = checkpoint and checkpoint["dlstudies"]["config"]["paths"]["output_dir"]
    loggers = build_loggers(cfg, resumed_from)
    trainer = build_trainer(cfg, [divergence, ValidateAtEnd(), CheckpointMetadata(config), samples], loggers)
    log_config(loggers, config, module.n_params)
    watch_best(loggers, best_checkpoint(trainer))

    # Train the runs it needs first if they are missing (once per recipe, shared with every job),
    # fit, test, record: summary.json is written however the run ends.
    record = RunRecord(cfg, action, module.n_params, started, gpus)
    try:
        with record.saved_on_exit(trainer):
            for recipe in recipes.values():
                recipe.train_once(on_this_device(cfg.trainer))
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
            record.fitted(trainer, divergence)
            if tests and not divergence.diverged:
                best = record.data.get("best_ckpt")  # else the weights at the end of fitting
                record.tested(trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False))
            record.sampled(samples.texts, samples.figure)
    finally:
        finish(loggers, record.data["status"])
        forget_ddp_job(env_before)
    if trainer.is_global_zero:
        _report(record.data)
    return record.data


def resume_command(summary: dict) -> str:
    """The command that continues an interrupted run: a sweep's own command (its jobs resume from
    their checkpoints), else the run's command from the checkpoint saved when it stopped."""
    checkpoints = Path(summary["output_dir"]) / "checkpoints"
    saved = next((c for c in (checkpoints / "interrupted.ckpt", checkpoints / "last.ckpt") if c.is_file()), None)
    command = summary.get("command") or "python train.py " + shlex.join(summary["overrides"])
    if saved is None or (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
        return command
    kept = [arg for arg in shlex.split(command) if not arg.startswith("ckpt_path=")]
    return shlex.join([*kept, f"ckpt_path={saved}"])


def run_job(cfg: DictConfig) -> float | None:
    """One Hydra job. Module-level and undecorated, so the joblib launcher pickles it by name."""
    try:
        validate(cfg)  # before placing: a bad jobs_per_gpu would wait forever for a slot
        with place_job(cfg) as gpus:  # threads and GPUs for this job, released however it ends
            record = train(cfg, gpus)
    except ConfigError as error:
        print_error(error)
        sys.exit(2)
    except OSError as error:  # a full disk, a lost mount: one line; a sweep moves on to its next job
        print_error(write_failure(error, cfg.paths.output_dir), "failed:")
        if HydraConfig.get().mode == RunMode.RUN:
            sys.exit(1)
        return float("nan")
    except (KeyboardInterrupt, SystemExit) as stop:
        summary = read_summary(cfg.paths.output_dir)
        if summary is None or summary["status"] != "interrupted":
            raise
        print_error(f"at step {summary['steps']}; resume with: {resume_command(summary)}", "interrupted", "yellow")
        sys.exit(143 if isinstance(stop, SIGTERMException) else 130)  # 128 + the signal, as shells do
    if record["status"] == "diverged":
        console.print(f"[red]diverged:[/red] {escape(record['diverged'])}", highlight=False, soft_wrap=True)
        if HydraConfig.get().mode == RunMode.RUN:
            sys.exit(1)  # a lone run fails loudly; inside a multirun the sweep carries on
        return float("nan")
    metric = cfg.get("optimized_metric")
    return record["metrics"].get(metric) if metric else None


_hydra_main = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")(run_job)


def main() -> None:
    """Console entry point: check group options in one line, then hand over to Hydra."""
    torch.set_float32_matmul_precision("high")
    os.environ.setdefault(COMMAND, command_line())  # for summary.json, in every job of a sweep too
    try:
        check_choices(sys.argv[1:])
    except ConfigError as error:
        print_error(error)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
