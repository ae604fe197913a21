"""Language-model benchmark: quality against the course's targets, speed against makemore/nanoGPT.

    python benchmarks/lm_benchmark.py [--only names|makemore|nanogpt|words] [--threads 2] [--repeat 3]
                                      [--nanogpt-checkout PATH]

Every dlstudies figure comes from the documented command (``python train.py experiment=...``) run
in a subprocess; its ``summary.json`` gives parameters, steps and losses, and the wall time is the
whole process: Python start-up, imports, data preparation, training, validation, test, samples.

- names: each ``experiment=names_<model>`` on names.txt against its validation-loss target; the
  bigram's target is the count model's loss on the same split, computed here.
- makemore: throughput and loss at equal steps against makemore's default Transformer on names,
  with PyTorch's initialization as makemore (``init=default``).
- nanogpt: the same against nanoGPT's CPU recipe on tiny-shakespeare (in fp32, and with the
  recipe's bfloat16 autocast), then ``experiment=shakespeare_gpt_cpu`` (the same model and batch
  with a higher learning rate and fewer steps) against nanoGPT's loss and time; and model FLOPs
  per second against this CPU's matmul peak, measured in the same run. With ``--nanogpt-checkout`` (a clone of
  karpathy/nanoGPT whose data/shakespeare_char/prepare.py ran on the same tinyshakespeare.txt)
  the reference is nanoGPT's own train.py with its README's CPU command, in the same run.
makemore's and nanoGPT's own figures are constants measured on this 2-core machine (quoted from
issue 3), but a shared machine's speed drifts from day to day, so every section also runs its
references here: a plain PyTorch loop on the same model, data, batch, optimizer and evaluation
(the framework's overhead), and for nanoGPT its own loop re-created on the same model. Their wall
times leave out Python start-up and ``import torch``, which favours them.
- words: Bengio MLP, LSTM and Transformer test perplexity on shakespeare_works.txt.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402  (after the path: the benchmark runs from a plain checkout too)
import torch.nn.functional as F  # noqa: E402
from torch.optim.lr_scheduler import LRScheduler  # noqa: E402

from dlstudies.data.chars import CharDataModule  # noqa: E402
from dlstudies.models import init  # noqa: E402
from dlstudies.models.transformer import TransformerLanguageModel  # noqa: E402
from dlstudies.tasks.schedulers import constant, cosine_with_warmup  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
NAMES_TARGETS = {"mlp": 2.12, "rnn": 2.10, "gru": 2.02, "lstm": 2.02, "transformer": 1.95}
# Quoted from issue 3, measured on this machine with the references' own code.
MAKEMORE = {"steps": 5000, "wall": 200.0, "test": 2.013}
NANOGPT = {"steps": 2000, "wall": 89.0, "val": 1.886}


@dataclass
class Row:
    """One line of the table; ``None`` prints as a dash."""

    name: str
    params: int | None = None
    steps: int | None = None
    wall: float | None = None
    val: float | None = None
    test: float | None = None
    target: str = ""
    passed: bool | None = None

    def cells(self) -> list[str]:
        rate = self.steps / self.wall if self.steps and self.wall else None
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        verdict = {True: "yes", False: "NO", None: ""}[self.passed]
        return [self.name, fmt(self.params, ","), fmt(self.steps, "d"), fmt(rate, ".1f"),
                fmt(self.wall, ".1f"), fmt(self.val, ".4f"), fmt(self.test, ".4f"), self.target, verdict]


def print_table(title: str, rows: list[Row]) -> None:
    header = ["model", "params", "steps", "steps/s", "wall s", "val loss", "test loss", "target", "pass"]
    lines = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"\n## {title}")
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                        enumerate(zip(line, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def run_train(overrides: list[str], log_dir: Path, threads: int) -> dict:
    """Run ``python train.py <overrides>``; its summary.json plus the process's wall time."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [sys.executable, str(ROOT / "train.py"), *overrides, "logger=csv",
               f"paths.log_dir={log_dir}"]
    print("$ " + " ".join(["python train.py", *overrides]), flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summaries = sorted(log_dir.glob("train/runs/*/summary.json"), key=os.path.getmtime)
    if result.returncode != 0 or not summaries:
        sys.exit(f"train.py {' '.join(overrides)} failed:\n{result.stderr[-3000:]}")
    return {**json.loads(summaries[-1].read_text()), "process_wall_s": wall}


def summary_row(name: str, summary: dict, target: float | None = None) -> Row:
    """A table row from a run's summary.json; ``target`` bounds the best validation loss."""
    metrics = summary["metrics"]
    val = metrics.get("best/val/loss", metrics.get("val/loss"))
    row = Row(name, summary["n_params"], summary["steps"], summary["process_wall_s"], val,
              metrics.get("test/loss"))
    if target is not None:
        row.target, row.passed = f"val <= {target:.3f}", val is not None and val <= target
    return row


def count_bigram_loss(names: Path) -> float:
    """Validation loss of the count bigram (add-one smoothing, as makemore) on data=names' split."""
    data = CharDataModule(path=str(names), mode="lines", block_size=16, seed=1337)
    data.setup()
    V = len(data.vocab)
    x, y = data.splits["train"]
    keep = y != -1
    counts = torch.ones(V, V).index_put_((x[keep], y[keep]), torch.ones(int(keep.sum())),
                                         accumulate=True)
    log_probs = (counts / counts.sum(1, keepdim=True)).log()
    vx, vy = data.splits["val"]
    keep = vy != -1
    return float(-log_probs[vx[keep], vy[keep]].mean())


def names_section(args: argparse.Namespace, log_dir: Path) -> None:
    names = args.names.resolve()
    optimum = count_bigram_loss(names)
    rows = []
    for model in ("bigram", "mlp", "rnn", "gru", "lstm", "transformer"):
        summary = run_train([f"experiment=names_{model}", f"data.path={names}"], log_dir, args.threads)
        target = optimum + 0.01 if model == "bigram" else NAMES_TARGETS[model]
        rows.append(summary_row(model, summary, target))
    rows[0].target += f" (count {optimum:.4f} + 0.01)"
    print_table(f"names.txt, validation loss in nats/char ({args.threads} thread(s))", rows)


def evaluate(net: torch.nn.Module, batches: list) -> float:
    """Token-weighted mean cross-entropy over ``batches`` (padding targets, -1, skipped)."""
    net.eval()
    total = tokens = 0
    with torch.no_grad():
        for x, y in batches:
            total += F.cross_entropy(net(x).flatten(0, 1), y.flatten(), ignore_index=-1,
                                     reduction="sum").item()
            tokens += int((y != -1).sum())
    net.train()
    return total / tokens


def lm_loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy of a (B, T) batch, padding targets (-1) skipped."""
    x, y = batch
    return F.cross_entropy(net(x).flatten(0, 1), y.flatten(), ignore_index=-1)


def train_steps(net: torch.nn.Module, batches: Iterator, steps: int, optimizer: torch.optim.Optimizer,
                scheduler: LRScheduler | None, clip: float | None,
                loss_of: Callable[[torch.nn.Module, Any], torch.Tensor] = lm_loss,
                after_step: Callable[[], None] | None = None) -> None:
    """``steps`` updates of a minimal PyTorch loop (the throughput reference): a batch, the loss,
    backward, clipping, the optimizer's and the schedule's step (and ``after_step``: a weight
    average's update)."""
    for _ in range(steps):
        loss_of(net, next(batches)).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()
        if after_step is not None:
            after_step()


def plain_loop(net: torch.nn.Module, batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
               val: list, steps: int, optimizer: torch.optim.Optimizer, scheduler,
               clip: float | None, eval_every: int) -> float:
    """``train_steps`` with a full validation pass every ``eval_every`` steps (and at the end), the
    work the dlstudies run does; returns the last val loss."""
    batches = iter(batch, None)  # batch() never returns None: an endless stream
    for done in range(0, steps, eval_every):
        train_steps(net, batches, min(eval_every, steps - done), optimizer, scheduler, clip)
        loss = evaluate(net, val)
    return loss


def param_groups(net: torch.nn.Module) -> list[dict]:
    """Weight decay on matrices and embeddings only, as dlstudies' Task (and nanoGPT) do."""
    params = [p for p in net.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2]},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def reference_makemore(names: Path, threads: int) -> Row:
    """makemore's default Transformer (untied head, 204,544 parameters, PyTorch's initialization)
    and optimizer in a plain loop on data=names' tensors.

    Timed like a dlstudies run: data preparation, training, validation every 1000 steps, test.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(1337)
    start = time.perf_counter()
    data = CharDataModule(path=str(names), mode="lines", block_size=16, batch_size=32, seed=1337)
    data.setup()
    x, y = data.splits["train"]
    gen = torch.Generator().manual_seed(1337)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(x), (32,), generator=gen)
        return x[idx], y[idx]

    net = TransformerLanguageModel(len(data.vocab), block_size=16, depth=4, heads=4, width=64,
                                   tie_weights=False)
    init.default(net)  # makemore keeps PyTorch's initialization
    optimizer = torch.optim.AdamW(param_groups(net), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99),
                                  eps=1e-8)
    steps = MAKEMORE["steps"]
    val = plain_loop(net, batch, list(data.val_dataloader()), steps, optimizer,
                     constant(optimizer, steps), None, eval_every=1000)
    test = evaluate(net, list(data.test_dataloader()))
    params = sum(p.numel() for p in net.parameters())
    return Row("plain PyTorch loop, same model", params, steps, time.perf_counter() - start, val, test)


def nanogpt_recipe(text: Path, threads: int) -> tuple[CharDataModule, torch.nn.Module,
                                                     torch.optim.Optimizer, LRScheduler]:
    """nanoGPT's CPU recipe on tiny-shakespeare, seeded: its data split, model, AdamW (PyTorch's
    default CPU kernel, as nanoGPT fuses only on CUDA) and warm-up + cosine schedule."""
    torch.set_num_threads(threads)
    torch.manual_seed(1337)
    data = CharDataModule(path=str(text), mode="stream", block_size=64, batch_size=12,
                          test_fraction=0.0, seed=1337)
    data.setup()
    net = TransformerLanguageModel(len(data.vocab), block_size=64, depth=4, heads=4, width=128,
                                   bias=False)
    optimizer = torch.optim.AdamW(param_groups(net), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99))
    scheduler = cosine_with_warmup(optimizer, NANOGPT["steps"], warmup_steps=100, min_lr_ratio=0.1)
    return data, net, optimizer, scheduler


def reference_nanogpt(text: Path, threads: int) -> Row:
    """nanoGPT's CPU recipe (model, batch, optimizer, schedule, clipping) in a plain loop, timed
    like the dlstudies run: data preparation, training, validation every 1000 steps."""
    start = time.perf_counter()
    data, net, optimizer, scheduler = nanogpt_recipe(text, threads)
    tokens = data.splits["train"][0]
    gen = torch.Generator().manual_seed(1337)
    offsets = torch.arange(65)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        window = tokens[torch.randint(len(tokens) - 65, (12, 1), generator=gen) + offsets]
        return window[:, :-1], window[:, 1:]

    steps = NANOGPT["steps"]
    val = plain_loop(net, batch, list(data.val_dataloader()), steps, optimizer, scheduler, 1.0,
                     eval_every=1000)
    params = sum(p.numel() for p in net.parameters())
    return Row("plain PyTorch loop, same recipe", params, steps, time.perf_counter() - start, val)


def nanogpt_loop(text: Path, threads: int) -> Row:
    """nanoGPT's train.py loop as its README's CPU command runs it, re-created on the same model
    and recipe: batches stacked from a uint16 token array with numpy, ``loss.item()`` every step (``--log_interval=1``; the print
    itself is left out) and 20-batch estimates of the train and val loss every 250 steps from step
    0, over steps 0..2000. The val loss reported is measured on the whole split after the clock
    stops, like the other rows'."""
    start = time.perf_counter()
    data, net, optimizer, scheduler = nanogpt_recipe(text, threads)
    splits = {split: data.splits[split][0].numpy().astype(np.uint16) for split in ("train", "val")}

    def get_batch(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = splits[split]
        ix = torch.randint(len(tokens) - 64, (12,))
        x = torch.stack([torch.from_numpy(tokens[i : i + 64].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(tokens[i + 1 : i + 65].astype(np.int64)) for i in ix])
        return x, y

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(x).flatten(0, 1), y.flatten())

    @torch.no_grad()
    def estimate_loss() -> dict[str, float]:
        net.eval()
        losses = {split: sum(loss_of(*get_batch(split)).item() for _ in range(20)) / 20 for split in splits}
        net.train()
        return losses

    steps = NANOGPT["steps"]
    for step in range(steps + 1):
        if step % 250 == 0:
            estimate_loss()
        loss = loss_of(*get_batch("train"))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        loss.item()
    wall = time.perf_counter() - start
    params = sum(p.numel() for p in net.parameters())
    return Row("nanoGPT's loop, re-created here", params, steps, wall,
               evaluate(net, list(data.val_dataloader())))


# nanoGPT README's CPU command ("I only have a macbook").
NANOGPT_CPU_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                    "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                    "--n_embd=128", "--max_iters=2000", "--lr_decay_iters=2000", "--dropout=0.0"]


def nanogpt_script(checkout: Path, threads: int, out_dir: Path) -> Row:
    """nanoGPT's own train.py, run from a checkout of karpathy/nanoGPT whose
    data/shakespeare_char was prepared (prepare.py over the same tinyshakespeare.txt), with its
    README's CPU command; wall time of the whole process, its last val loss estimate (20 batches)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [sys.executable, "train.py", *NANOGPT_CPU_ARGS, f"--out_dir={out_dir}"]
    print("$ (nanoGPT) python train.py " + " ".join(NANOGPT_CPU_ARGS), flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    evals = re.findall(r"step (\d+): train loss [\d.]+, val loss ([\d.]+)", result.stdout)
    params = re.search(r"number of parameters: ([\d.]+)M", result.stdout)
    if result.returncode != 0 or not evals or not params:
        sys.exit(f"nanoGPT's train.py failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    return Row("nanoGPT's train.py, same run", round(float(params.group(1)) * 1e6), int(evals[-1][0]), wall,
               float(evals[-1][1]))


def ratio_line(name: str, ours: Row, other_steps: int, other_wall: float) -> str:
    ratio = (ours.steps / ours.wall) / (other_steps / other_wall)
    return f"  throughput dlstudies / {name}: {ratio:.2f}x"


def fastest(measures: dict[str, Callable[[], Row]], repeat: int) -> dict[str, Row]:
    """Run every measurement ``repeat`` times, interleaved so that a shared machine's slow spells
    hit all of them alike, and keep each one's fastest run."""
    rows: dict[str, Row] = {}
    for _ in range(repeat):
        for name, measure in measures.items():
            row = measure()
            if name not in rows or row.wall < rows[name].wall:
                rows[name] = row
    return rows


def makemore_section(args: argparse.Namespace, log_dir: Path) -> None:
    names = args.names.resolve()
    makemore = ["data=names", f"data.path={names}", "model=transformer", "model.net.depth=4",
                "model.net.heads=4", "model.net.width=64", "model.net.tie_weights=false", "init=default",
                "data.batch_size=32",
                "optimizer=adamw", "optimizer.lr=5e-4", "optimizer.weight_decay=0.01",
                "+optimizer.betas=[0.9,0.99]", "trainer.max_steps=5000", "trainer.val_check_interval=1000",
                "samples=0"]
    rows = fastest({"plain": lambda: reference_makemore(names, args.threads),
                    "ours": lambda: summary_row("dlstudies (Lightning)",
                                                run_train(makemore, log_dir, args.threads))}, args.repeat)
    plain, ours = rows["plain"], rows["ours"]
    quoted = Row("makemore (quoted, issue 3)", 204_544, MAKEMORE["steps"], MAKEMORE["wall"],
                 test=MAKEMORE["test"])
    ours.target = "steps/s >= makemore's"
    ours.passed = ours.steps / ours.wall >= MAKEMORE["steps"] / MAKEMORE["wall"]
    print_table("makemore's default Transformer on names.txt: 5000 steps, batch 32, block 16",
                [quoted, plain, ours])
    print(ratio_line("makemore (quoted)", ours, MAKEMORE["steps"], MAKEMORE["wall"]))
    print(ratio_line("plain loop (same run)", ours, plain.steps, plain.wall))


# The recipe's CPU levers are on by default: fused AdamW, and bfloat16 autocast where the CPU
# computes it natively (dls.cpu_precision). This turns the second off; overhead.py --levers
# measures each alone.
FP32 = ["trainer.precision=32-true"]


def flops_per_step(params: int, depth: int, heads: int, width: int, block: int, batch: int) -> float:
    """nanoGPT's estimate (its ``estimate_mfu``, from PaLM's appendix B): 6N + 12 L H Q T FLOPs
    per token for the forward and backward pass, ``batch x block`` tokens a step (N: parameters
    without the position embeddings)."""
    n = params - block * width
    return (6 * n + 12 * depth * heads * (width // heads) * block) * block * batch


def matmul_peak(threads: int, dtype: str, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a large square matmul of ``dtype`` ("float32", "bfloat16") on this CPU: the
    practical peak of the kernels a GPT's linear layers run."""
    torch.set_num_threads(threads)
    a, b = (torch.randn(n, n, dtype=getattr(torch, dtype)) for _ in range(2))
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start)


def nanogpt_section(args: argparse.Namespace, log_dir: Path) -> None:
    text = args.shakespeare.resolve()
    recipe = ["experiment=shakespeare_gpt_cpu", f"data.path={text}", "samples=0"]
    nanogpt_recipe = [*recipe, "optimizer.lr=0.001", f"trainer.max_steps={NANOGPT['steps']}",
                      "trainer.val_check_interval=1000"]
    # nanoGPT's own script when a checkout is given, else its loop re-created here
    checkout = args.nanogpt_checkout
    reference = ((lambda: nanogpt_script(checkout.resolve(), args.threads, log_dir / "nanogpt")) if checkout
                 else (lambda: nanogpt_loop(text, args.threads)))
    rows = fastest({
        "nanogpt": reference,
        "plain": lambda: reference_nanogpt(text, args.threads),
        "same": lambda: summary_row("dlstudies, nanoGPT's recipe (lr 1e-3), fp32",
                                    run_train([*nanogpt_recipe, *FP32], log_dir, args.threads)),
        "levers": lambda: summary_row("the same, the recipe's bf16 autocast",
                                      run_train(nanogpt_recipe, log_dir, args.threads)),
        "ours": lambda: summary_row("dlstudies experiment=shakespeare_gpt_cpu",
                                    run_train(recipe, log_dir, args.threads), target=1.89),
    }, args.repeat)
    nanogpt, plain, same, levers, ours = (rows[k] for k in ("nanogpt", "plain", "same", "levers", "ours"))
    for row in (same, levers):
        row.target = f"steps/s >= 1.2x {'nanoGPT' if checkout else 'nanoGPT loop'}'s"
        row.passed = row.steps / row.wall >= 1.2 * nanogpt.steps / nanogpt.wall
    ours.target += ", wall < nanoGPT's"
    ours.passed = ours.passed and ours.wall < min(NANOGPT["wall"], nanogpt.wall)
    quoted = Row("nanoGPT (quoted, issue 3)", 800_000, NANOGPT["steps"], NANOGPT["wall"], NANOGPT["val"])
    print_table("nanoGPT's CPU recipe on tiny-shakespeare: 4x4x128 GPT, batch 12, block 64",
                [quoted, nanogpt, plain, same, levers, ours])
    name = "nanoGPT's train.py" if checkout else "nanoGPT's loop"
    print(ratio_line(f"{name} (same run), nanoGPT's recipe", same, nanogpt.steps, nanogpt.wall))
    print(ratio_line(f"{name} (same run), nanoGPT's recipe, bf16 autocast", levers, nanogpt.steps, nanogpt.wall))
    print(ratio_line("plain loop (same run), nanoGPT's recipe", same, plain.steps, plain.wall))
    print(f"  time to val <= 1.89: experiment=shakespeare_gpt_cpu {ours.wall:.0f} s, "
          f"{nanogpt.wall / ours.wall:.2f}x faster than {name} in the same run, "
          f"{NANOGPT['wall'] / ours.wall:.2f}x faster than nanoGPT's quoted {NANOGPT['wall']:.0f} s")
    flops = flops_per_step(same.params, depth=4, heads=4, width=128, block=64, batch=12)
    peaks = {dtype: matmul_peak(args.threads, dtype) for dtype in ("float32", "bfloat16")}
    print(f"  model FLOPs (nanoGPT's 6N + 12 L H Q T per token): {flops / 1e9:.2f} GFLOP a step; this CPU's "
          f"matmul peak at {args.threads} thread(s), measured: " +
          ", ".join(f"{dtype} {peak / 1e9:.0f} GFLOP/s" for dtype, peak in peaks.items()))
    for row in (nanogpt, plain, same, levers):
        rate = row.steps * flops / row.wall
        print(f"  {row.name}: {rate / 1e9:.1f} GFLOP/s over its whole run, " +
              ", ".join(f"{rate / peak:.0%} of the {dtype} peak" for dtype, peak in peaks.items()))


def words_section(args: argparse.Namespace, log_dir: Path) -> None:
    works = args.works.resolve()
    rows = [summary_row(model, run_train([f"experiment=words_{model}", f"data.path={works}"],
                                         log_dir, args.threads))
            for model in ("mlp", "lstm", "transformer")]
    mlp_ppl = math.exp(rows[0].test)
    for row in rows:
        row.target = f"test ppl {math.exp(row.test):.1f}"
        if row is not rows[0]:
            row.passed = math.exp(row.test) < 0.9 * mlp_ppl
            row.target += " < 0.9 x MLP"
    print_table("shakespeare_works.txt, word level (losses in nats/word)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["names", "makemore", "nanogpt", "words"], action="append",
                        help="run only this section (repeatable); default: all")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="PyTorch threads for every run (default: this machine's cores)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="makemore/nanogpt: run each measurement this many times, interleaved, "
                             "and keep the fastest (a shared machine's speed drifts)")
    parser.add_argument("--names", type=Path, default=SHARED / "names.txt")
    parser.add_argument("--shakespeare", type=Path, default=SHARED / "tinyshakespeare.txt")
    parser.add_argument("--works", type=Path, default=SHARED / "shakespeare_works.txt")
    parser.add_argument("--nanogpt-checkout", type=Path, default=None,
                        help="nanogpt: a checkout of karpathy/nanoGPT (data/shakespeare_char prepared) whose "
                             "train.py runs as the reference, instead of its loop re-created here")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where the runs' folders go (default: a temporary folder)")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# lm_benchmark: torch {torch.__version__}, {args.threads} thread(s), "
          f"{os.cpu_count()} cores, load average {load:.2f} at start")
    sections = {"names": names_section, "makemore": makemore_section, "nanogpt": nanogpt_section,
                "words": words_section}
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = args.log_dir or Path(tmp)
        for name in args.only or sections:
            sections[name](args, log_dir)
    if hasattr(os, "getloadavg"):
        print(f"\n# load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
