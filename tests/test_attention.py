"""The one attention module: parity with nn.MultiheadAttention (self, cross, padding, causal), the
weights it returns, padding that never changes real positions, and the key-value cache."""

import pytest
import torch
from torch import nn

from dlstudies.models.attention import MultiHeadAttention
from dlstudies.models.transformer import TransformerBlock, TransformerLanguageModel

WIDTH, HEADS = 16, 4


def attention_pair(causal: bool = False) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    """Ours and PyTorch's with the same weights, in eval mode."""
    torch.manual_seed(0)
    ours = MultiHeadAttention(WIDTH, HEADS, causal=causal).eval()
    reference = nn.MultiheadAttention(WIDTH, HEADS, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(ours.qkv.weight)
        reference.in_proj_bias.copy_(ours.qkv.bias)
        reference.out_proj.weight.copy_(ours.proj.weight)
        reference.out_proj.bias.copy_(ours.proj.bias)
    return ours, reference


def padding(lengths: list[int], total: int) -> torch.Tensor:
    """(B, total) True after each row's length, nn.MultiheadAttention's key_padding_mask."""
    return torch.arange(total)[None, :] >= torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_self_attention_equals_pytorch_with_padding(causal: bool) -> None:
    ours, reference = attention_pair(causal)
    x = torch.randn(3, 7, WIDTH)
    pad = padding([7, 5, 2], 7)
    future = torch.ones(7, 7, dtype=torch.bool).triu(1) if causal else None  # True: may not attend
    expected, expected_weights = reference(x, x, x, key_padding_mask=pad, attn_mask=future,
                                           average_attn_weights=False)
    out, weights = ours(x, key_padding_mask=pad, need_weights=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours(x, key_padding_mask=pad), expected, atol=1e-5, rtol=1e-5)


def test_causal_attention_without_a_mask_equals_pytorch() -> None:
    ours, reference = attention_pair(causal=True)
    x = torch.randn(2, 9, WIDTH)
    future = nn.Transformer.generate_square_subsequent_mask(9)
    torch.testing.assert_close(ours(x), reference(x, x, x, attn_mask=future)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_bf16_autocast_on_cpu_attends_in_float32(causal: bool) -> None:
    """Under CPU bfloat16 autocast the projections run in bf16 but the attention product in fp32
    (the faster CPU kernel there): the output is the fp32 attention of the bf16 projections."""
    ours, _ = attention_pair(causal)
    x = torch.randn(3, 7, WIDTH)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(x)
        q, k, v = ours.qkv(x).view(3, 7, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
    assert q.dtype == torch.bfloat16
    y = nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = ours.proj(y.transpose(1, 2).reshape(3, 7, WIDTH))
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    torch.testing.assert_close(out.float(), ours(x), atol=0.05, rtol=0.05)


def test_cross_attention_equals_pytorch_with_padding() -> None:
    ours, reference = attention_pair()
    x, memory = torch.randn(3, 4, WIDTH), torch.randn(3, 6, WIDTH)
    pad = padding([6, 3, 1], 6)
    expected, expected_weights = reference(x, memory, memory, key_padding_mask=pad,
                                           average_attn_weights=False)
    out, weights = ours(x, memory, key_padding_mask=pad, need_weights=True)
    assert weights.shape == (3, HEADS, 4, 6)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours(x, memory, key_padding_mask=pad), expected, atol=1e-5, rtol=1e-5)


def test_returned_weights_sum_to_one_and_reproduce_the_output() -> None:
    """The explicit path (weights kept) and SDPA's agree; weights are a distribution over the
    allowed keys only."""
    ours, _ = attention_pair(causal=True)
    x = torch.randn(2, 6, WIDTH)
    pad = padding([6, 4], 6)
    out, weights = ours(x, key_padding_mask=pad, need_weights=True)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, HEADS, 6))
    assert (weights.triu(1) == 0).all() and (weights[1, :, :, 4:] == 0).all()
    values = ours.qkv(x)[..., 2 * WIDTH:].view(2, 6, HEADS, WIDTH // HEADS).transpose(1, 2)
    mixed = (weights @ values).transpose(1, 2).reshape(2, 6, WIDTH)
    torch.testing.assert_close(ours.proj(mixed), out, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours(x, key_padding_mask=pad), out, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "decoder"])
@pytest.mark.parametrize("post_ln", [False, True], ids=["pre_ln", "post_ln"])
def test_padding_never_changes_real_positions(causal: bool, post_ln: bool) -> None:
    """A block run on a padded batch gives its real positions exactly what it gives the
    unpadded sequences, whatever the padding holds."""
    torch.manual_seed(0)
    block = TransformerBlock(WIDTH, HEADS, causal=causal, post_ln=post_ln).eval()
    short, long = torch.randn(1, 3, WIDTH), torch.randn(1, 7, WIDTH)
    garbage = torch.randn(1, 4, WIDTH) * 100
    batch = torch.cat([torch.cat([short, garbage], 1), long])
    out = block(batch, key_padding_mask=padding([3, 7], 7))
    torch.testing.assert_close(out[0, :3], block(short)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1], block(long)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "decoder"])
def test_causal_switch_decides_whether_earlier_positions_see_later_ones(causal: bool) -> None:
    torch.manual_seed(0)
    block = TransformerBlock(WIDTH, HEADS, causal=causal).eval()
    x = torch.randn(1, 6, WIDTH)
    changed = x.clone()
    changed[0, 4:] += 1.0
    earlier_unchanged = torch.allclose(block(x)[0, :4], block(changed)[0, :4])
    assert earlier_unchanged == causal


def test_a_query_without_keys_gets_zeros_not_nan() -> None:
    """Left-padded causal rows (or an empty source) leave a query no key: both paths give it
    zero weights and a zero mix, as SDPA does, so no NaN reaches the gradients."""
    ours, _ = attention_pair(causal=True)
    x = torch.randn(1, 4, WIDTH)
    left_pad = torch.tensor([[True, True, False, False]])
    out, weights = ours(x, key_padding_mask=left_pad, need_weights=True)
    assert (weights[0, :, :2] == 0).all() and torch.isfinite(out).all()
    torch.testing.assert_close(out[0, :2], ours.proj.bias.expand(2, WIDTH))
    torch.testing.assert_close(ours(x, key_padding_mask=left_pad), out, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("post_ln", [False, True], ids=["pre-LN", "post-LN"])
def test_cached_steps_give_the_logits_of_the_whole_sequence(post_ln: bool) -> None:
    torch.manual_seed(0)
    net = TransformerLanguageModel(11, block_size=12, depth=2, heads=HEADS, width=WIDTH, post_ln=post_ln).eval()
    idx = torch.randint(0, 11, (3, 12))
    cache = net.new_cache()
    chunks = [net(idx[:, :5], cache)] + [net(idx[:, t : t + 1], cache) for t in range(5, 12)]
    assert len(cache) == 12
    torch.testing.assert_close(torch.cat(chunks, 1), net(idx), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="sequence length 13 exceeds block_size=12"):
        net(idx[:, :1], cache)
