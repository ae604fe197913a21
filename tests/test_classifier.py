"""The classifier task, the deep/residual MLP, its options, regularizers and initializations."""

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from conftest import make_cfg, run_command
from dlstudies.config.argv import group_options
from dlstudies.config.errors import ConfigError
from dlstudies.config.validation import validate
from dlstudies.data.tensors import tensor_loader
from dlstudies.models import init
from dlstudies.models.mlp_classifier import MLPClassifier
from dlstudies.tasks.classifier import Classifier

CLASSES = [str(i) for i in range(4)]
KWARGS = {"net": {"in_shape": [40], "num_classes": 4}, "class_names": CLASSES}


def _blobs(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Four well-separated Gaussian clusters in 40 dimensions."""
    centres = torch.randn(4, 40, generator=torch.Generator().manual_seed(0)) * 2
    y = torch.arange(n) % 4
    return centres[y] + torch.randn(n, 40, generator=torch.Generator().manual_seed(seed)), y


class Blobs(L.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.train, self.val = _blobs(256, 0), _blobs(128, 1)

    def train_dataloader(self):
        return tensor_loader(*self.train, batch_size=32, shuffle=True)

    def val_dataloader(self):
        return [tensor_loader(*self.val, batch_size=128, shuffle=False),
                tensor_loader(*self.train, batch_size=128, shuffle=False)]

    def test_dataloader(self):
        return tensor_loader(*self.val, batch_size=128, shuffle=False)


def _module(overrides: list[str], tmp_path: Path) -> Classifier:
    cfg = make_cfg(["data=mnist1d", "model=mlp_classifier", *overrides], tmp_path)
    return instantiate(cfg.model, **KWARGS)


@pytest.mark.parametrize("ensemble", [1, 3])
def test_classifier_learns_a_tiny_set(tmp_path: Path, ensemble: int) -> None:
    L.seed_everything(0)
    module = _module(["optimizer=adam", "optimizer.lr=0.01", "scheduler=none", "model.net.depth=2", "model.net.width=32",
                      f"regularizer.ensemble={ensemble}"], tmp_path)
    trainer = L.Trainer(max_steps=80, val_check_interval=40, check_val_every_n_epoch=None,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, datamodule=Blobs())
    metrics = trainer.callback_metrics
    assert metrics["val/acc"] > 0.95 and metrics["trainset/acc"] > 0.95
    assert metrics["trainset/loss"] < 0.3
    (test,) = trainer.test(module, datamodule=Blobs(), verbose=False)
    assert test["test/acc"] > 0.95 and set(CLASSES) <= {k.split("/")[-1] for k in test}
    if ensemble > 1:
        assert module.net(torch.zeros(5, 40)).shape == (3, 5, 4)
        assert "test/member_acc" in test


def test_ensemble_members_start_different_and_average_probabilities(tmp_path: Path) -> None:
    module = _module(["regularizer=ensemble", "regularizer.ensemble=2"], tmp_path)
    first, second = module.net.members
    assert not torch.equal(first.stem[0].weight, second.stem[0].weight)
    logits = module.net(torch.randn(6, 40))
    probs = module.log_probs(logits).exp()
    assert torch.allclose(probs, logits.softmax(-1).mean(0), atol=1e-6)


DEPTHS = [1, 3, 64]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("order", ["post", "pre"])
@pytest.mark.parametrize("norm", ["none", "batchnorm", "layernorm"])
def test_depth_residual_order_norm_compose(tmp_path: Path, depth: int, residual: bool, order: str,
                                           norm: str) -> None:
    module = _module([f"model.net.depth={depth}", f"model.net.residual={residual}",
                      f"model.net.order={order}", f"norm={norm}", "model.net.width=16"], tmp_path)
    net = module.net
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == depth + 1
    out = net(torch.randn(8, 40))
    assert out.shape == (8, 4) and torch.isfinite(out).all()
    out.sum().backward()
    assert net.stem[0].weight.grad is not None


def test_act_norm_order_puts_the_norm_after_the_activation_in_every_layer() -> None:
    net = MLPClassifier([40], 4, depth=3, width=16, residual=True, order="act_norm", norm=nn.BatchNorm1d)
    for layers in (net.stem, *(block.branch for block in net.blocks)):
        assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout]
    assert [type(m) for m in net.head] == [nn.Linear]
    h = net.stem(torch.randn(64, 40))  # normalised after the ReLU: each unit's mean 0 over the batch
    assert torch.allclose(h.mean(0), torch.zeros(16), atol=1e-5)


def test_every_activation_option_reaches_every_hidden_layer(tmp_path: Path) -> None:
    for option in group_options("activation"):
        module = _module([f"activation={option}", "model.net.depth=3", "model.net.width=16"], tmp_path)
        expected = type(instantiate(make_cfg([f"activation={option}"], tmp_path).activation)())
        assert sum(type(m) is expected for m in module.net.modules()) == 3, option


@pytest.mark.parametrize("option", ["he", "he_fan_out", "he_fan_avg", "glorot"])
def test_init_options_reach_every_layer_of_the_classifier(tmp_path: Path, option: str) -> None:
    """Through the config and the task, as a run applies them: each layer's variance follows its
    own fans (the stem maps 40 inputs, the blocks 256 units, the head 4 classes)."""
    group, _, mode = option.partition("_")
    overrides = [f"init={group}", "model.net.depth=3", "model.net.width=256"]
    overrides += [f"init.mode={mode}"] if mode else []
    torch.manual_seed(0)
    variance = {"he": lambda i, o: 2 / i, "he_fan_out": lambda i, o: 2 / o,
                "he_fan_avg": lambda i, o: 4 / (i + o), "glorot": lambda i, o: 2 / (i + o)}[option]
    layers = [m for m in _module(overrides, tmp_path).net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == [(40, 256), (256, 256), (256, 256), (256, 4)]
    for layer in layers:
        expected = variance(layer.in_features, layer.out_features)
        assert layer.weight.var().item() == pytest.approx(expected, rel=0.15)
        assert torch.count_nonzero(layer.bias) == 0


def test_l2_penalty_gradient_is_two_lambda_w(tmp_path: Path) -> None:
    module = _module(["regularizer=l2", "regularizer.l2=0.05", "model.net.depth=2", "model.net.width=8"],
                     tmp_path)
    module.l2_penalty().backward()
    for name, p in module.net.named_parameters():
        if p.ndim >= 2:
            assert torch.allclose(p.grad, 2 * 0.05 * p.detach()), name
        else:  # biases and norm parameters are not penalised
            assert p.grad is None, name


def test_he_init_keeps_relu_activations_stable_with_depth() -> None:
    torch.manual_seed(0)
    net = MLPClassifier(100, 10, depth=30, width=256)
    init.he(net)
    h = net.stem(torch.randn(512, 100))
    first = h.pow(2).mean()
    for block in net.blocks:
        h = block(h)
    assert 0.5 < h.pow(2).mean() / first < 2  # He et al.: E[h^2] is preserved through ReLU layers


def test_bad_model_and_regularizer_values_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(InstantiationException, match="model.net.order='sideways'"):
        _module(["model.net.order=sideways"], tmp_path)
    cfg = make_cfg(["data=mnist1d", "model=mlp_classifier", "regularizer.ensemble=0"], tmp_path)
    with pytest.raises(ConfigError, match="regularizer.ensemble=0"):
        validate(cfg)


def test_train_command_runs_an_mnist1d_ensemble(tmp_path: Path) -> None:
    result = run_command(["experiment=mnist1d_mlp", "regularizer=ensemble", "regularizer.ensemble=2",
                          "regularizer.augment=true", "data.num_train=200", "data.num_val=100",
                          "data.num_test=100", f"paths.data_dir={tmp_path}", "trainer.max_steps=20",
                          "trainer.val_check_interval=10", "logger=csv", "callbacks=diagnostics",
                          "trainer.enable_progress_bar=false"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (summary_path,) = tmp_path.rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "completed"
    for key in ("test/acc", "test/member_acc", "trainset/loss", "best/val/loss", "test/class_acc/9"):
        assert math.isfinite(summary["metrics"][key]), key
    diagnostics = json.loads((summary_path.parent / "diagnostics.json").read_text())
    assert len(diagnostics["layers"]) == 2 * 3 and diagnostics["history"][0]["step"] == 0
    assert "diag/act_std/00" in (summary_path.parent / "csv" / "metrics.csv").read_text()
