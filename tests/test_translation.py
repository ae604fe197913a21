"""Translation pieces in process: the pair sources and their bad input, the encoder-decoders'
causality, padding, attention paths and step-by-step decoding, batched greedy and beam search against exhaustive
enumeration, and the metrics on hand-made pairs."""

import itertools
import logging
from pathlib import Path

import pytest
import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.pair_sources import date_pairs, number_pairs, read_pairs
from dlstudies.data.translation import BOS, EOS, PAD, TranslationDataModule
from dlstudies.generation.decoding import Specials, beam_search, greedy
from dlstudies.models.attention import MultiHeadAttention
from dlstudies.models.encoder_decoder import EncoderDecoderTransformer
from dlstudies.models.seq2seq import Seq2SeqRNN
from dlstudies.tasks.seq2seq import ChrF, TranslationMetrics, bucket_names

SRC_V, TGT_V = 12, 9
SPECIALS = Specials(PAD, BOS, EOS)
NETS = {"transformer": lambda: EncoderDecoderTransformer(SRC_V, TGT_V, depth=2, width=16, heads=2),
        "transformer_post_ln": lambda: EncoderDecoderTransformer(SRC_V, TGT_V, width=16, heads=2, post_ln=True),
        "gru_bahdanau": lambda: Seq2SeqRNN(SRC_V, TGT_V, attention="bahdanau", embed=8, width=16, depth=2),
        "lstm_luong": lambda: Seq2SeqRNN(SRC_V, TGT_V, cell="lstm", attention="luong", embed=8, width=16),
        "rnn_none": lambda: Seq2SeqRNN(SRC_V, TGT_V, cell="rnn", attention="none", embed=8, width=16,
                                       bidirectional=False)}
ATTENDING = [name for name in NETS if not name.endswith("none")]


def make(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return NETS[name]().eval()


def batch(lengths: list[int], total: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random source ids (B, total), padded after each row's length, and their padding mask."""
    ids = torch.randint(4, SRC_V, (len(lengths), total), generator=torch.Generator().manual_seed(seed))
    pad = torch.arange(total)[None] >= torch.tensor(lengths)[:, None]
    return ids.masked_fill(pad, PAD), pad


def targets(rows: int, length: int) -> torch.Tensor:
    tgt = torch.randint(3, TGT_V, (rows, length), generator=torch.Generator().manual_seed(1))
    tgt[:, 0] = BOS
    return tgt


def test_number_and_date_pairs_are_deterministic_distinct_and_translated() -> None:
    pairs = number_pairs(200, max_number=10**7, seed=3)
    assert pairs == number_pairs(200, max_number=10**7, seed=3) != number_pairs(200, max_number=10**7, seed=4)
    assert len({s for s, _ in pairs}) == 200
    assert ("three hundred and forty-two", "trois cent quarante-deux") in number_pairs(2000, 999, seed=0)
    joined = number_pairs(50, 99, numbers_per_item="3-3", seed=0)
    assert all(s.count("; ") == 2 and t.count("; ") == 2 for s, t in joined)
    dates = date_pairs(100, "fr", seed=1)
    assert dates == date_pairs(100, "fr", seed=1) and len(dates) == 100
    assert all(t.split()[1] in {"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                                "septembre", "octobre", "novembre", "décembre"} for _, t in dates)


def test_pair_file_reader_and_max_len(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "fra.txt"
    path.write_text("Go.\tVa !\tCC-BY 2.0 (France) Attribution\n\nHi there.\tSalut tout le monde.\t#1\n"
                    "Run!\tCours !\n")
    assert read_pairs(path) == [("Go.", "Va !"), ("Hi there.", "Salut tout le monde."), ("Run!", "Cours !")]
    data = TranslationDataModule(path=str(path), max_len=3, val_fraction=0, test_fraction=0)
    with caplog.at_level(logging.WARNING):
        data.setup()
    assert "data.max_len=3 dropped 1 of 3 pairs" in caplog.text
    src, tgt = data.splits["train"]
    assert src.shape == (2, 2) and tgt.shape == (2, 4)  # <bos> va ! <eos>, <bos> cours ! <eos>
    assert data.src_vocab[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and set(data.tgt_vocab) >= {"va", "!"}


BAD_DATA = {
    "no_tab": ({"path": "bad"}, "data.path={path}: line 2 has no tab; each line must be source<TAB>target"),
    "empty": ({"path": "empty"}, "data.path={path} holds no pairs; give lines of source<TAB>target"),
    "language": ({"src_lang": "xx"}, "data.src_lang=xx is not a language num2words knows; use one of "),
    "locale": ({"source": "dates", "tgt_locale": "zz_QQ"}, "data.tgt_locale=zz_QQ is not a locale babel knows"),
    "max_len": ({"max_len": 0}, "data.max_len=0 is not allowed; it must be an integer >= 1 (or null)"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_input_fails_in_one_line(case: str, tmp_path: Path) -> None:
    (tmp_path / "bad").write_text("one\tun\ntwo deux\n")
    (tmp_path / "empty").write_text("\n\n")
    options, message = BAD_DATA[case]
    options = {k: str(tmp_path / v) if k == "path" else v for k, v in options.items()}
    with pytest.raises(ConfigError) as error:
        TranslationDataModule(num_pairs=10, **options).setup()
    assert str(error.value).startswith(message.format(path=options.get("path")))
    assert "\n" not in str(error.value)


def outputs_before_and_after(name: str, side: str, position: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (2, 6, V) of a net, then again with the token at ``position`` of the source or the
    target changed."""
    net = make(name)
    inputs = {"src": batch([6, 6], 6)[0], "tgt": targets(2, 6)}
    changed = dict(inputs)
    changed[side] = inputs[side].clone()
    changed[side][:, position] = torch.where(inputs[side][:, position] == 4, 5, 4)
    pad = inputs["src"] == PAD
    return net(inputs["src"], pad, inputs["tgt"]), net(changed["src"], pad, changed["tgt"])


@pytest.mark.parametrize("name", ATTENDING)
def test_cross_attention_reads_the_source(name: str) -> None:
    before, after = outputs_before_and_after(name, "src", 2)
    assert not torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize("name", NETS)
def test_a_future_target_token_never_changes_an_earlier_prediction(name: str) -> None:
    before, after = outputs_before_and_after(name, "tgt", 4)
    torch.testing.assert_close(before[:, :4], after[:, :4])  # predictions made before reading token 4
    assert not torch.allclose(before[:, 4], after[:, 4], atol=1e-4)


@pytest.mark.parametrize("name", NETS)
def test_padding_never_changes_the_outputs_of_real_positions(name: str) -> None:
    net = make(name)
    src, pad = batch([5, 3], 5)
    tgt = targets(2, 4)
    reference = net(src, pad, tgt)
    longer_src, longer_pad = torch.nn.functional.pad(src, (0, 3), value=PAD), torch.nn.functional.pad(pad, (0, 3),
                                                                                                       value=True)
    longer_tgt = torch.nn.functional.pad(tgt, (0, 2), value=PAD)
    torch.testing.assert_close(net(longer_src, longer_pad, longer_tgt)[:, :4], reference, atol=1e-5, rtol=1e-5)
    alone = net(src[1:, :3], pad[1:, :3], tgt[1:])  # the short row without the batch's padding
    torch.testing.assert_close(alone, reference[1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NETS)
def test_decoding_step_by_step_gives_the_teacher_forced_logits(name: str) -> None:
    net = make(name)
    src, pad = batch([5, 3], 5)
    tgt = targets(2, 6)
    state, steps = net.encode(src, pad), []
    for t in range(tgt.size(1)):
        logits, state = net.step(tgt[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), net(src, pad, tgt), atol=1e-5, rtol=1e-5)


def test_causal_queries_over_a_longer_prefix_are_the_last_rows_of_self_attention() -> None:
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 4, causal=True).eval()
    x = torch.randn(2, 7, 16)
    torch.testing.assert_close(attention(x[:, 4:], x), attention(x)[:, 4:], atol=1e-6, rtol=1e-5)


def test_without_attention_the_decoder_sees_only_the_final_state() -> None:
    src, pad = batch([6, 4], 6)
    tgt = targets(2, 5)
    for attention, reads_states in (("none", False), ("bahdanau", True), ("luong", True)):
        torch.manual_seed(0)
        net = Seq2SeqRNN(SRC_V, TGT_V, attention=attention, embed=8, width=16, depth=2).eval()
        state = net.encode(src, pad)
        logits = net.decode(tgt, state)[0]
        noisy = {**state, "memory": torch.randn_like(state["memory"])}  # every per-step encoder state
        assert torch.allclose(net.decode(tgt, noisy)[0], logits) != reads_states, attention
    assert {name for name, _ in Seq2SeqRNN(SRC_V, TGT_V, attention="none").named_children()} == {
        "src_embedding", "tgt_embedding", "drop", "encoder", "bridge", "decoder", "head"}


@pytest.mark.parametrize("name", ["transformer", "gru_bahdanau", "rnn_none"])
def test_beam_of_one_equals_greedy(name: str) -> None:
    net = make(name)
    src, pad = batch([6, 2, 4], 6)
    tokens, scores = greedy(net, src, pad, SPECIALS, max_len=7)
    beam_tokens, beam_scores = beam_search(net, src, pad, SPECIALS, max_len=7, beam_size=1)
    assert torch.equal(tokens, beam_tokens)
    torch.testing.assert_close(scores, beam_scores)


def exhaustive_best(net: torch.nn.Module, src: torch.Tensor, pad: torch.Tensor, vocab_size: int, max_len: int,
                    length_penalty: float) -> tuple[list[int], float]:
    """Score every output (tokens then <eos>, or max_len tokens) by teacher forcing; the best."""
    words = [t for t in range(vocab_size) if t not in (PAD, BOS, EOS)]
    outputs = [list(seq) + [EOS] for n in range(max_len) for seq in itertools.product(words, repeat=n)]
    outputs += [list(seq) for seq in itertools.product(words, repeat=max_len)]
    best = (None, float("-inf"))
    for out in outputs:
        tgt = torch.tensor([[BOS] + out[:-1]])
        logits = net(src, pad, tgt)[0].float()
        logits[:, [PAD, BOS]] = float("-inf")
        score = float(logits.log_softmax(-1)[torch.arange(len(out)), out].sum()) / len(out) ** length_penalty
        best = max(best, (out, score), key=lambda pair: pair[1])
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_beam_as_wide_as_all_prefixes_finds_the_exhaustive_best(length_penalty: float) -> None:
    torch.manual_seed(3)
    net = Seq2SeqRNN(SRC_V, 6, attention="bahdanau", embed=4, width=8).eval()  # 3 words and <eos>
    for seed in range(3):
        src, pad = batch([4], 4, seed=seed)
        expected_tokens, expected_score = exhaustive_best(net, src, pad, 6, 3, length_penalty)
        tokens, score = beam_search(net, src, pad, SPECIALS, max_len=3, beam_size=64, length_penalty=length_penalty)
        assert tokens[0][tokens[0] != PAD].tolist() == expected_tokens
        assert float(score) == pytest.approx(expected_score, abs=1e-5)


def test_metrics_on_hand_made_pairs() -> None:
    metrics = TranslationMetrics()
    outputs = ["a b c d e", "seven hundred and one", "trois cent un mille"]
    references = ["a b c d f", *outputs[1:]]
    rows = {"loss": torch.tensor([2.0, 1.0, 3.0]), "tokens": torch.tensor([2, 1, 1]),
            "correct": torch.tensor([1, 1, 0]), "exact": torch.tensor([False, True, True])}
    texts = {"output_tokens": outputs, "reference_tokens": references, "output": outputs, "reference": references}
    metrics.update(rows, torch.tensor([True, False, False]), texts)
    first = metrics.compute("test", "/len_1-10")
    # 4/5 unigrams, 3/4 bigrams, 2/3 trigrams, 1/2 4-grams match, same length: BLEU = 0.2 ** (1/4)
    assert float(first["test/bleu/len_1-10"]) == pytest.approx(0.2 ** 0.25, abs=1e-4)
    assert float(first["test/exact_match/len_1-10"]) == 0.0 and float(first["test/count/len_1-10"]) == 1
    metrics.update(rows, torch.tensor([False, True, True]), texts)
    second = metrics.compute("val")
    assert float(second["val/exact_match"]) == 1.0 and float(second["val/bleu"]) == pytest.approx(1.0)
    assert float(second["val/loss"]) == pytest.approx(2.0) and float(second["val/acc"]) == pytest.approx(0.5)
    assert float(second["val/chrf"]) == pytest.approx(1.0) and "val/count" not in second
    assert bucket_names([10, 20]) == ["len_1-10", "len_11-20", "len_21+"]


def test_chrf_equals_torchmetrics_chrf_over_several_updates() -> None:
    from torchmetrics.text import CHRFScore

    pairs = [("trois cent quarante-deux", "trois cent quarante-deux"), ("sept mille un", "sept mille deux"),
             ("le chat dort", "un chat dormait"), ("x", "quatre-vingt-dix-neuf")]
    ours, reference = ChrF(), CHRFScore()
    for chunk in (pairs[:2], pairs[2:]):
        preds, targets = [p for p, _ in chunk], [[t] for _, t in chunk]
        ours.update(preds, targets)
        reference.update(preds, targets)
    assert 0.1 < float(reference.compute()) < 0.9
    assert float(ours.compute()) == pytest.approx(float(reference.compute()), abs=1e-6)
    perfect, one_empty = ChrF(), ChrF()
    perfect.update(["trois cent un"], [["trois cent un"]])
    one_empty.update(["trois cent un", ""], [["trois cent un"], ["cent"]])  # an empty output costs recall
    assert float(perfect.compute()) == pytest.approx(1.0) and float(one_empty.compute()) < 0.9
