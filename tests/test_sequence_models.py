"""Sequence language models: shapes, causality, learning, recurrent state, sizes, parity with
PyTorch, and the inits (``init=default`` is PyTorch's own)."""

import functools
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlstudies.config.errors import ConfigError
from dlstudies.models import init
from dlstudies.models.cells import ElmanCell, GRUCell, LSTMCell, Recurrent
from dlstudies.models.norms import BatchNorm
from dlstudies.models.recurrent import RecurrentLanguageModel
from dlstudies.models.transformer import TransformerLanguageModel

V = 11
LAYER_NORM = functools.partial(nn.LayerNorm)
RECURRENT = dict(embed=16, width=24, depth=2)
GPT = dict(block_size=16, depth=2, heads=2, width=16)
RNN, LSTM, GRU = (functools.partial(RecurrentLanguageModel, V, cell=cell, **RECURRENT)
                  for cell in ("rnn", "lstm", "gru"))
GPT_LM = functools.partial(TransformerLanguageModel, V, **GPT)

MODELS = {
    "rnn": RNN,
    "rnn_relu_layernorm": functools.partial(RNN, norm=LAYER_NORM, activation=nn.ReLU),
    "rnn_batchnorm": functools.partial(RNN, norm=BatchNorm),
    "lstm": LSTM,
    "lstm_tied": functools.partial(LSTM, tie_weights=True),
    "lstm_layernorm": functools.partial(LSTM, norm=LAYER_NORM),
    "lstm_rmsnorm": functools.partial(LSTM, norm=nn.RMSNorm),
    "lstm_batchnorm": functools.partial(LSTM, norm=BatchNorm),
    "gru": GRU,
    "gru_layernorm": functools.partial(GRU, norm=LAYER_NORM),
    "gru_batchnorm": functools.partial(GRU, norm=BatchNorm),
    "transformer": GPT_LM,
    "transformer_post_ln": functools.partial(GPT_LM, post_ln=True),
    "transformer_rmsnorm": functools.partial(GPT_LM, norm=nn.RMSNorm),
    "transformer_batchnorm": functools.partial(GPT_LM, norm=BatchNorm),
}
RECURRENT_MODELS = [name for name in MODELS if not name.startswith("transformer")]


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return MODELS[name]()


def tokens(batch: int = 3, length: int = 12) -> torch.Tensor:
    return torch.randint(0, V, (batch, length), generator=torch.Generator().manual_seed(1))


def parts(state: torch.Tensor | tuple) -> tuple:
    """A recurrent state as a tuple of tensors: the LSTM's (h, c), or (h,)."""
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("name", MODELS)
def test_output_shape(name: str) -> None:
    assert build(name)(tokens(3, 12)).shape == (3, 12, V)


@pytest.mark.parametrize("name", MODELS)
def test_causal(name: str) -> None:
    model = build(name).eval()
    idx = tokens(2, 12)
    reference = model(idx)
    for t in (0, 4, 10):
        changed = idx.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1 + torch.arange(11 - t)) % V
        out = model(changed)
        torch.testing.assert_close(out[:, : t + 1], reference[:, : t + 1])
        assert not torch.allclose(out[:, t + 1 :], reference[:, t + 1 :])


@pytest.mark.parametrize("name", MODELS)
def test_learns_repeated_text(name: str) -> None:
    text = "hello world, hello there. " * 8
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text])
    vocab = len(chars)
    assert vocab <= V
    model = build(name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        starts = torch.randint(0, len(data) - 17, (16,), generator=gen)
        window = torch.stack([data[s : s + 17] for s in starts])
        logits = model(window[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), window[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * math.log(vocab)


@pytest.mark.parametrize("name", RECURRENT_MODELS)
def test_step_matches_forward_and_chunks(name: str) -> None:
    model = build(name).eval()
    idx = tokens(3, 12)
    whole, state = model.step(idx)
    torch.testing.assert_close(whole, model(idx))
    first, mid = model.step(idx[:, :5])
    second, end = model.step(idx[:, 5:], mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    for a, b in zip(parts(end), parts(state)):
        torch.testing.assert_close(a, b)
    assert model.block_size is None


def test_elman_cells_equal_pytorch_rnn() -> None:
    """With tanh and no norm the hand-written Elman cells compute what nn.RNN does."""
    torch.manual_seed(0)
    fused = nn.RNN(5, 7, num_layers=2, batch_first=True)
    runner = Recurrent([ElmanCell(size, 7) for size in (5, 7)])
    with torch.no_grad():
        for layer, cell in enumerate(runner.cells):
            cell.ih.weight.copy_(getattr(fused, f"weight_ih_l{layer}"))
            cell.ih.bias.copy_(getattr(fused, f"bias_ih_l{layer}") + getattr(fused, f"bias_hh_l{layer}"))
            cell.hh.weight.copy_(getattr(fused, f"weight_hh_l{layer}"))
    x, h = torch.randn(4, 9, 5), torch.randn(2, 4, 7)
    expected, expected_h = fused(x, h)
    out, out_h = runner(x, h)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_h, expected_h, atol=1e-5, rtol=1e-5)


def copy_from_fused(runner: Recurrent, fused: nn.Module) -> None:
    with torch.no_grad():
        for layer, cell in enumerate(runner.cells):
            for param in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, param).copy_(getattr(fused, f"{param}_l{layer}"))


def fused_and_runner(kind: str, norm=nn.Identity) -> tuple[nn.Module, Recurrent, tuple]:
    torch.manual_seed(0)
    fused_cls, cell_cls = {"lstm": (nn.LSTM, LSTMCell), "gru": (nn.GRU, GRUCell)}[kind]
    fused = fused_cls(5, 7, num_layers=3, batch_first=True)
    runner = Recurrent([cell_cls(size, 7, norm, norm) for size in (5, 7, 7)])
    copy_from_fused(runner, fused)
    h = torch.randn(3, 4, 7)
    state = (h, torch.randn(3, 4, 7)) if kind == "lstm" else h
    return fused, runner, state


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cells_equal_pytorch(kind: str) -> None:
    fused, runner, state = fused_and_runner(kind)
    x = torch.randn(4, 9, 5)
    expected, expected_state = fused(x, state)
    out, out_state = runner(x, state)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    for a, b in zip(parts(out_state), parts(expected_state)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_layernorm_cells_differ_only_by_the_norm(kind: str) -> None:
    fused, runner, state = fused_and_runner(kind, norm=nn.LayerNorm)
    x = torch.randn(4, 9, 5)
    expected = fused(x, state)[0]
    assert not torch.allclose(runner(x, state)[0], expected, atol=1e-3)
    for cell in runner.cells:
        for name, module in list(cell.named_children()):
            if isinstance(module, nn.LayerNorm):
                setattr(cell, name, nn.Identity())
    torch.testing.assert_close(runner(x, state)[0], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip(name: str, tmp_path: Path) -> None:
    model = build(name)
    model(tokens())  # move BatchNorm running statistics away from their initial values
    torch.save(model.state_dict(), tmp_path / "model.pt")
    torch.manual_seed(123)
    fresh = MODELS[name]()
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    torch.testing.assert_close(fresh.eval()(tokens()), model.eval()(tokens()))


def test_transformer_rejects_long_input() -> None:
    with pytest.raises(ValueError, match="block_size=16"):
        build("transformer")(tokens(1, 17))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_models_reject_an_activation(cell: str) -> None:
    with pytest.raises(ConfigError, match=f"^model={cell} has no free activation .* drop activation=ReLU$"):
        RecurrentLanguageModel(V, cell=cell, activation=functools.partial(nn.ReLU))


BAD_SIZES = [("rnn", "depth", 0), ("lstm", "width", -1), ("gru", "embed", 2.5), ("lstm", "depth", True),
             ("transformer", "depth", -1), ("transformer", "heads", 0), ("transformer", "width", 0),
             ("transformer", "block_size", 0)]


@pytest.mark.parametrize(("name", "size", "value"), BAD_SIZES, ids=[f"{n}-{s}={v}" for n, s, v in BAD_SIZES])
def test_bad_sizes_fail_in_the_constructor_in_one_line(name: str, size: str, value) -> None:
    with pytest.raises(ConfigError) as error:
        MODELS[name](**{size: value})
    assert str(error.value) == f"model.net.{size}={value!r} is not allowed; it must be an integer >= 1"


def test_bad_cell_and_indivisible_heads_fail_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^model.net.cell='lstn' is not allowed; use rnn, lstm, gru$"):
        LSTM(cell="lstn")
    with pytest.raises(ConfigError, match=r"^model.net.heads=3 is not allowed; it must divide "
                                          r"model.net.width=16$"):
        GPT_LM(heads=3)


def test_tied_weights_share_the_embedding() -> None:
    model = build("lstm_tied")
    assert model.head.weight is model.embedding.weight
    gpt = build("transformer")
    assert gpt.head.weight is gpt.wte.weight


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("norm", [None, LAYER_NORM], ids=["fused", "layernorm_cells"])
def test_inits_reach_every_gate_of_the_recurrent_weights(cell: str, norm) -> None:
    """He and Glorot treat each gate's block of weight_ih / weight_hh as a layer (fan_out = H)."""
    torch.manual_seed(0)
    net = RecurrentLanguageModel(V, cell=cell, embed=64, width=128, depth=2, norm=norm)
    recurrent = {n: p for n, p in net.named_parameters() if "weight_ih" in n or "weight_hh" in n}
    assert len(recurrent) == 4
    for draw, expected_std in [(init.he, lambda fan_in: math.sqrt(2 / fan_in)),
                               (init.glorot, lambda fan_in: math.sqrt(2 / (fan_in + 128)))]:
        draw(net)
        for name, weight in recurrent.items():
            for gate in weight.split(128):
                assert gate.std().item() == pytest.approx(expected_std(weight.shape[1]), rel=0.1), name
        assert all(p.abs().sum() == 0 for n, p in net.named_parameters() if "bias" in n and "norm" not in n)


@pytest.mark.parametrize("name", MODELS)
def test_default_init_redraws_every_parameter(name: str) -> None:
    """init=default resets every layer, the hand-written cells included: nothing keeps a value
    that PyTorch's constructors would not give."""
    model = build(name)
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(7.0)
    init.default(model)
    for param_name, param in model.named_parameters():
        assert not (param == 7.0).all(), f"{param_name} was not reset"


def test_default_init_gives_the_gpt_pytorchs_linear_and_embedding_init() -> None:
    """The GPT's own scheme is N(0, 0.02); init=default gives every nn.Linear PyTorch's
    kaiming-uniform U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and every embedding N(0, 1)."""
    torch.manual_seed(0)
    gpt = TransformerLanguageModel(V, block_size=16, depth=2, heads=4, width=64, tie_weights=False)
    linears = [m for m in gpt.modules() if isinstance(m, nn.Linear)]
    assert all(m.weight.std() < 0.025 for m in linears)  # the GPT's own scheme before
    init.default(gpt)
    for layer in linears:
        fresh = nn.Linear(layer.in_features, layer.out_features).weight
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
        assert layer.weight.std().item() == pytest.approx(fresh.std().item(), rel=0.1)
        assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert gpt.wte.weight.std().item() == pytest.approx(1.0, rel=0.1)


def test_default_init_keeps_tied_weights_as_the_embedding_draws_them() -> None:
    torch.manual_seed(0)
    gpt = TransformerLanguageModel(V, block_size=16, depth=1, heads=2, width=64)
    init.default(gpt)
    assert gpt.head.weight is gpt.wte.weight
    assert gpt.wte.weight.std().item() == pytest.approx(1.0, rel=0.1)  # N(0, 1), not the head's U
