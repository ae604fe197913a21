"""Byte-level BPE data: the trained tokenizer, its cache (keyed by the tokenizer settings), a
tokenizer.json read back, line items, word corpora, bits per character against the decoded
text's length, and samples decoded through the tokenizer."""

import math
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models

from dlstudies.config.errors import ConfigError
from dlstudies.data import tokens as token_data
from dlstudies.data.bpe import END, characters_per_token, train_bpe
from dlstudies.data.chars import CharDataModule
from dlstudies.data.tokens import IGNORE
from dlstudies.data.words import WordDataModule
from dlstudies.models.transformer import TransformerLanguageModel
from dlstudies.tasks.language_model import LanguageModel

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
        "Café crème, naïve señor — ça va?\n") * 30


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The text in a file, written once for every test here (none writes to it)."""
    path = tmp_path_factory.mktemp("bpe") / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_trained_tokenizer_round_trips_and_counts_characters() -> None:
    tokenizer = train_bpe(TEXT, 300)
    assert tokenizer.get_vocab_size() == 300 and tokenizer.id_to_token(0) == END
    ids = tokenizer.encode(TEXT).ids
    assert tokenizer.decode(ids) == TEXT and len(ids) < 0.6 * len(TEXT)  # 43 merges shorten it
    characters = characters_per_token(tokenizer)
    assert sum(characters[i] for i in ids) == len(TEXT)  # multi-byte characters counted once
    assert sum(characters[i] for i in tokenizer.encode("ç").ids) == 1


def bpe_data(path: Path, cache: Path | None, **options) -> CharDataModule:
    options = {"test_fraction": 0.1} | options
    data = CharDataModule(path=str(path), mode="stream", block_size=8, batch_size=4, tokenizer="bpe",
                          vocab_size=300, data_dir=cache and str(cache), **options)
    data.setup("fit")
    return data


def test_stream_is_cached_by_tokenizer_settings_and_the_tokenizer_reads_back(corpus: Path, tmp_path: Path,
                                                                            monkeypatch) -> None:
    data = bpe_data(corpus, tmp_path)
    saved = sorted((tmp_path / "bpe").iterdir())
    assert [f.name.split(".", 1)[1] for f in saved] == ["pt", "tokenizer.json"]
    kwargs = data.model_kwargs()
    assert kwargs["net"] == {"vocab_size": 300} and kwargs["vocab"][0] == END
    tokenizer = Tokenizer.from_str(kwargs["tokenizer"])  # the splits' streams decode to the text
    assert "".join(tokenizer.decode(data.splits[s][0].tolist()) for s in ("train", "val", "test")) == TEXT

    monkeypatch.setattr(token_data, "train_bpe", None)  # a second run reads the cache, trains nothing
    again = bpe_data(corpus, tmp_path)
    assert all(torch.equal(again.splits[s][0], data.splits[s][0]) for s in data.splits)
    monkeypatch.undo()
    bpe_data(corpus, tmp_path, seed=5)  # a setting that does not change the tokens: same files
    assert sorted((tmp_path / "bpe").iterdir()) == saved
    bpe_data(corpus, tmp_path / "other", test_fraction=0.2)
    assert len(list((tmp_path / "other" / "bpe").iterdir())) == 2

    read = CharDataModule(path=str(corpus), mode="stream", block_size=8, test_fraction=0.1,
                          data_dir=None, tokenizer=str(saved[1]))
    read.setup()
    assert torch.equal(read.splits["train"][0], data.splits["train"][0])


def test_line_items_start_and_end_with_end_of_text(corpus: Path, tmp_path: Path) -> None:
    data = CharDataModule(path=str(corpus), mode="lines", block_size=64, data_dir=None, tokenizer="bpe",
                          vocab_size=300)
    data.setup()
    x, y = data.splits["train"]
    tokenizer = Tokenizer.from_str(data.tokenizer_json)
    end = tokenizer.token_to_id(END)
    assert (x[:, 0] == end).all()
    lengths = (y != IGNORE).sum(1)
    assert (y[torch.arange(len(y)), lengths - 1] == end).all()
    assert {tokenizer.decode(row[: n - 1].tolist()) for row, n in zip(y, lengths)} <= set(TEXT.splitlines())


def test_word_corpus_takes_bpe_of_its_raw_lines(corpus: Path) -> None:
    data = WordDataModule(path=str(corpus), block_size=8, tokenizer="bpe", vocab_size=300)
    data.setup()
    tokenizer = Tokenizer.from_str(data.tokenizer_json)
    assert tokenizer.decode(data.splits["train"][0].tolist()).startswith("First Citizen:\nBefore we")


def test_bad_tokenizer_settings_fail_in_one_line(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data.tokenizer=gpt2 is not allowed; use bpe .* tokenizer.json$"):
        CharDataModule(path=str(corpus), tokenizer="gpt2")
    with pytest.raises(ConfigError, match=r"^data.vocab_size=100 is not allowed; .* at least 257"):
        CharDataModule(path=str(corpus), tokenizer="bpe", vocab_size=100)
    word_level = tmp_path / "words.json"
    Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]")).save(str(word_level))
    data = CharDataModule(path=str(corpus), mode="stream", tokenizer=str(word_level), data_dir=None)
    with pytest.raises(ConfigError, match=r"is a WordLevel tokenizer with a None decoder; give a byte-level"):
        data.setup()
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    data = CharDataModule(path=str(corpus), mode="stream", tokenizer=str(broken), data_dir=None)
    with pytest.raises(ConfigError, match=r"^data.tokenizer=.*broken.json is not a readable tokenizer.json"):
        data.setup()


def test_bits_per_character_count_the_decoded_text(corpus: Path) -> None:
    data = bpe_data(corpus, None)
    kwargs = data.model_kwargs()
    net = TransformerLanguageModel(kwargs["net"]["vocab_size"], block_size=8, depth=1, heads=2, width=16)
    module = LanguageModel(net, kwargs["vocab"], kwargs["lines"], kwargs["separator"], kwargs["tokenizer"],
                           optimizer=torch.optim.AdamW)
    x, y = next(iter(data.val_dataloader()))
    module._evaluate((x, y), "val")
    nats = torch.nn.functional.cross_entropy(net(x).flatten(0, 1), y.flatten(), reduction="sum")
    characters = len("".join(module.decode(row) for row in y.tolist()))
    torch.testing.assert_close(module.eval_bpc["val"].compute(), nats / characters / math.log(2))

    texts = module.sample(2, prompt="Café", max_new_tokens=5, seed=0)
    assert len(texts) == 2 and all(t.startswith("Café") for t in texts)
