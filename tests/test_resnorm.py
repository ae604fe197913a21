"""The residual-network and normalization studies' measurements: shattered gradients on known
answers and in the textbook's setup, swish, Glorot biases, the scalar grid, the filter-normalised
loss surface and batch norm's training- vs evaluation-mode answers."""

import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from conftest import make_cfg
from dlstudies.callbacks.after_training import error, filter_normalised_direction, loss_surface
from dlstudies.callbacks.diagnostics import autocorrelation, line_gradients, normalised_by, shattered_gradients
from dlstudies.data.scalar_grid import ScalarGridDataModule
from dlstudies.models import init
from dlstudies.models.activations import Swish
from dlstudies.models.mlp_classifier import MLPClassifier
from dlstudies.models.norms import BatchNorm

GRID = torch.linspace(-2, 2, 256).unsqueeze(1)


@pytest.mark.parametrize("span, x", [("range", GRID), ("examples", torch.randn(9, 40))])
def test_a_single_linear_layer_has_a_constant_gradient_autocorrelation_1(span: str, x: torch.Tensor) -> None:
    torch.manual_seed(0)
    result = shattered_gradients(nn.Linear(x.shape[1], 3), x, lines=8, max_lag=16, span=span)
    assert result["autocorr"] == [1.0] * 17 and result["lag1"] == 1.0
    assert torch.allclose(torch.tensor(result["gradient"]), torch.tensor(result["gradient"][0]))


def test_autocorrelation_of_a_constant_is_1_even_with_rounding_noise() -> None:
    g = torch.full((256,), 0.3) + 1e-9 * torch.randn(256, generator=torch.Generator().manual_seed(0))
    assert autocorrelation(g, 3).tolist() == [1.0] * 4


def test_batch_norm_is_differentiated_with_the_lines_statistics_held_fixed() -> None:
    """Each point's own derivative, not the rounding noise of a batch sum that batch norm makes
    constant (Linear -> ReLU -> batch norm -> linear head)."""
    torch.manual_seed(0)
    net = MLPClassifier(1, 2, depth=1, width=200, order="act_norm", norm=BatchNorm).double()
    init.glorot(net, biases=True)
    grid, projection, h = GRID.double(), torch.tensor([1.0, -1.0], dtype=torch.float64), 1e-6
    frozen = normalised_by(net, grid)
    assert torch.allclose(frozen(grid), net.train()(grid))              # the training-mode outputs
    g = line_gradients(net, grid[0], grid[-1], 256, projection)
    slope = (frozen(grid + h) - frozen(grid - h)) @ projection / (2 * h) * 4  # d/dt = 4 d/dx
    assert torch.allclose(g, slope, rtol=1e-4, atol=1e-4 * float(slope.abs().max()))


def _textbook_lag1(depth: int, residual: bool, norm: bool, seeds: int = 3) -> float:
    """Lag-1 autocorrelation of d y / d x on the grid, Prince fig 11.3's nets with the study's
    batch norm after the ReLU, mean over seeds."""
    values = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = MLPClassifier(1, 2, depth=depth, width=200, residual=residual, order="act_norm",
                            norm=BatchNorm if norm else None)
        init.glorot(net, biases=True)
        values.append(shattered_gradients(net, GRID, lines=2, span="range")["lag1"])
    return sum(values) / seeds


def test_in_the_textbooks_setup_only_the_deep_plain_net_with_batch_norm_shatters() -> None:
    assert _textbook_lag1(1, False, True) > 0.9                              # fig 11.3a: smooth
    assert abs(_textbook_lag1(24, False, True)) < 0.2                        # fig 11.3b: white noise
    assert _textbook_lag1(24, True, True) > 0.5                              # residual: still correlated
    assert _textbook_lag1(24, False, False) > 0.9                            # no batch norm: smooth


def test_swish_is_silu_at_beta_1_and_x_sigmoid_beta_x_otherwise() -> None:
    x = torch.linspace(-5, 5, 101)
    assert torch.allclose(Swish()(x), F.silu(x))
    assert torch.allclose(Swish(0.4)(x), x * torch.sigmoid(0.4 * x))
    assert not list(Swish(0.4).parameters())


def test_a_learnable_swish_beta_is_a_parameter_that_gets_a_gradient(tmp_path: Path) -> None:
    cfg = make_cfg(["activation=swish", "activation.beta=1.4", "activation.learnable=true"], tmp_path)
    swish = instantiate(cfg.activation)()
    assert isinstance(swish.beta, nn.Parameter) and float(swish.beta) == pytest.approx(1.4)
    swish(torch.linspace(-3, 3, 7)).sum().backward()
    assert swish.beta.grad is not None and float(swish.beta.grad) != 0.0


def test_glorot_draws_biases_like_the_weights_only_when_asked() -> None:
    torch.manual_seed(0)
    net = MLPClassifier(1, 2, depth=3, width=200)
    init.glorot(net)
    assert all(float(m.bias.abs().max()) == 0.0 for m in net.modules() if isinstance(m, nn.Linear))
    init.glorot(net, biases=True)
    hidden = net.blocks[0].branch[0]
    bound = (6 / 400) ** 0.5
    assert 0.8 * bound < float(hidden.bias.abs().max()) <= bound
    assert float(hidden.bias.std()) == pytest.approx(bound / 3**0.5, rel=0.2)


def test_the_scalar_grid_is_one_standardised_input_feature_labelled_by_sign() -> None:
    data = ScalarGridDataModule(points=11, batch_size=11)
    data.setup()
    x, y = data.splits["train"]
    assert x.shape == (11, 1) and data.model_kwargs()["net"] == {"in_shape": [1], "num_classes": 2}
    assert torch.equal(y, (x[:, 0] >= 0).long()) and float(x.mean()) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"^data.points=1, data.low=0.0, data.high=1.0 are not allowed"):
        ScalarGridDataModule(points=1, low=0.0, high=1.0)


def test_filter_normalised_directions_match_each_units_weight_norm_and_skip_1d_parameters() -> None:
    torch.manual_seed(0)
    net = MLPClassifier(40, 10, depth=2, width=16, norm=BatchNorm)
    for p, d in zip(net.parameters(), filter_normalised_direction(net, torch.Generator().manual_seed(1))):
        if p.dim() == 1:
            assert not d.any()
        else:
            assert torch.allclose(d.norm(dim=1), p.detach().norm(dim=1), rtol=1e-5)


def test_the_loss_surface_is_the_nets_loss_at_its_centre_and_leaves_the_net_alone() -> None:
    torch.manual_seed(0)
    net, x, y = MLPClassifier(40, 10, depth=2, width=16), torch.randn(64, 40), torch.randint(0, 10, (64,))
    before = [p.clone() for p in net.parameters()]
    surface = loss_surface(net, x, y, radius=0.5, points=5)
    assert surface["coords"] == pytest.approx([-0.5, -0.25, 0.0, 0.25, 0.5])
    assert surface["loss"][2][2] == pytest.approx(float(F.cross_entropy(net(x), y)), rel=1e-5)
    assert surface["loss"][0][0] != pytest.approx(surface["loss"][2][2])
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("norm, differs", [(BatchNorm, True), (functools.partial(nn.LayerNorm), False)])
def test_only_batch_norm_answers_differently_in_training_and_evaluation_mode(norm, differs: bool) -> None:
    torch.manual_seed(0)
    net = MLPClassifier(40, 10, depth=3, width=32, norm=norm)
    x, y = torch.randn(200, 40), torch.randint(0, 10, (200,))
    with torch.no_grad():
        net.train()(3 * x + 1)  # running statistics that differ from any batch's
    running = [b.clone() for b in net.buffers()]
    modes = error(net, x, y, 2, train_mode=True), error(net, x, y, 2, train_mode=False)
    assert (modes[0] != modes[1]) == differs
    assert all(torch.equal(a, b) for a, b in zip(running, net.buffers()))  # measured on a copy


def test_batch_statistics_never_leave_a_batch_of_one() -> None:
    torch.manual_seed(0)
    net = MLPClassifier(40, 10, depth=2, width=8, norm=BatchNorm)
    x, y = torch.randn(7, 40), torch.randint(0, 10, (7,))
    assert 0.0 <= error(net, x, y, 3, train_mode=True) <= 1.0  # batches of 3 and 4, not 3, 3 and 1
