"""What the framework costs per training step, for every model family: its training loop against a
plain PyTorch loop of the same net, data, batch and optimizer.

    python benchmarks/overhead.py [--only FAMILY ...] [--steps 200] [--repeat 3] [--threads T]

For each family, at its documented recipe's size and batch (``experiment=<name>``):

- dlstudies: ``dlstudies.train.train``, the function ``python train.py experiment=<name>`` calls,
  with everything that run has (the Trainer, the recipe's callbacks, the W&B logger, offline),
  plus a timer callback;
- plain: the net the recipe builds (same initialization), its data loader, optimizer (parameter
  groups, fused or not), schedule, clipping and precision (the autocast of ``bf16-mixed``), in a
  bare loop (``lm_benchmark.train_steps``);
- Lightning alone: the plain loop's step as a LightningModule in ``Trainer(barebones=True)``: the
  part of the framework's cost that is Lightning's own loop (hooks, closure, optimizer wrappers),
  which no change to dlstudies removes.

Each of the three times ``--steps`` steps after ``WARMUP`` steps; a run is ``WARMUP + steps``
long, so its validation comes after the timed window. The three alternate ``--repeat`` times in
one process and the fastest of each is kept (a shared machine's speed drifts). Ratios are over the
plain loop.
"""

import argparse
import contextlib
import dataclasses
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # a plain checkout runs it too

from dlstudies import CONF_DIR  # noqa: E402
from dlstudies.config.resolvers import register_resolvers  # noqa: E402
from dlstudies.data.translation import PAD  # noqa: E402
from dlstudies.data.tokens import IGNORE  # noqa: E402
from dlstudies.tasks.masked_lm import MaskedLanguageModel, mask_tokens  # noqa: E402
from dlstudies.train import build, train  # noqa: E402
from lm_benchmark import SHARED, lm_loss, param_groups, train_steps  # noqa: E402  (the script's folder)

WARMUP = 20  # steps before the clock starts: first-call allocations, lazy initialization
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


Loss = Callable[[torch.nn.Module, tuple], torch.Tensor]


def classifier_loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(net(x), y)


def translation_loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Teacher forcing: the target shifted by one, padding skipped."""
    src, tgt = batch
    logits = net(src, src == PAD, tgt[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)


def mlm_loss(task: MaskedLanguageModel) -> Loss:
    """BERT's loss on freshly masked items of a names batch, masked as the task masks them."""
    def loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        items = x[:, 1:].masked_fill(y[:, 1:] == IGNORE, IGNORE)  # characters only, padding as IGNORE
        return lm_loss(net, mask_tokens(items, task.mask_rate, len(task.vocab), net.mask_id))
    return loss


def diffusion_loss(task: L.LightningModule) -> Loss:
    """The simple loss at random t and noise: the task's ``loss`` is plain tensor code already."""
    def loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return task.loss(x, y if task.num_classes else None)
    return loss


def same(loss: Loss) -> Callable[[L.LightningModule], Loss]:
    """A loss that needs nothing from the task."""
    return lambda task: loss


@dataclasses.dataclass
class Family:
    """A row of the table: a recipe and the loss a plain loop computes for it (given the task)."""

    name: str
    overrides: list[str]
    loss: Callable[[L.LightningModule], Loss]
    data: str | None = None  # the file or folder of --data that the recipe reads (data.path)


FAMILIES = {
    "mlp": Family("MLP (names_mlp)", ["experiment=names_mlp"], same(lm_loss)),
    "lstm": Family("LSTM (names_lstm)", ["experiment=names_lstm"], same(lm_loss)),
    "gpt": Family("GPT (names_transformer)", ["experiment=names_transformer"], same(lm_loss)),
    "nanogpt": Family("GPT, nanoGPT's CPU size (shakespeare_gpt_cpu)", ["experiment=shakespeare_gpt_cpu"],
                      same(lm_loss), "tinyshakespeare.txt"),
    "bert": Family("BERT masked LM (names_bert_mlm)", ["experiment=names_bert_mlm"], mlm_loss),
    "attention_rnn": Family("attention RNN (numbers_attention)", ["experiment=numbers_attention"],
                            same(translation_loss)),
    "transformer": Family("Transformer translation (numbers_transformer)", ["experiment=numbers_transformer"],
                          same(translation_loss)),
    "mnist1d_cnn": Family("MNIST-1D convnet (mnist1d_cnn)", ["experiment=mnist1d_cnn"], same(classifier_loss)),
    "fashion_cnn": Family("Fashion-MNIST convnet (fashion_mnist_cnn)", ["experiment=fashion_mnist_cnn"],
                          same(classifier_loss), "fashion_mnist"),
    "diffusion": Family("diffusion MLP (moons_diffusion)", ["experiment=moons_diffusion"], diffusion_loss),
}


class StepTimer(L.Callback):
    """Seconds from the end of step ``start`` to the end of step ``stop``, then stops the run
    (its validation and test come after). The benchmark reads ``StepTimer.seconds``."""

    seconds: float = float("nan")

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if trainer.global_step == self.start:
            self.started = clock()
        elif trainer.global_step == self.stop:
            StepTimer.seconds = clock() - self.started


def config(family: Family, steps: int, threads: int, out: Path) -> DictConfig:
    """The recipe at ``WARMUP + steps`` steps, validated after them (on one batch: the validation
    is not timed), without test or samples, in a folder of ``out``."""
    total = WARMUP + steps
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*family.overrides, f"trainer.max_steps={total}",
                                          f"trainer.val_check_interval={total}", "trainer.limit_val_batches=1",
                                          f"threads={threads}", "test=false", "samples=0"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / f"run{len(list(out.iterdir()))}")
    return cfg


def framework_seconds(family: Family, steps: int, threads: int, out: Path) -> float:
    """Seconds of ``steps`` steps of ``train(cfg)``, the train command's whole run."""
    cfg = config(family, steps, threads, out)
    with open_dict(cfg):
        cfg.callbacks.step_timer = {"_target_": f"{__name__}.StepTimer", "start": WARMUP, "stop": WARMUP + steps}
    StepTimer.seconds = float("nan")
    with contextlib.redirect_stdout(sys.stderr):  # the run's console output: stdout keeps the table
        train(cfg)
    return StepTimer.seconds


def endless(loader: Iterator) -> Iterator:
    return itertools.chain.from_iterable(itertools.repeat(loader))


def mixed_precision(loss: Loss, precision: str, device: str) -> Loss:
    """``loss`` under the autocast of Lightning's ``precision`` when it is a mixed one (forward
    and loss in bfloat16 or float16, the backward pass outside), as the Trainer runs a step."""
    if not precision.endswith("-mixed"):
        return loss
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16

    def autocast_loss(net: torch.nn.Module, batch: tuple) -> torch.Tensor:
        with torch.autocast(device, dtype=dtype):
            return loss(net, batch)
    return autocast_loss


@dataclasses.dataclass
class Recipe:
    """What a recipe trains, built as ``train`` builds it: the net (same initialization), its data,
    optimizer (parameter groups, fused or not), schedule, clipping, precision, the plain loss and
    what follows each step (a weight average's update)."""

    datamodule: L.LightningDataModule
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    clip: float | None
    precision: str
    loss: Loss
    after_step: Callable[[], None] | None


def recipe(family: Family, steps: int, threads: int, out: Path) -> Recipe:
    """``family``'s recipe at ``WARMUP + steps`` steps, seeded as its run is."""
    cfg = config(family, steps, threads, out)
    torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg, {})  # no run trained first in these recipes
    net = module.net.train()
    optimizer = instantiate(cfg.optimizer)(param_groups(net))
    scheduler = instantiate(cfg.scheduler)(optimizer, total_steps=cfg.trainer.max_steps)
    ema = getattr(module, "ema_decay", None)  # the recipe's weight average, updated every step
    average = ema and AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)
    after_step = average and (lambda: average.update_parameters(net))
    return Recipe(datamodule, net, optimizer, scheduler, cfg.trainer.gradient_clip_val, str(cfg.trainer.precision),
                  family.loss(module), after_step)


def plain_seconds(family: Family, steps: int, threads: int, out: Path) -> float:
    """Seconds of ``steps`` steps of a bare loop over the same net, data and optimizer."""
    r = recipe(family, steps, threads, out)
    loss = mixed_precision(r.loss, r.precision, next(r.net.parameters()).device.type)
    datamodule, augment = r.datamodule, getattr(r.datamodule, "augment", False)

    def prepared(batch: tuple) -> tuple:
        """The data module's own preparation (trimming padding, augmentation), as in training."""
        batch = datamodule.on_before_batch_transfer(batch, 0)
        return (datamodule.augment_batch(batch[0]), *batch[1:]) if augment else batch

    batches = map(prepared, endless(datamodule.train_dataloader()))
    train_steps(r.net, batches, WARMUP, r.optimizer, r.scheduler, r.clip, loss, r.after_step)
    start = clock()
    train_steps(r.net, batches, steps, r.optimizer, r.scheduler, r.clip, loss, r.after_step)
    return clock() - start


class LightningAlone(L.LightningModule):
    """The plain loop's step as a LightningModule: what Lightning's own loop costs, without
    anything of dlstudies (task, callbacks, loggers)."""

    def __init__(self, r: Recipe) -> None:
        super().__init__()
        self.r, self.net = r, r.net

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        return self.r.loss(self.net, batch)

    def on_train_batch_end(self, outputs, batch: tuple, batch_idx: int) -> None:
        if self.r.after_step is not None:
            self.r.after_step()

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        if self.r.clip:  # as the plain loop clips (Lightning's own check refuses fused + mixed)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.r.clip)

    def configure_optimizers(self) -> dict:
        return {"optimizer": self.r.optimizer, "lr_scheduler": {"scheduler": self.r.scheduler, "interval": "step"}}


def lightning_seconds(family: Family, steps: int, threads: int, out: Path) -> float:
    """Seconds of ``steps`` steps of the plain loop's step in ``Trainer(barebones=True)``."""
    r = recipe(family, steps, threads, out)
    trainer = L.Trainer(barebones=True, accelerator="cpu", devices=1, precision=r.precision, max_steps=WARMUP + steps,
                        limit_val_batches=0, callbacks=[StepTimer(WARMUP, WARMUP + steps)],
                        gradient_clip_val=r.clip, default_root_dir=str(out))
    StepTimer.seconds = float("nan")
    with contextlib.redirect_stdout(sys.stderr):
        trainer.fit(LightningAlone(r), datamodule=r.datamodule)
    return StepTimer.seconds


# CPU speed levers (--levers): the overrides that turn each on and off. Each is measured flipped
# against the recipe (on where the recipe has it off, off where on), so its column gives the step
# with the lever on, and its worth: that time over the time with it off.
LEVERS = {"fused Adam(W)": (["++optimizer.fused=true"], ["++optimizer.fused=false"]),
          "bf16 autocast": (["trainer.precision=bf16-mixed"], ["trainer.precision=32-true"])}


def recipe_has(family: Family, on: list[str]) -> bool:
    """Whether ``family``'s recipe already composes as it does with the overrides ``on``."""
    with tempfile.TemporaryDirectory() as tmp:  # the same run folder for both
        first, second = (OmegaConf.to_container(config(f, 0, 1, Path(tmp)), resolve=True)
                         for f in (family, with_overrides(family, on)))
    return first == second


def with_overrides(family: Family, overrides: list[str]) -> Family:
    return dataclasses.replace(family, overrides=[*family.overrides, *overrides])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(FAMILIES), action="append", help="this family only (repeatable)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per run (after %d warm-up steps)" % WARMUP)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved; the fastest counts")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--levers", action="store_true",
                        help="also the framework's step with each CPU lever flipped: %s" % ", ".join(LEVERS))
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="cpu: this process's CPU seconds instead of wall seconds; with --threads 1 "
                             "they hardly change when other processes share the cores")
    parser.add_argument("--data", type=Path, default=SHARED, help="folder of tinyshakespeare.txt and fashion_mnist/")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    torch.set_float32_matmul_precision("high")  # as the train command sets it (main), for both loops
    print(f"# overhead: torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps after "
          f"{WARMUP}, fastest of {args.repeat} ({args.clock} clock); load average {os.getloadavg()[0]:.2f}",
          flush=True)
    levers = LEVERS if args.levers else {}
    header = ["family (recipe)", "dlstudies ms/step", "plain loop ms/step", "ratio", "Lightning alone: ms/step, ratio",
              *levers]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.only or FAMILIES:
            family = FAMILIES[key]
            if family.data:
                path = args.data / family.data
                if not path.exists():
                    print(f"{family.name}: skipped, {path} missing (--data)", file=sys.stderr, flush=True)
                    continue
                family = with_overrides(family, [f"data.path={path}"])
            out = Path(tmp) / key
            out.mkdir()
            measures = {"dlstudies": (framework_seconds, family), "plain": (plain_seconds, family),
                        "Lightning alone": (lightning_seconds, family)}
            lever_on = {name: recipe_has(family, on) for name, (on, off) in levers.items()}
            measures |= {name: (framework_seconds, with_overrides(family, off if lever_on[name] else on))
                         for name, (on, off) in levers.items()}
            best = dict.fromkeys(measures, float("inf"))
            for _ in range(args.repeat):
                for name, (measure, variant) in measures.items():
                    seconds = measure(variant, args.steps, args.threads, out)
                    best[name] = min(best[name], seconds)
                    print(f"  {family.name}: {name} {1000 * seconds / args.steps:.2f} ms/step", file=sys.stderr,
                          flush=True)
            ms = {name: 1000 * seconds / args.steps for name, seconds in best.items()}
            ours, plain, alone = ms["dlstudies"], ms["plain"], ms["Lightning alone"]
            cells = [family.name, f"{ours:.2f}", f"{plain:.2f}", f"{ours / plain:.2f}x",
                     f"{alone:.2f}, {alone / plain:.2f}x"]
            for lever, on in lever_on.items():  # the step with the lever on, and that over the step with it off
                on_ms, off_ms = (ms["dlstudies"], ms[lever]) if on else (ms[lever], ms["dlstudies"])
                cells.append(f"{on_ms:.2f} ({on_ms / off_ms:.2f}x{', recipe default' if on else ''})")
            print("| " + " | ".join(cells) + " |", flush=True)  # row by row: a cut-off run keeps its rows
    print(f"\n# load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
