"""Every model option learns at its own defaults, and reads the data it says it reads.

A few hundred steps on a small task of its kind, with the optimizer and schedule its conf/model
option chooses (nothing here sets them), bring the training loss well below where it started. A
model option without an entry in LEARNS fails ``test_every_model_option_has_a_learning_task``: a
new model says what it learns on. A model given data it cannot read stops in one line."""

import random
from pathlib import Path
from typing import NamedTuple

import lightning as L
import numpy as np
import pytest

from hydra.utils import get_class

from conftest import make_cfg, run_command
from dlstudies.config.argv import group_options
from dlstudies.config.errors import ConfigError
from dlstudies.config.validation import data_kind, validate
from dlstudies.data.idx import write_idx
from dlstudies.data.mnist import FILES
from dlstudies.data.names import load_names
from dlstudies.train import build, build_trainer


class Learns(NamedTuple):
    """A small task for one model option: data overrides ({tmp}: the test's folder), steps, and
    the largest allowed ratio of the final training loss (mean of the last 20 steps) to the first
    step's."""

    data: list[str]
    steps: int
    ratio: float
    slow: bool = False


NAMES = ["data=names", "data.path={tmp}/names.txt"]
MNIST1D = ["data=mnist1d", "data.num_train=1000", "data.num_val=100", "data.num_test=100",
           "paths.data_dir={tmp}/data"]
NUMBERS = ["data=translation", "data.num_pairs=2000", "data.max_number=999", "paths.data_dir={tmp}/data"]
MOONS = ["data=toy2d", "data.num_train=2000", "data.num_val=200", "data.num_test=200"]
BLOBS = ["data=mnist", "data.path={tmp}/blobs", "data.val_size=100", "data.download=false"]
LEARNS = {  # each ratio leaves a margin over what the option reached (seed 0); some figures beside
    "bigram": Learns(NAMES, 300, 0.8),  # 0.77
    "mlp": Learns(NAMES, 300, 0.6),  # 0.46
    "rnn": Learns(NAMES, 300, 0.6),
    "lstm": Learns(NAMES, 300, 0.6, slow=True),
    "gru": Learns(NAMES, 300, 0.6, slow=True),
    "transformer": Learns(NAMES, 300, 0.6, slow=True),  # 0.52
    "bert": Learns(NAMES, 300, 0.8, slow=True),  # 0.73 (masked characters); at lr 0.01: 0.86
    "mlp_classifier": Learns(MNIST1D, 300, 0.1),
    "cnn": Learns(MNIST1D, 300, 0.4),  # 0.22
    "rnn_classifier": Learns(MNIST1D, 300, 0.2, slow=True),
    "bert_classifier": Learns(MNIST1D, 300, 0.6, slow=True),
    "bert_tagger": Learns(["data=conll", "data.path={tmp}/tags.conll"], 300, 0.05, slow=True),
    "seq2seq_rnn": Learns(NUMBERS, 300, 0.01, slow=True),
    "encoder_decoder": Learns(NUMBERS, 300, 0.005, slow=True),  # 0.001; at lr 0.01: 0.012
    "diffusion_mlp": Learns(MOONS, 300, 0.4),  # 0.24
    "unet": Learns(BLOBS, 300, 0.5, slow=True),
    "vae": Learns(BLOBS, 300, 0.5),
}


def write_small_data(folder: Path) -> None:
    """The names corpus's 1000 most common names; a tagging file: 600 sentences of made-up words,
    each word's tag a fixed function of the word (so the tags are learnable); MNIST-style IDX files
    of 600 images of a bright Gaussian blob at a random place."""
    (folder / "names.txt").write_text("\n".join(load_names(1000)) + "\n")
    (folder / "blobs").mkdir()
    centres = np.random.default_rng(0).uniform(6, 22, (600, 2, 1, 1))
    rows, cols = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    blobs = 255 * np.exp(-((rows - centres[:, 0]) ** 2 + (cols - centres[:, 1]) ** 2) / 18)
    for split, part in (("train", blobs[:500]), ("test", blobs[500:])):
        write_idx(folder / "blobs" / FILES[f"{split}_images"], part.astype(np.uint8))
        write_idx(folder / "blobs" / FILES[f"{split}_labels"], np.zeros(len(part), np.uint8))
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefgh") for _ in range(4)) for _ in range(60)]
    tags = {w: ("NOUN", "VERB", "ADJ")[sum(map(ord, w)) % 3] for w in words}
    sentences = [[rng.choice(words) for _ in range(rng.randint(3, 12))] for _ in range(600)]
    (folder / "tags.conll").write_text("\n\n".join("\n".join(f"{w}\t{tags[w]}" for w in s) for s in sentences) + "\n")


class Losses(L.Callback):
    """The training loss of every step."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        self.values.append(float(outputs["loss"]))


def loss_ratio(model: str, learns: Learns, tmp_path: Path) -> tuple[float, list[float]]:
    """Train ``model`` at its defaults on its task; the final loss over the first, and all losses."""
    write_small_data(tmp_path)
    data = [o.format(tmp=tmp_path) for o in learns.data]
    cfg = make_cfg([f"model={model}", *data, f"trainer.max_steps={learns.steps}", "trainer.limit_val_batches=0",
                    "callbacks=none", "logger=none", "trainer.enable_progress_bar=false",
                    "trainer.enable_model_summary=false", "trainer.accelerator=cpu", "seed=0"], tmp_path)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg, {})  # nothing trained first: each model from scratch
    losses = Losses()
    trainer = build_trainer(cfg, [losses], [])
    trainer.fit(module, datamodule=datamodule)
    return sum(losses.values[-20:]) / 20 / losses.values[0], losses.values


def test_every_model_option_has_a_learning_task() -> None:
    assert sorted(LEARNS) == group_options("model"), "give each model option a small task in LEARNS"


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if LEARNS[m].slow else m
                                   for m in LEARNS])
def test_every_model_option_learns_at_its_defaults(model: str, tmp_path: Path) -> None:
    ratio, losses = loss_ratio(model, LEARNS[model], tmp_path)
    assert ratio < LEARNS[model].ratio, f"{model}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"


@pytest.mark.parametrize(("model", "data", "line"), [
    ("bert", "mnist1d", "model=bert cannot read data=mnist1d (labelled arrays); it reads text: "
                        "data=chars, names, shakespeare, words"),
    ("seq2seq_rnn", "names", "model=seq2seq_rnn cannot read data=names (text); it reads text pairs: data=translation"),
    ("bert_classifier", "conll", "model=bert_classifier cannot read data=conll (tagged text); it reads labelled "
                                 "text or labelled arrays: data=fashion_mnist, mnist, mnist1d, names_sex, scalar_grid"),
])
def test_a_model_given_data_it_cannot_read_stops_in_one_line(model: str, data: str, line: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        validate(make_cfg([f"model={model}", f"data={data}"], tmp_path))
    assert str(error.value) == line


def test_the_train_command_names_the_data_a_model_reads_and_exits_2(tmp_path: Path) -> None:
    result = run_command(["model=cnn", "data=translation", "logger=csv"], tmp_path)
    assert result.returncode == 2 and not list(tmp_path.rglob("summary.json"))
    assert result.stderr.strip() == ("error: model=cnn cannot read data=translation (text pairs); it reads "
                                     "labelled arrays: data=fashion_mnist, mnist, mnist1d, scalar_grid")


def test_every_model_option_reads_a_data_option_and_every_data_option_is_read(tmp_path: Path) -> None:
    kinds = {option: data_kind(option) for option in group_options("data")}
    assert None not in kinds.values(), "give each data module a kind"
    read = set()
    for model in group_options("model"):
        reads = get_class(make_cfg([f"model={model}"], tmp_path).model._target_).reads
        assert set(reads) & set(kinds.values()), f"model={model} reads no data option's kind"
        read |= set(reads)
    assert set(kinds.values()) <= read
