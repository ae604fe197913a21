"""Word-level data: tokenization, vocabulary rules, streams, the on-disk cache, the HF fallback;
and the downloadable tiny-shakespeare corpus's offline error."""

import multiprocessing
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data import download
from dlstudies.data.chars import CharDataModule
from dlstudies.data.words import EOS, UNK, WordDataModule, build_vocab, encode, tokenize

TEXT = "The cat sat.\nThe dog sat, the cat ran!\n\nA bird.\n" * 5 + "Zebra once.\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_tokenize_options() -> None:
    line = "O'er the night, my Lord! <unk>"
    assert tokenize(line) == ["o'er", "the", "night", ",", "my", "lord", "!", "<unk>"]
    assert tokenize(line, punctuation="strip") == ["o'er", "the", "night", "my", "lord", "<unk>"]
    assert tokenize(line, lower=False, punctuation="keep") == ["O'er", "the", "night,", "my", "Lord!",
                                                               "<unk>"]
    with pytest.raises(ConfigError, match="data.punctuation='drop'.*split, strip, keep"):
        tokenize(line, punctuation="drop")


def test_vocabulary_min_freq_max_size_and_unk() -> None:
    lines = [["a", "b", "a", "c"], ["a", "b", "d"]]
    assert build_vocab(lines) == [EOS, UNK, "a", "b", "c", "d"]  # by frequency, ties alphabetical
    assert build_vocab(lines, min_freq=2) == [EOS, UNK, "a", "b"]
    assert build_vocab(lines, max_size=3) == [EOS, UNK, "a"]
    vocab = build_vocab(lines, min_freq=2)
    stream = encode([["a", "c"], ["zebra", "b"]], {w: i for i, w in enumerate(vocab)})
    assert [vocab[i] for i in stream] == ["a", UNK, EOS, UNK, "b", EOS]
    with pytest.raises(ConfigError, match="data.min_freq=0"):
        build_vocab(lines, min_freq=0)


def test_datamodule_streams_blocks_and_model_kwargs(corpus: Path, tmp_path: Path) -> None:
    data = WordDataModule(path=str(corpus), min_freq=2, block_size=4, batch_size=3,
                          val_fraction=0.2, test_fraction=0.1, cache_dir=str(tmp_path))
    data.setup("fit")
    assert data.vocab[:2] == [EOS, UNK] and "zebra" not in data.vocab  # rare word, and test-only
    assert set(data.splits) == {"train", "val", "test"}
    train_lines = [line for line in TEXT.splitlines()[:15] if line]  # 21 lines: 15 train, 4 val
    assert data.splits["train"][0].tolist().count(0) == len(train_lines)  # one <eos> per line
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == y.shape == (3, 4)
    torch.testing.assert_close(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one word
    kwargs = data.model_kwargs()
    assert kwargs == {"net": {"vocab_size": len(data.vocab)}, "vocab": data.vocab, "lines": False,
                      "separator": " "}


def test_processed_tensors_are_cached_by_config(corpus: Path, tmp_path: Path) -> None:
    first = WordDataModule(path=str(corpus), block_size=4, cache_dir=str(tmp_path / "cache"))
    first.setup()
    files = list((tmp_path / "cache" / "words").glob("*.pt"))
    assert files == [first.cache_file()]
    again = WordDataModule(path=str(corpus), block_size=4, cache_dir=str(tmp_path / "cache"))
    again.setup()
    assert again.vocab == first.vocab and torch.equal(again.splits["train"][0], first.splits["train"][0])
    other = WordDataModule(path=str(corpus), block_size=4, min_freq=2, cache_dir=str(tmp_path / "cache"))
    assert other.cache_file() != files[0]  # another option: another cache entry
    corpus.write_text(TEXT + "new words here\n", encoding="utf-8")
    edited = WordDataModule(path=str(corpus), block_size=4, cache_dir=str(tmp_path / "cache"))
    assert edited.cache_file() != files[0]  # another text: another cache entry


def test_cache_is_read_instead_of_the_text(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    WordDataModule(path=str(corpus), block_size=4, cache_dir=str(tmp_path)).setup()
    monkeypatch.setattr("dlstudies.data.words.tokenize", lambda *a: pytest.fail("re-tokenized"))
    start = time.perf_counter()
    WordDataModule(path=str(corpus), block_size=4, cache_dir=str(tmp_path)).setup()
    assert time.perf_counter() - start < 1.0


def _build_cache_together(corpus: Path, cache_dir: Path, barrier) -> None:
    """Build the words cache in this (forked) process, its torch.save starting at the same moment
    as the other process's and slowed down, so each replaces the cache just after the other wrote."""
    save = torch.save

    def save_together(obj, file) -> None:
        barrier.wait(timeout=60)
        save(obj, file)
        time.sleep(0.5)

    torch.save = save_together
    WordDataModule(path=str(corpus), block_size=4, cache_dir=str(cache_dir)).setup()


def test_two_processes_building_the_same_cache_both_succeed(corpus: Path, tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")  # forked: no second import of torch and Lightning
    barrier = context.Barrier(2)
    jobs = [context.Process(target=_build_cache_together, args=(corpus, tmp_path, barrier)) for _ in range(2)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=120)
    assert [job.exitcode for job in jobs] == [0, 0]
    data = WordDataModule(path=str(corpus), block_size=4, cache_dir=str(tmp_path))
    assert [p.name for p in (tmp_path / "words").iterdir()] == [data.cache_file().name]  # no leftovers
    stored = torch.load(data.cache_file(), weights_only=True)
    data.setup()
    assert stored["vocab"] == data.vocab and torch.equal(stored["streams"]["train"], data.splits["train"][0])


def test_bad_sources_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of data.path"):
        WordDataModule()
    with pytest.raises(ConfigError, match="data.dataset=imdb is not known"):
        WordDataModule(dataset="imdb")
    with pytest.raises(ConfigError, match="does not exist"):
        WordDataModule(path=str(tmp_path / "missing.txt")).setup()


def test_hf_corpus_offline_error(monkeypatch) -> None:
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'Salesforce/wikitext' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(ConfigError) as error:
        WordDataModule(dataset="wikitext2").setup()
    message = str(error.value)
    assert "\n" not in message and "data.dataset=wikitext2" in message and "data.path=" in message


def test_shakespeare_offline_without_the_file_says_how_to_supply_it(tmp_path: Path,
                                                                     monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    data = CharDataModule(builtin="shakespeare", mode="stream", data_dir=str(tmp_path))
    with pytest.raises(ConfigError) as error:
        data.setup()
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "tinyshakespeare.txt") in message and "data.path=" in message
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_shakespeare_uses_the_kept_copy(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded again"))
    (tmp_path / "tinyshakespeare.txt").write_text("First Citizen:\nBefore we proceed any further.\n" * 20)
    data = CharDataModule(builtin="shakespeare", mode="stream", block_size=8, data_dir=str(tmp_path),
                          test_fraction=0.0)
    data.setup()
    assert "F" in data.vocab and download.fetch("shakespeare", tmp_path).is_file()
