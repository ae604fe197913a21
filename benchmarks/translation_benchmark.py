"""Translation benchmark: the framework's training speed against a plain PyTorch loop, and the
translation experiments' quality and wall time.

    python benchmarks/translation_benchmark.py [--only speed|experiments] [--steps 300] [--repeat 3] [--threads 2]

- speed: ``experiment=numbers_transformer`` trained by Lightning through dlstudies' own
  ``build`` and ``build_trainer`` (validation off), against a plain loop over the same net, data
  loader, AdamW groups, cosine schedule and gradient clipping, in one process, interleaved
  ``--repeat`` times (the fastest of each kept: a shared machine's speed drifts). Steps/s count
  the steps after the first 20 (start-up excluded on both sides).
- experiments: ``python train.py experiment=<name>`` for the four translation recipes in
  subprocesses: wall time of the whole process, test exact match, shortest and longest bucket.
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # a plain checkout runs it too

from dlstudies import CONF_DIR  # noqa: E402
from dlstudies.config.resolvers import register_resolvers  # noqa: E402
from dlstudies.data.translation import PAD  # noqa: E402
from dlstudies.tasks.schedulers import cosine_with_warmup  # noqa: E402
from dlstudies.train import build, build_trainer  # noqa: E402
from lm_benchmark import run_train  # noqa: E402  (benchmarks/ is the script's folder)

WARMUP = 20
EXPERIMENTS = ("numbers_transformer", "numbers_attention", "numbers_rnn", "dates_transformer")


class StepTimer(L.Callback):
    """Seconds from the start of step ``WARMUP`` to the end of training."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == WARMUP:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


def config(steps: int):
    """numbers_transformer for ``steps`` steps, without validation, checkpoints or loggers."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=numbers_transformer", f"trainer.max_steps={steps}",
                                          "+trainer.limit_val_batches=0", "trainer.enable_progress_bar=false",
                                          "trainer.accelerator=cpu", "+trainer.enable_checkpointing=false",
                                          "callbacks=none", "logger=none"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path(cfg.paths.log_dir) / "benchmark")
    return cfg


def framework_steps_per_s(steps: int) -> float:
    cfg = config(steps)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg, {})  # no run trained first in these recipes
    timer = StepTimer()
    trainer = build_trainer(cfg, [timer], [])
    trainer.fit(module, datamodule=datamodule)
    return (steps - WARMUP) / timer.seconds


def plain_steps_per_s(steps: int) -> float:
    """The same training written as a bare PyTorch loop."""
    cfg = config(steps)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg, {})  # no run trained first in these recipes
    net = module.net.train()
    weights = [p for p in net.parameters() if p.ndim >= 2]
    others = [p for p in net.parameters() if p.ndim < 2]
    optimizer = instantiate(cfg.optimizer)([{"params": weights}, {"params": others, "weight_decay": 0.0}])
    scheduler = cosine_with_warmup(optimizer, total_steps=steps, warmup_steps=cfg.scheduler.warmup_steps,
                                   min_lr_ratio=cfg.scheduler.min_lr_ratio)
    batches = itertools.chain.from_iterable(itertools.repeat(datamodule.train_dataloader()))
    for step, batch in zip(range(steps), batches):
        if step == WARMUP:
            start = time.perf_counter()
        src, tgt = datamodule.on_before_batch_transfer(batch, 0)
        logits = net(src, src == PAD, tgt[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.trainer.gradient_clip_val)
        optimizer.step()
        scheduler.step()
    return (steps - WARMUP) / (time.perf_counter() - start)


def speed(args: argparse.Namespace) -> None:
    rates = {"dlstudies": [], "plain loop": []}
    for _ in range(args.repeat):
        rates["dlstudies"].append(framework_steps_per_s(args.steps))
        rates["plain loop"].append(plain_steps_per_s(args.steps))
    best = {name: max(values) for name, values in rates.items()}
    print(f"\n## numbers_transformer training speed ({args.steps} steps, {args.threads} thread(s), best of {args.repeat})")
    for name, values in rates.items():
        print(f"{name:10s}  {best[name]:6.2f} steps/s   (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"dlstudies / plain loop: {best['dlstudies'] / best['plain loop']:.3f}")


def experiments(args: argparse.Namespace) -> None:
    print(f"\n## translation experiments ({args.threads} thread(s))")
    print("experiment            params  steps  wall s  test exact match  shortest bucket  longest bucket")
    for name in EXPERIMENTS:
        summary = run_train([f"experiment={name}"], Path(args.log_dir), args.threads)
        metrics = summary["metrics"]
        buckets = [k for k in metrics if k.startswith("test/exact_match/")]
        first, last = buckets[0], buckets[-1]
        print(f"{name:20s} {summary['n_params']:8,d} {summary['steps']:6d} {summary['process_wall_s']:7.0f}  "
              f"{100 * metrics['test/exact_match']:15.2f}%  {first.split('/')[-1]} {100 * metrics[first]:.1f}%  "
              f"{last.split('/')[-1]} {100 * metrics[last]:.1f}%", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["speed", "experiments"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-dir", default="outputs/benchmark")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only in (None, "speed"):
        speed(args)
    if args.only in (None, "experiments"):
        experiments(args)


if __name__ == "__main__":
    main()
