"""Bigram and MLP language models: shapes, causality, the count-based optimum, learning."""

import csv
import math
from pathlib import Path

import pytest
import torch
from functools import partial
from torch import nn

from conftest import make_cfg
from dlstudies.config.errors import ConfigError
from dlstudies.data.chars import CharDataModule
from dlstudies.models.bigram import BigramLanguageModel
from dlstudies.models.mlp import MLPLanguageModel
from dlstudies.models.norms import BatchNorm
from dlstudies.train import train

MODELS = {
    "bigram": lambda: BigramLanguageModel(11),
    "mlp": lambda: MLPLanguageModel(11, context=4, embed=5, depth=2, width=16),
    "mlp-direct-layernorm": lambda: MLPLanguageModel(11, context=2, embed=5, width=16, direct=True,
                                                     norm=nn.LayerNorm, activation=nn.ReLU),
    "mlp-batchnorm": lambda: MLPLanguageModel(11, context=3, embed=5, width=16, norm=BatchNorm),
}


@pytest.mark.parametrize("name", MODELS)
def test_shape_and_causality(name: str) -> None:
    torch.manual_seed(0)
    net = MODELS[name]()
    nn.init.normal_(next(net.parameters()))
    net.eval()
    idx = torch.randint(0, 11, (3, 9))
    logits = net(idx)
    assert logits.shape == (3, 9, 11)
    for t in range(8):
        changed = idx.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % 11
        assert torch.allclose(net(changed)[:, : t + 1], logits[:, : t + 1]), f"position {t} saw the future"
    if name.startswith("mlp"):  # and the context really is `context` tokens wide
        changed = idx.clone()
        changed[:, 8 - net.context] += 1
        assert torch.allclose(net(changed % 11)[:, 8], logits[:, 8])


@pytest.mark.parametrize(("size", "value"), [("context", 0), ("embed", -2), ("depth", 0), ("width", 1.5)])
def test_bad_sizes_are_rejected_in_one_line(size: str, value) -> None:
    with pytest.raises(ConfigError) as error:
        MLPLanguageModel(5, **{size: value})
    assert str(error.value) == f"model.net.{size}={value!r} is not allowed; it must be an integer >= 1"


def test_depth_and_width_shape_the_hidden_layers() -> None:
    net = MLPLanguageModel(11, context=3, embed=4, depth=3, width=20)
    shapes = [tuple(m.weight.shape) for m in net.hidden if isinstance(m, nn.Linear)]
    assert shapes == [(20, 12), (20, 20), (20, 20)] and net.head.in_features == 20


def _count_bigram_nll(dm: CharDataModule) -> float:
    """Validation NLL of the maximum-likelihood bigram counted on the training split."""
    vocab = len(dm.vocab)
    counts = torch.zeros(vocab, vocab)
    x, y = dm.splits["train"]
    mask = y != -1
    counts.index_put_((x[mask], y[mask]), torch.ones(int(mask.sum())), accumulate=True)
    logp = (counts / counts.sum(1, keepdim=True).clamp_min(1)).clamp_min(1e-12).log()
    vx, vy = dm.splits["val"]
    vmask = vy != -1
    return float(-logp[vx[vmask], vy[vmask]].mean())


def test_bigram_reaches_the_count_based_optimum(tmp_path: Path) -> None:
    cfg = make_cfg(["model=bigram", "data.num_names=4000", "optimizer=adam", "optimizer.lr=0.1",
                    "scheduler=none", "data.batch_size=256", "trainer.max_steps=1500",
                    "trainer.val_check_interval=500", "logger=none", "callbacks=none", "samples=0",
                    "test=false", "trainer.enable_progress_bar=false"], tmp_path)
    record = train(cfg)
    dm = CharDataModule(builtin="names", num_names=4000, seed=cfg.seed)
    dm.setup()
    assert record["metrics"]["val/loss"] == pytest.approx(_count_bigram_nll(dm), abs=0.01)


def test_mlp_learns_well_below_uniform(tmp_path: Path) -> None:
    cfg = make_cfg(["data.num_names=2000", "trainer.max_steps=300", "trainer.val_check_interval=300",
                    "logger=none", "callbacks=none", "samples=0", "test=false",
                    "trainer.enable_progress_bar=false"], tmp_path)
    record = train(cfg)
    assert record["metrics"]["val/loss"] < 0.75 * math.log(27)


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    overrides = ["data.num_names=500", "trainer.max_steps=40", "trainer.val_check_interval=20",
                 "logger=none", "callbacks=none", "samples=2", "trainer.enable_progress_bar=false"]
    first = train(make_cfg(overrides, tmp_path / "a"))
    second = train(make_cfg(overrides, tmp_path / "b"))
    assert first["metrics"] == second["metrics"] and first["samples"] == second["samples"]


def test_training_loss_is_logged_every_n_steps_and_summarised_at_the_last(tmp_path: Path) -> None:
    cfg = make_cfg(["data.num_names=300", "trainer.max_steps=12", "trainer.log_every_n_steps=5",
                    "trainer.val_check_interval=12", "logger=csv", "callbacks=none", "samples=0",
                    "test=false", "trainer.enable_progress_bar=false"], tmp_path)
    record = train(cfg)
    with next(tmp_path.rglob("metrics.csv")).open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row["train/loss"]]
    # 0-based: steps 5 and 10, and the last (12): the run is asked to stop there so that it ends
    # validated (ValidateAtEnd), and Lightning writes the logs of the step a run stops at.
    assert steps == [4, 9, 11]
    assert "train/loss" in record["metrics"]  # the last step's, for summary.json


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_gradients_are_clipped_with_a_fused_optimizer(precision: str) -> None:
    """Under bf16-mixed Lightning itself refuses to clip for a fused optimizer; the Task clips."""
    import lightning as L
    from dlstudies.data.tensors import tensor_loader
    from dlstudies.tasks.language_model import LanguageModel

    torch.manual_seed(0)
    module = LanguageModel(BigramLanguageModel(11), vocab=list("abcdefghijk"),
                           optimizer=partial(torch.optim.SGD, lr=1.0, fused=True))
    before = module.net.logits.weight.detach().clone()
    x = torch.randint(0, 11, (64, 8))
    trainer = L.Trainer(accelerator="cpu", max_steps=1, precision=precision, gradient_clip_val=1e-3,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, tensor_loader(x, x.roll(-1, 1), batch_size=64, shuffle=True))
    step = (module.net.logits.weight.detach() - before).norm()
    assert 0 < step <= 1e-3 * 1.001  # SGD with lr 1 moves by the clipped gradient
