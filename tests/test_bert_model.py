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


@pytest.mark.parametrize("post_ln", [False, True], ids=["pre-LN", "post-LN"])
def test_padding_never_changes_real_positions(post_ln: bool) -> None:
    net = mlm(post_ln=post_ln)
    x = torch.randint(0, VOCAB, (1, 5))
    alone = net(x)
    padded = torch.cat([x, torch.full((1, 3), IGNORE)], dim=1)
    batch = torch.cat([padded, torch.randint(0, VOCAB, (1, 8))])  # beside a row without padding
    torch.testing.assert_close(net(batch)[:1, :5], alone, atol=1e-5, rtol=1e-5)
    classifier = BertClassifier(3, vocab_size=VOCAB, block_size=8, **SIZES).eval()
    torch.testing.assert_close(classifier(batch)[:1], classifier(x), atol=1e-5, rtol=1e-5)


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
    with pytest.raises(ValueError, match="sequence length 9 exceeds block_size=8"):
        mlm()(torch.zeros(1, 9, dtype=torch.long))
    net = BertMaskedLM(VOCAB, block_size=8, **SIZES, norm=BatchNorm, activation=nn.ReLU)
    assert isinstance(net.encoder.blocks[0].norm_1, BatchNorm) and isinstance(net.transform[1], nn.ReLU)
