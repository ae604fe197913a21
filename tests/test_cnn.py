"""The convolutional and recurrent classifiers, logistic regression, channel-wise norms and He init
for convolutions."""

import functools
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from conftest import make_cfg
from dlstudies.config.argv import group_options
from dlstudies.config.errors import ConfigError
from dlstudies.models import init
from dlstudies.models.cnn import CNN
from dlstudies.models.mlp_classifier import MLPClassifier
from dlstudies.models.norms import BatchNorm, channel_norm
from dlstudies.models.rnn_classifier import RNNClassifier
from dlstudies.tasks.classifier import Classifier

RESNET = {"depth": 7, "width": 4, "residual": True}  # stem + 3 stages of one 2-conv block


@pytest.mark.parametrize(("in_shape", "conv"), [((40,), nn.Conv1d), ((28, 28), nn.Conv2d), ((3, 8, 8), nn.Conv2d)])
@pytest.mark.parametrize("head", ["avg", "flatten"])
def test_cnn_picks_its_convolution_from_the_input_shape(in_shape: tuple, conv: type, head: str) -> None:
    net = CNN(in_shape, 10, head=head, **RESNET)
    assert net(torch.randn(5, *in_shape)).shape == (5, 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d | nn.Conv2d)]
    assert {type(m) for m in convs} == {conv}
    assert convs[0].in_channels == (3 if len(in_shape) == 3 else 1)


def test_cnn_stages_halve_the_resolution_and_double_the_channels() -> None:
    net = CNN((28, 28), 10, stem_stride=2, **RESNET)
    shapes = []
    h = net.stem(torch.randn(2, 1, 28, 28))
    for block in net.blocks:
        h = block(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes == [(4, 14, 14), (8, 7, 7), (16, 4, 4)]
    # projections (1x1, stride 2) exactly where the shape changes, identities elsewhere
    shortcuts = [block.shortcut for block in net.blocks]
    assert isinstance(shortcuts[0], nn.Identity)
    assert [(s.in_channels, s.out_channels, s.kernel_size, s.stride) for s in shortcuts[1:]] == [
        (4, 8, (1, 1), (2, 2)), (8, 16, (1, 1), (2, 2))]
    assert all(block.shortcut is None for block in CNN((28, 28), 10, depth=7, width=4).blocks)


def test_cnn_depth_counts_convolutions_as_he_et_al() -> None:
    net = CNN((16, 16), 10, depth=19, width=2)  # He et al.'s 20 layers: 19 convolutions + the head
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 19
    assert [len(stage) for stage in (net.blocks[:3], net.blocks[3:6], net.blocks[6:])] == [3, 3, 3]
    assert sum(isinstance(m, nn.Conv2d) for m in CNN((16, 16), 10, depth=6, block_layers=1).modules()) == 6


def test_residual_block_adds_its_input_and_pre_order_ends_with_norm_and_activation() -> None:
    net = CNN((8, 8), 3, order="pre", norm=functools.partial(BatchNorm), **RESNET)
    block = net.blocks[0]
    h = torch.randn(2, 4, 8, 8)
    assert torch.allclose(block(h), h + block.branch(h))
    assert isinstance(block.branch[0][0], nn.modules.batchnorm._BatchNorm)  # norm -> act -> conv
    assert [type(m) for m in net.head[:2]] == [type(channel_norm(functools.partial(BatchNorm), 16)), nn.ReLU]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"depth": 6}, "model.net.depth=6 is not allowed; with model.net.block_layers=2 it must be 1 + a multiple of 2 (the stem, then whole blocks)"),
    ({"depth": 0}, "model.net.depth=0 is not allowed; it must be an integer >= 1"),
    ({"kernel": 0}, "model.net.kernel=0 is not allowed; it must be an integer >= 1"),
    ({"head": "max"}, "model.net.head='max' is not allowed; use avg or flatten"),
    ({"order": "mid"}, "model.net.order='mid' is not allowed; use post or pre"),
])
def test_bad_cnn_options_fail_in_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        CNN((40,), 10, **kwargs)


def test_channel_norms_match_pytorchs_convolutional_norms() -> None:
    x = torch.randn(6, 5, 7, 7)
    batch = channel_norm(functools.partial(BatchNorm), 5)
    assert torch.allclose(batch(x), nn.BatchNorm2d(5)(x), atol=1e-5)
    assert torch.allclose(batch(x[..., 0]), nn.BatchNorm1d(5)(x[..., 0]), atol=1e-5)
    layer = channel_norm(functools.partial(nn.LayerNorm), 5)  # over one example's channels and positions
    assert torch.allclose(layer(x), nn.functional.layer_norm(x, (5, 7, 7)), atol=1e-5)
    rms = channel_norm(functools.partial(nn.RMSNorm), 5)  # over the channels at each position
    assert torch.allclose(rms(x), nn.RMSNorm(5)(x.movedim(1, -1)).movedim(-1, 1), atol=1e-6)
    assert isinstance(channel_norm(None, 5), nn.Identity)


def test_he_init_uses_channels_times_kernel_as_the_fan_in_of_a_convolution() -> None:
    torch.manual_seed(0)
    net = CNN((64, 64), 10, depth=3, width=64, kernel=5, stages=1, block_layers=1)
    init.he(net)
    conv = net.blocks[0].branch[0][0]
    assert conv.weight.shape == (64, 64, 5, 5) and not conv.bias.any()
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 25)), rel=0.02)
    one_d = CNN((40,), 10, depth=3, width=64, kernel=5, stages=1, block_layers=1)
    init.he(one_d)
    assert one_d.blocks[0].branch[0][0].weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 5)), rel=0.03)


def _waves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy sine waves of 4 frequencies at random phases: the class is the frequency."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    t = torch.arange(40)
    phase = torch.rand(n, 1, generator=g) * 2 * math.pi
    return torch.sin((y[:, None] + 1) * 2 * math.pi * t / 40 + phase) + 0.3 * torch.randn(n, 40, generator=g), y


@pytest.mark.parametrize("make_net", [
    lambda: CNN((40,), 4, depth=3, width=8, block_layers=1, residual=True),
    lambda: RNNClassifier((40,), 4, width=16),
], ids=["cnn", "gru"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cnn_and_rnn_classifiers_learn_a_tiny_set(make_net: Callable[[], nn.Module], seed: int) -> None:
    torch.manual_seed(seed)  # built here, not at collection, so the weights do not depend on test order
    net = make_net()
    x, y = _waves(128, 0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    start = nn.functional.cross_entropy(net(x), y).item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * start
    x_test, y_test = _waves(128, 1)
    assert (net(x_test).argmax(-1) == y_test).float().mean() > 0.9


def test_rnn_classifier_reads_one_value_per_step_into_the_fused_gru() -> None:
    net = RNNClassifier((40,), 10, width=8)
    x = torch.randn(3, 40)
    out, _ = net.core(x.unsqueeze(-1))
    assert isinstance(net.core, nn.GRU) and torch.allclose(net(x), net.head(out[:, -1]))
    rows = RNNClassifier((28, 28), 10, cell="lstm", width=8, readout="all")  # an image row per step
    assert rows.core.input_size == 28 and rows.head.in_features == 28 * 8
    assert rows(torch.randn(2, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match=r"^model.net.readout='mean' is not allowed; use final or all$"):
        RNNClassifier((40,), 10, readout="mean")


def test_a_bidirectional_rnn_classifier_reads_both_final_states_as_pytorch_returns_them() -> None:
    net = RNNClassifier((40,), 10, width=6, bidirectional=True)
    x = torch.randn(3, 40)
    _, h_n = net.core(x.unsqueeze(-1))  # (directions, B, width): forward's last step, backward's step 0
    assert torch.allclose(net(x), net.head(torch.cat([h_n[0], h_n[1]], dim=1)), atol=1e-6)
    paper = RNNClassifier((40,), 10, width=6, readout="all", bidirectional=True)  # the MNIST-1D paper's GRU
    assert paper.head.in_features == 2 * 6 * 40 and paper(x).shape == (3, 10)
    with pytest.raises(ConfigError, match=r"^model.net.bidirectional=true is not allowed with model.net.cell=gru"):
        RNNClassifier((40,), 10, bidirectional=True, norm=nn.LayerNorm)


def test_mlp_of_depth_zero_is_logistic_regression() -> None:
    net = MLPClassifier((28, 28), 10, depth=0)
    assert [tuple(p.shape) for p in net.parameters()] == [(10, 784), (10,)]  # one linear map
    assert net(torch.randn(2, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match=r"^model.net.depth=-1 is not allowed; it must be an integer >= 0$"):
        MLPClassifier((40,), 10, depth=-1)


OPTIONS = [(group, option) for group in ("norm", "activation", "init") for option in group_options(group)]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
@pytest.mark.parametrize("in_shape", [(40,), (12, 12)])
def test_every_norm_activation_and_init_composes_with_model_cnn(group: str, option: str, in_shape: tuple,
                                                              tmp_path: Path) -> None:
    cfg = make_cfg(["data=mnist1d", "model=cnn", "model.net.residual=true", f"{group}={option}"], tmp_path)
    module = instantiate(cfg.model, net={"in_shape": list(in_shape), "num_classes": 4}, class_names=list("abcd"))
    assert isinstance(module, Classifier)
    logits = module(torch.randn(3, *in_shape))
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    if group == "activation":
        assert sum(isinstance(m, type(instantiate(cfg.activation)())) for m in module.net.modules()) == 7
