"""The masked-LM and fine-tuning tasks: BERT's masking statistics, fixed evaluation masks, learning
on tiny data with each head, pre-trained encoders loaded (and refused in one line), frozen
encoders, the pre-training run shared by parallel jobs through its lock, and a run that names
its pre-training recipe starting from that recipe's checkpoint."""

import shutil
import threading
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

import dlstudies.prerequisites
from conftest import make_cfg
from dlstudies.config.errors import ConfigError
from dlstudies.data.tensors import tensor_loader
from dlstudies.data.tokens import IGNORE
from dlstudies.models.bert import BertClassifier, BertMaskedLM, BertTagger
from dlstudies.prerequisites import Recipe, on_this_device, recipe_key, trained_first
from dlstudies.summary import write_summary
from dlstudies.tasks.fine_tuning import EncoderClassifier, TokenClassifier, load_encoder
from dlstudies.tasks.masked_lm import MaskedLanguageModel, mask_tokens

VOCAB = ["\n", *"abcdefghij"]
SIZES = {"depth": 1, "heads": 2, "width": 32}
OPTIMIZER = {"optimizer": partial(torch.optim.AdamW, lr=3e-3)}


def padded_rows(n: int, length: int, seed: int = 0) -> torch.Tensor:
    """(n, length) random ids 1..10, each row IGNORE after a random length >= 2."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(1, len(VOCAB), (n, length), generator=generator)
    lengths = torch.randint(2, length + 1, (n, 1), generator=generator)
    return x.masked_fill(torch.arange(length) >= lengths, IGNORE)


def test_masking_picks_15_percent_of_real_tokens_80_10_10() -> None:
    torch.manual_seed(0)
    mask_id, picked, real, kinds = 99, 0, 0, torch.zeros(3)
    for seed in range(200):
        tokens = padded_rows(16, 12, seed)
        inputs, targets = mask_tokens(tokens, 0.15, len(VOCAB), mask_id)
        chosen = targets != IGNORE
        assert not chosen[tokens == IGNORE].any()  # padding is never picked
        assert (inputs[tokens == IGNORE] == IGNORE).all()
        assert (targets[chosen] == tokens[chosen]).all()  # the target is the original token
        assert (inputs[~chosen] == tokens[~chosen]).all()  # nothing else changes
        assert chosen.sum() == round(0.15 * int((tokens != IGNORE).sum()))
        masked = inputs[chosen] == mask_id
        unchanged = inputs[chosen] == tokens[chosen]
        kinds += torch.stack([masked.sum(), (~masked & ~unchanged).sum(), unchanged.sum()])
        picked, real = picked + int(chosen.sum()), real + int((tokens != IGNORE).sum())
    assert picked / real == pytest.approx(0.15, abs=0.002)
    # a random replacement may draw the original token (1 in 11): it then counts as unchanged
    expected = torch.tensor([0.8, 0.1 * 10 / 11, 0.1 + 0.1 / 11])
    torch.testing.assert_close(kinds / kinds.sum(), expected, atol=0.015, rtol=0)


def mlm_module(**kwargs) -> MaskedLanguageModel:
    torch.manual_seed(0)
    net = BertMaskedLM(len(VOCAB), block_size=16, **SIZES)
    return MaskedLanguageModel(net, VOCAB, **OPTIMIZER, **kwargs)


def test_evaluation_masks_are_fixed_and_training_masks_fresh() -> None:
    x = torch.cat([torch.zeros(32, 1, dtype=torch.long), padded_rows(32, 12).clamp_min(0)], dim=1)
    y = torch.cat([padded_rows(32, 12), torch.full((32, 1), IGNORE)], dim=1)  # lines: x = [boundary] + y
    batch = (x, y)
    first, second = mlm_module(lines=True), mlm_module(lines=True)
    torch.manual_seed(1)
    for a, b in zip(first.masked(batch, batch_idx=3), second.masked(batch, batch_idx=3)):
        assert torch.equal(a, b)
    assert not torch.equal(first.masked(batch, 3)[1], first.masked(batch, 4)[1])
    assert not torch.equal(first.masked(batch)[1], first.masked(batch)[1])
    tokens = first.items(batch)  # a line's characters, without its start boundary
    assert torch.equal(tokens[:, :12].masked_fill(y[:, 1:13] == IGNORE, IGNORE), tokens[:, :12])


def test_mask_rate_outside_0_1_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"^model.mask_rate=1.5 is not allowed; it must be in \(0, 1\)$"):
        mlm_module(mask_rate=1.5)


class Losses(L.Callback):
    """The training loss of every step."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        self.values.append(float(outputs["loss"]))


def fit(module: L.LightningModule, x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> float:
    """Train on (x, y) for ``steps``; the mean loss of the last 10 steps over the first step's."""
    losses = Losses()
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", callbacks=[losses])
    trainer.fit(module, tensor_loader(x, y, batch_size=32, shuffle=True))
    return sum(losses.values[-10:]) / 10 / losses.values[0]


def test_each_head_learns_tiny_data() -> None:
    L.seed_everything(0)
    x = padded_rows(256, 10)
    # masked LM: every row repeats one token, which the unmasked positions give away
    rows = torch.randint(1, len(VOCAB), (256, 1)).expand(-1, 10).masked_fill(x == IGNORE, IGNORE)
    assert fit(mlm_module(lines=False), rows, rows) < 0.3
    # sequence: does token 3 occur; token: is the token above 5
    label = (x == 3).any(1).long()
    classifier = EncoderClassifier(BertClassifier(2, vocab_size=len(VOCAB), block_size=16, **SIZES),
                                   ["no", "yes"], **OPTIMIZER)
    assert fit(classifier, x, label) < 0.3
    tags = (x > 5).long().masked_fill(x == IGNORE, IGNORE)
    tagger = TokenClassifier(BertTagger(2, len(VOCAB), block_size=16, **SIZES), ["low", "high"], **OPTIMIZER)
    assert fit(tagger, x, tags) < 0.3
    logits, labels = tagger.logits_and_labels((x, tags))
    assert logits.shape == (int((x != IGNORE).sum()), 2) and labels.shape == logits.shape[:1]


@pytest.fixture(scope="module")
def mlm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few steps of masked-LM pre-training on the names corpus (the names_sex vocabulary)."""
    from dlstudies.train import train

    tmp_path = tmp_path_factory.mktemp("mlm")
    cfg = make_cfg(["experiment=names_bert_mlm", "data.num_names=3000", "model.net.depth=1",
                    "model.net.width=32", "model.net.heads=2", "trainer.max_steps=10",
                    "trainer.val_check_interval=5", "logger=csv", "trainer.enable_progress_bar=false",
                    "samples=2"], tmp_path)
    record = train(cfg)
    assert record["status"] == "completed" and " -> " in record["samples"][0]
    return Path(record["best_ckpt"])


def names_sex_classifier(tmp_path: Path, *overrides: str) -> EncoderClassifier:
    """The names_sex_bert experiment's task at the test checkpoint's size, built as train() does."""
    cfg = make_cfg(["experiment=names_sex_bert", "model.net.depth=1", "model.net.width=32",
                    "model.net.heads=2", *overrides], tmp_path)
    vocab = ["\n", *"abcdefghijklmnopqrstuvwxyz"]
    return instantiate(cfg.model, net={"vocab_size": len(vocab), "num_classes": 2, "block_size": 16},
                       class_names=["F", "M"], vocab=vocab)


def test_pretrained_encoder_loads_and_gives_the_mlm_runs_outputs(mlm_checkpoint: Path, tmp_path: Path) -> None:
    from dlstudies.checkpoint import load_module

    pretraining, _ = load_module(mlm_checkpoint)
    classifier = names_sex_classifier(tmp_path, f"model.pretrained={mlm_checkpoint}")
    x = torch.tensor([[13, 1, 18, 25, IGNORE], [10, 15, 8, 14, 1]])  # mary, john + a
    assert not torch.allclose(classifier.net.encoder.eval()(x)[0], pretraining.net.encoder(x)[0])
    classifier.setup("fit")
    torch.testing.assert_close(classifier.net.encoder.eval()(x)[0], pretraining.net.encoder(x)[0])


def test_bad_pretrained_checkpoints_are_one_line_errors(mlm_checkpoint: Path, tmp_path: Path) -> None:
    encoder = names_sex_classifier(tmp_path).net.encoder
    vocab = ["\n", *"abcdefghijklmnopqrstuvwxyz"]
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(mlm_checkpoint.read_bytes()[:1000])
    cases = {
        tmp_path / "missing.ckpt": "does not exist; give the path of a .ckpt file",
        truncated: "is not a readable checkpoint: truncated, or not a PyTorch checkpoint",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError, match=rf"^model.pretrained={path} {message}"):
            load_encoder(encoder, path, vocab)
    with pytest.raises(ConfigError, match=r"pre-trained on another vocabulary \(token 1 is 'a' there, 'b' here\)"):
        load_encoder(encoder, mlm_checkpoint, ["\n", *"bacdefghijklmnopqrstuvwxyz"])
    with pytest.raises(ConfigError, match=r"pre-trained on another vocabulary \(27 tokens there, no tokens here\)"):
        load_encoder(encoder, mlm_checkpoint, None)
    wider = names_sex_classifier(tmp_path, "model.net.width=64").net.encoder
    with pytest.raises(ConfigError, match=r"has an encoder of width 32, this model 64; fine-tune with"):
        load_encoder(wider, mlm_checkpoint, vocab)
    from_end = names_sex_classifier(tmp_path, "model.net.positions=end").net.encoder  # pre-trained: both
    with pytest.raises(ConfigError, match=r"has an encoder of positions both, this model end; fine-tune "
                                          r"with the pre-training's model.net.positions$"):
        load_encoder(from_end, mlm_checkpoint, vocab)
    rms = names_sex_classifier(tmp_path, "norm=rmsnorm").net.encoder
    with pytest.raises(ConfigError, match=r"another encoder layout: blocks.0.norm_1.bias is \(32,\) there, absent here"):
        load_encoder(rms, mlm_checkpoint, vocab)


def test_a_classifier_checkpoint_is_refused_as_pretrained(tmp_path: Path) -> None:
    checkpoint = {"dlstudies": {"config": {"model": {"_target_": "dlstudies.tasks.classifier.Classifier"}},
                                "model_kwargs": {}}, "state_dict": {}}
    torch.save(checkpoint, tmp_path / "classifier.ckpt")
    with pytest.raises(ConfigError, match=r"is a checkpoint of Classifier, not of masked-LM pre-training"):
        load_encoder(names_sex_classifier(tmp_path).net.encoder, tmp_path / "classifier.ckpt", None)


def test_frozen_encoder_stays_unchanged_while_the_head_learns(mlm_checkpoint: Path, tmp_path: Path) -> None:
    classifier = names_sex_classifier(tmp_path, f"model.pretrained={mlm_checkpoint}", "model.freeze_encoder=true")
    classifier.setup("fit")
    before = {k: v.clone() for k, v in classifier.net.state_dict().items()}
    x = padded_rows(64, 8).clamp_max(26)
    fit(classifier, x, (x[:, 0] > 5).long(), steps=5)
    after = classifier.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert classifier.n_params == 32 * 2 + 2  # trainable: the head alone


def pretrained_run(experiment: str, overrides: list[str], cache_dir: Path) -> Path:
    """The recipe's checkpoint, trained first unless a completed run exists (as train() does)."""
    recipe = Recipe.kept_in(cache_dir, experiment, overrides)
    recipe.train_once()
    return recipe.checkpoint


def test_parallel_jobs_share_one_pretraining_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four jobs ask for the same recipe at once: one trains it (under the lock), all get its
    checkpoint; a second recipe trains again; a failed run is redone by the next job."""
    calls = []

    def fake_train(experiment: str, overrides: list[str], run_dir: Path, device: list[str]) -> None:
        calls.append(overrides)
        threading.Event().wait(0.3)  # long enough for the others to reach the lock
        write_summary(run_dir, {"status": "failed" if "seed=7" in overrides else "completed"})

    monkeypatch.setattr(dlstudies.prerequisites, "_train", fake_train)
    monkeypatch.setattr(dlstudies.prerequisites, "recipe_key", lambda experiment, overrides: str(len(overrides)))
    results = []
    jobs = [threading.Thread(target=lambda: results.append(pretrained_run("names_bert_mlm", [], tmp_path)))
            for _ in range(4)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert len(calls) == 1 and len(set(results)) == 1
    assert results[0].parent.parent.name.startswith("names_bert_mlm-")
    assert results[0] == tmp_path / results[0].parent.parent.name / "checkpoints" / "best.ckpt"
    other = pretrained_run("names_bert_mlm", ["trainer.max_steps=5"], tmp_path)
    assert other != results[0] and len(calls) == 2
    pretrained_run("names_bert_mlm", ["trainer.max_steps=5", "seed=7"], tmp_path)
    pretrained_run("names_bert_mlm", ["trainer.max_steps=5", "seed=7"], tmp_path)
    assert len(calls) == 4


def test_a_recipe_is_keyed_by_its_composed_config() -> None:
    key = recipe_key("names_bert_mlm", [])
    assert key == recipe_key("names_bert_mlm", []) and len(key) == 12
    assert key != recipe_key("names_bert_mlm", ["trainer.max_steps=5"])
    assert key != recipe_key("names_transformer", [])


def test_a_config_names_the_recipes_its_task_trains_first(tmp_path: Path) -> None:
    """``model.pretrained=<experiment>`` (a TRAINED_FIRST argument) is a recipe kept under the log
    folder, with ``trained_first.<experiment>``'s overrides; a path or null is not; the recipe
    runs where the job runs."""
    (recipe,) = trained_first(make_cfg(["experiment=names_sex_bert"], tmp_path)).values()
    assert recipe == Recipe.kept_in(tmp_path / "pretrained", "names_bert_mlm")
    cfg = make_cfg(["experiment=names_sex_bert", "trained_first.names_bert_mlm=['trainer.max_steps=5']"], tmp_path)
    assert trained_first(cfg)["pretrained"].overrides == ("trainer.max_steps=5",)
    for value in ("null", str(tmp_path / "encoder.ckpt")):
        assert trained_first(make_cfg(["experiment=names_sex_bert", f"model.pretrained={value}"], tmp_path)) == {}
    cpu = make_cfg(["trainer=cpu"], tmp_path).trainer
    assert on_this_device(cpu) == ["trainer.accelerator=cpu", "trainer.devices=1"]
    held = make_cfg(["trainer.accelerator=gpu", "trainer.devices=[2,3]"], tmp_path).trainer  # GPUs a sweep job claimed
    assert on_this_device(held) == ["trainer.accelerator=gpu", "trainer.devices=[2]"]


def test_a_run_starts_from_the_recipe_it_names_trained_once(mlm_checkpoint: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs of ``experiment=names_sex_bert`` with a frozen encoder: the first trains the
    pre-training recipe (here: copies the test's masked-LM checkpoint in), the second reuses it;
    both fine-tune from its encoder."""
    from dlstudies.train import train

    calls = []

    def fake_train(experiment: str, overrides: list[str], run_dir: Path, device: list[str]) -> None:
        calls.append((experiment, overrides, device))
        (run_dir / "checkpoints").mkdir(parents=True)
        shutil.copy(mlm_checkpoint, run_dir / "checkpoints" / "best.ckpt")
        write_summary(run_dir, {"status": "completed"})

    monkeypatch.setattr(dlstudies.prerequisites, "_train", fake_train)
    encoder = {k: v for k, v in torch.load(mlm_checkpoint, weights_only=True)["state_dict"].items()
               if k.startswith("net.encoder.")}
    for run in ("first", "second"):
        cfg = make_cfg(["experiment=names_sex_bert", "model.net.depth=1", "model.net.width=32", "model.net.heads=2",
                        "model.freeze_encoder=true", "data.num_train=200", "~callbacks.ngram_baseline", "trainer=cpu",
                        "trainer.max_steps=2", "trainer.val_check_interval=1", "logger=csv", "samples=0",
                        "trained_first.names_bert_mlm=['trainer.max_steps=5']", "trainer.enable_progress_bar=false"],
                       tmp_path)
        cfg.paths.output_dir = str(tmp_path / run)
        record = train(cfg)
        assert record["status"] == "completed"
        tuned = torch.load(record["best_ckpt"], weights_only=True)["state_dict"]
        assert all(torch.equal(tuned[k], v) for k, v in encoder.items())
    assert calls == [("names_bert_mlm", ["trainer.max_steps=5"], ["trainer.accelerator=cpu", "trainer.devices=1"])]
