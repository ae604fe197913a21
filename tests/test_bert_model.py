"""The BERT-style encoder and its heads: bidirectional (the opposite of the GPT's causality),
padding that never changes real positions, the tied masked-LM head, patches of values, sizes."""

import pytest
import torch
from torch import nn

from dlstudies.config.errors import ConfigError
from dlstudies.data.tokens import IGNORE
from dlstudies.models.bert import BertClassifier, BertMaskedLM, BertTagger
from dlstudies.models.norms import BatchNorm

VOCAB, WIDTH = 11, 16
SIZES = {"depth": 2, "heads": 2, "width": WIDTH}


def mlm(**options) -> BertMaskedLM:
    torch.manual_seed(0)
    return BertMaskedLM(VOCAB, block_size=8, **SIZES, **options).eval()


def test_a_later_token_changes_every_earlier_position() -> None:
    """Bidirectional: unlike the GPT (tests/test_sequence_models.py), position 0 sees position 5."""
    net = mlm()
    x = torch.randint(0, VOCAB, (1, 6))
    changed = x.clone()
    changed[0, 5] = (x[0, 5] + 1) % VOCAB
    difference = (net(x) - net(changed)).abs().amax(-1)[0]
    assert (difference[:5] > 1e-4).all()


@pytest.mark.parametrize(("post_ln", "positions"), [(False, "start"), (True, "start"), (False, "end"), (False, "both")],
                         ids=["pre-LN", "post-LN", "positions-end", "positions-both"])
def test_padding_never_changes_real_positions(post_ln: bool, positions: str) -> None:
    net = mlm(post_ln=post_ln, positions=positions)
    x = torch.randint(0, VOCAB, (1, 5))
    alone = net(x)
    padded = torch.cat([x, torch.full((1, 3), IGNORE)], dim=1)
    batch = torch.cat([padded, torch.randint(0, VOCAB, (1, 8))])  # beside a row without padding
    torch.testing.assert_close(net(batch)[:1, :5], alone, atol=1e-5, rtol=1e-5)
    classifier = BertClassifier(3, vocab_size=VOCAB, block_size=8, positions=positions, **SIZES).eval()
    torch.testing.assert_close(classifier(batch)[:1], classifier(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["start", "end", "both"])
def test_positions_count_from_the_start_the_end_or_both(positions: str) -> None:
    """The vector added to each token: its index from <cls> (start), from the last real token
    (end: the last is 1 in every row, whatever its length and padding), or the sum of both."""
    encoder = mlm(positions=positions).encoder
    x = torch.tensor([[1, 2, 3, IGNORE, IGNORE], [4, 5, 6, 7, 8]])
    dropout_input = {}
    encoder.drop.register_forward_hook(lambda module, args, out: dropout_input.update(h=args[0]))
    embedded, _ = encoder.embedding(x)
    encoder(x)
    added = dropout_input["h"] - embedded
    zero = torch.zeros(encoder.width)
    start = (lambda i: encoder.wpe.weight[i]) if encoder.wpe is not None else (lambda i: zero)
    end = (lambda i: encoder.wpe_end.weight[i]) if encoder.wpe_end is not None else (lambda i: zero)
    for row, length in enumerate([3, 5]):
        for i in range(1 + length):  # <cls> (0), then the tokens
            expected = start(i) + end(0 if i == 0 else length + 1 - i)
            torch.testing.assert_close(added[row, i], expected)
    assert (encoder.wpe is None) == (positions == "end") and (encoder.wpe_end is None) == (positions == "start")
    torch.testing.assert_close(added[0, 3] - start(3), added[1, 5] - start(5))  # both last tokens: end(1)


def test_masked_lm_head_is_the_embedding_matrix() -> None:
    net = mlm()
    assert net.decoder.weight is net.encoder.embedding.table.weight
    assert net.decoder.weight.shape == (VOCAB + 3, WIDTH)  # the corpus's tokens, <pad>, <cls>, <mask>
    assert net.mask_id == VOCAB + 2
    assert net(torch.zeros(2, 4, dtype=torch.long)).shape == (2, 4, VOCAB)  # only the corpus's tokens


def test_heads_give_one_output_per_sequence_or_per_token() -> None:
    x = torch.randint(0, VOCAB, (3, 7))
    assert BertClassifier(4, vocab_size=VOCAB, block_size=8, **SIZES)(x).shape == (3, 4)
    assert BertTagger(4, VOCAB, block_size=8, **SIZES)(x).shape == (3, 7, 4)


def test_values_are_embedded_in_patches_after_a_cls_vector() -> None:
    net = BertClassifier(10, in_shape=[40], patch=4, **SIZES)
    assert net.encoder.block_size == 10 and net.encoder.wpe.num_embeddings == 11
    assert net(torch.randn(5, 40)).shape == (5, 10)
    with pytest.raises(ConfigError, match=r"^model.net.patch=3 is not allowed; it must divide the 40 input values$"):
        BertClassifier(10, in_shape=[40], patch=3, **SIZES)


def test_sizes_norm_and_length_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"^model.net.heads=3 is not allowed; it must divide model.net.width=16$"):
        BertMaskedLM(VOCAB, block_size=8, depth=1, heads=3, width=WIDTH)
    with pytest.raises(ConfigError, match=r"^model.net.depth=0 is not allowed"):
        BertTagger(2, VOCAB, block_size=8, depth=0, heads=2, width=WIDTH)
    with pytest.raises(ConfigError, match=r"^model.net.positions='middle' is not allowed; it must be one of "
                                          r"start, end, both$"):
        mlm(positions="middle")
    with pytest.raises(ValueError, match="sequence length 9 exceeds block_size=8"):
        mlm()(torch.zeros(1, 9, dtype=torch.long))
    net = BertMaskedLM(VOCAB, block_size=8, **SIZES, norm=BatchNorm, activation=nn.ReLU)
    assert isinstance(net.encoder.blocks[0].norm_1, BatchNorm) and isinstance(net.transform[1], nn.ReLU)
