"""The BERT tasks' data: the CoNLL reader on hand-made files, names labelled by sex (hand-checked
names, splits by name, num_train), the lookup ceiling, and padding trimmed per batch."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import split_by_fractions
from dlstudies.data.conll import ConllDataModule, read_conll
from dlstudies.data.names_sex import NamesSexDataModule, lookup_ceiling
from dlstudies.data.tokens import IGNORE

NER = """-DOCSTART-\tO

EU\tB-ORG
rejects\tO
German\tB-MISC
call\tO

Peter\tB-PER
Blackburn\tI-PER
"""
CONLLU = """# sent_id = 1
# text = Don't go.
1-2\tDon't\t_\t_\t_
1\tDo\tdo\tAUX\tVBP
2\tn't\tnot\tPART\tRB
3\tgo\tgo\tVERB\tVB
4\t.\t.\tPUNCT\t.
"""


def test_conll_reader_on_ner_and_conllu_files(tmp_path: Path) -> None:
    ner, conllu = tmp_path / "ner.tsv", tmp_path / "ud.conllu"
    ner.write_text(NER)
    conllu.write_text(CONLLU)
    assert read_conll(str(ner)) == [(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
                                    (["Peter", "Blackburn"], ["B-PER", "I-PER"])]
    assert read_conll(str(conllu), token_column=1, label_column=3) == [
        (["Do", "n't", "go", "."], ["AUX", "PART", "VERB", "PUNCT"])]


def test_a_conll_line_without_a_tab_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "spaces.txt"
    path.write_text("EU\tB-ORG\nrejects O\n")
    with pytest.raises(ConfigError, match=rf"^data.path={path} line 2 has no tab: 'rejects O'; give token<TAB>label lines$"):
        read_conll(str(path))


def conll_file(tmp_path: Path, sentences: int = 40) -> Path:
    """Sentences of 3 to 8 tokens, each labelled by its first letter's case."""
    generator = np.random.default_rng(0)
    words = ["Paris", "the", "Anna", "runs", "a", "London", "sees", "Bob"]
    lines = []
    for _ in range(sentences):
        for word in generator.choice(words, generator.integers(3, 9)):
            lines.append(f"{word}\t{'NAME' if word[0].isupper() else 'O'}")
        lines.append("")
    path = tmp_path / "tags.tsv"
    path.write_text("\n".join(lines))
    return path


def test_conll_data_pieces_vocabulary_labels_and_trimmed_batches(tmp_path: Path) -> None:
    data = ConllDataModule(str(conll_file(tmp_path)), block_size=5, batch_size=4, seed=0)
    data.setup()
    assert data.class_names == ["NAME", "O"] and data.vocab[:2] == ["<eos>", "<unk>"]
    x, y = data.splits["train"]
    assert x.shape[1] == 5 and torch.equal(x == IGNORE, y == IGNORE)
    assert data.model_kwargs()["net"] == {"vocab_size": len(data.vocab), "num_classes": 2, "block_size": 5}
    # a sentence of 8 tokens becomes pieces of 5 and 3; every token is kept
    tokens = sum(len(t) for t, _ in read_conll(data.path))
    assert sum(int((split[0] != IGNORE).sum()) for split in data.splits.values()) == tokens
    batch = data.on_before_batch_transfer((torch.tensor([[3, 4, IGNORE, IGNORE], [5, IGNORE, IGNORE, IGNORE]]),
                                           torch.tensor([[0, 1, IGNORE, IGNORE], [1, IGNORE, IGNORE, IGNORE]])), 0)
    assert [t.shape for t in batch] == [(2, 2), (2, 2)]


def test_a_label_the_training_split_never_shows_is_a_one_line_error(tmp_path: Path) -> None:
    path = conll_file(tmp_path, sentences=9)
    path.write_text(path.read_text() + "\nZurich\tB-LOC\n")  # the 10th sentence
    def held_out(seed: int) -> bool:
        parts = split_by_fractions(read_conll(str(path)), 0.1, 0.1, seed=seed)
        return (["Zurich"], ["B-LOC"]) in parts["val"] + parts["test"]

    seed = next(s for s in range(20) if held_out(s))
    with pytest.raises(ConfigError, match=r"^label 'B-LOC' of the (val|test) split never occurs in the training split"):
        ConllDataModule(str(path), val_fraction=0.1, test_fraction=0.1, seed=seed).setup()


@pytest.fixture(scope="module")
def names_sex() -> NamesSexDataModule:
    data = NamesSexDataModule(num_train=500, seed=3)
    data.setup()
    return data


def label_of(data: NamesSexDataModule, name: str) -> str:
    for split, texts in data.texts.items():
        if name in texts:
            return data.model_kwargs()["class_names"][int(data.splits[split][1][texts.index(name)])]
    raise KeyError(name)


def test_names_are_labelled_with_the_sex_given_most_often(names_sex: NamesSexDataModule) -> None:
    # summed over 1880-2017: john 5.1M M / 22k F (test split); leslie 266k F / 113k M (test);
    # jordan 130k F / 370k M (train, if kept among the 500)
    assert label_of(names_sex, "john") == "M" and label_of(names_sex, "leslie") == "F"
    x, y = names_sex.splits["test"]
    john = names_sex.texts["test"].index("john")
    assert x[john].tolist() == [10, 15, 8, 14] + [IGNORE] * 12 and y[john] == 1
    assert names_sex.vocab == ["\n", *"abcdefghijklmnopqrstuvwxyz"]  # the names corpus's vocabulary


def test_splits_follow_the_name_and_num_train_a_seeded_subset(names_sex: NamesSexDataModule) -> None:
    other = NamesSexDataModule(num_train=500, seed=4)
    other.setup()
    assert other.texts["test"] == names_sex.texts["test"] and other.texts["val"] == names_sex.texts["val"]
    assert len(names_sex.texts["train"]) == 500 and set(other.texts["train"]) != set(names_sex.texts["train"])
    assert not set(names_sex.texts["train"]) & set(names_sex.texts["test"])
    with pytest.raises(ConfigError, match=r"^data.num_train=100000 is larger than the training split \(\d+ names\); "):
        NamesSexDataModule(num_train=100000).setup()


def test_lookup_ceiling_counts_the_babies_behind_shared_names() -> None:
    counts = np.array([[90, 10], [30, 70], [5, 0], [0, 8]])  # two shared names, two not
    ceiling = lookup_ceiling(counts)
    assert ceiling["ambiguous_names"] == 2 and ceiling["ambiguous_share"] == 0.5
    assert ceiling["per_name"] == pytest.approx(0.8) and ceiling["per_baby"] == pytest.approx(160 / 200)
