"""Sequence language models: shapes, causality, learning, recurrent state, parity with PyTorch."""

import functools
import math
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

from dlstudies.models.cells import GRUCell, LSTMCell, Recurrent
from dlstudies.models.gru import GRULanguageModel
from dlstudies.models.init import glorot, he
from dlstudies.models.lstm import LSTMLanguageModel
from dlstudies.models.norms import BatchNorm
from dlstudies.models.rnn import RNNLanguageModel
from dlstudies.models.transformer import TransformerLanguageModel

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
V = 11
LAYER_NORM = functools.partial(nn.LayerNorm)
RECURRENT = dict(embed_dim=16, hidden=24, num_layers=2)
GPT = dict(block_size=16, n_layer=2, n_head=2, n_embd=16)

MODELS = {
    "rnn": lambda: RNNLanguageModel(V, **RECURRENT),
    "rnn_relu_layernorm": lambda: RNNLanguageModel(
        V, **RECURRENT, norm=LAYER_NORM, activation=functools.partial(nn.ReLU)
    ),
    "rnn_batchnorm": lambda: RNNLanguageModel(V, **RECURRENT, norm=functools.partial(BatchNorm)),
    "lstm": lambda: LSTMLanguageModel(V, **RECURRENT),
    "lstm_tied": lambda: LSTMLanguageModel(V, **RECURRENT, tie_weights=True),
    "lstm_layernorm": lambda: LSTMLanguageModel(V, **RECURRENT, norm=LAYER_NORM),
    "lstm_rmsnorm": lambda: LSTMLanguageModel(V, **RECURRENT, norm=functools.partial(nn.RMSNorm)),
    "lstm_batchnorm": lambda: LSTMLanguageModel(V, **RECURRENT, norm=functools.partial(BatchNorm)),
    "gru": lambda: GRULanguageModel(V, **RECURRENT),
    "gru_layernorm": lambda: GRULanguageModel(V, **RECURRENT, norm=LAYER_NORM),
    "gru_batchnorm": lambda: GRULanguageModel(V, **RECURRENT, norm=functools.partial(BatchNorm)),
    "transformer": lambda: TransformerLanguageModel(V, **GPT),
    "transformer_post_ln": lambda: TransformerLanguageModel(V, **GPT, post_ln=True),
    "transformer_rmsnorm": lambda: TransformerLanguageModel(
        V, **GPT, norm=functools.partial(nn.RMSNorm)
    ),
    "transformer_batchnorm": lambda: TransformerLanguageModel(
        V, **GPT, norm=functools.partial(BatchNorm)
    ),
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


@pytest.mark.parametrize("cls", [LSTMLanguageModel, GRULanguageModel])
def test_gated_models_reject_an_activation(cls: type) -> None:
    with pytest.raises(ValueError, match="no free activation"):
        cls(V, activation=functools.partial(nn.ReLU))


def test_tied_weights_share_the_embedding() -> None:
    model = build("lstm_tied")
    assert model.head.weight is model.embed.weight
    gpt = build("transformer")
    assert gpt.head.weight is gpt.wte.weight


def test_attention_equals_naive_masked_softmax() -> None:
    torch.manual_seed(0)
    attn = build("transformer").blocks[0].attn.eval()
    x = torch.randn(2, 7, 16)
    B, T, C = x.shape
    heads, d = attn.n_head, C // attn.n_head
    q, k, v = (t.view(B, T, heads, d).transpose(1, 2) for t in attn.qkv(x).split(C, dim=-1))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
    torch.testing.assert_close(attn(x), attn.proj(y), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru", "transformer"])
def test_config_instantiates(model: str) -> None:
    cfg = OmegaConf.merge(
        OmegaConf.create(
            {
                "optimizer": {},
                "scheduler": {},
                "regularizer": {"dropout": 0.1},
                "norm": {"_target_": "torch.nn.LayerNorm", "_partial_": True},
                "activation": None,
                "model": OmegaConf.load(CONF / f"{model}.yaml"),
            }
        )
    )
    net = hydra.utils.instantiate(cfg.model.net, vocab_size=V)
    assert isinstance(net.block_size, int) == (model == "transformer")
    assert any(isinstance(m, nn.LayerNorm) for m in net.modules())
    assert net(tokens(2, 8)).shape == (2, 8, V)
    if model in ("rnn", "transformer"):
        relu = hydra.utils.instantiate(
            cfg.model.net, vocab_size=V, activation=functools.partial(nn.ReLU)
        )
        assert any(isinstance(m, nn.ReLU) for m in relu.modules())


@pytest.mark.parametrize("cls", [LSTMLanguageModel, GRULanguageModel])
@pytest.mark.parametrize("norm", [None, LAYER_NORM], ids=["fused", "layernorm_cells"])
def test_inits_reach_every_gate_of_the_recurrent_weights(cls: type, norm) -> None:
    """He and Glorot treat each gate's block of weight_ih / weight_hh as a layer (fan_out = H)."""
    torch.manual_seed(0)
    net = cls(V, embed_dim=64, hidden=128, num_layers=2, norm=norm)
    recurrent = {n: p for n, p in net.named_parameters() if "weight_ih" in n or "weight_hh" in n}
    assert len(recurrent) == 4
    for init, expected_std in [(he, lambda fan_in: math.sqrt(2 / fan_in)),
                               (glorot, lambda fan_in: math.sqrt(2 / (fan_in + 128)))]:
        init(net)
        for name, weight in recurrent.items():
            for gate in weight.split(128):
                assert gate.std().item() == pytest.approx(expected_std(weight.shape[1]), rel=0.1), name
        assert all(p.abs().sum() == 0 for n, p in net.named_parameters() if "bias" in n and "norm" not in n)
