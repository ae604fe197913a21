"""Language-model runs end to end: every model samples through LanguageModel.sample, bad sizes stop
a run in one line, checkpoints round-trip through a real run, the headline multirun works, and
the shakespeare corpus fails offline in one line. (Every experiment builds in test_config.py.)"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import make_cfg
from dlstudies import CONF_DIR, ROOT
from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError
from dlstudies.config.resolvers import register_resolvers
from dlstudies.tasks.language_model import LanguageModel
from dlstudies.train import train

MODELS = ["bigram", "mlp", "rnn", "gru", "lstm", "transformer"]
TINY = {"mlp": ["model.net.width=16", "model.net.embed=8"],
        "rnn": ["model.net.width=16", "model.net.embed=8"],
        "gru": ["model.net.width=16", "model.net.embed=8"],
        "lstm": ["model.net.width=16", "model.net.embed=8", "model.net.tie_weights=true"],
        "transformer": ["model.net.width=16", "model.net.depth=1", "model.net.heads=2"],
        "bigram": []}
CHARS = ["\n", *"abcdefghij"]
WORDS = ["<eos>", "<unk>", "the", "cat", "sat", ",", "."]


def compose_config(overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python train.py args`` with one thread, logging under ``tmp_path``."""
    args = args if "-m" in args else [*args, f"paths.log_dir={tmp_path}"]
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("vocab", [CHARS, WORDS], ids=["chars", "words"])
def test_sample_length_and_vocabulary(model: str, vocab: list[str]) -> None:
    words = vocab is WORDS
    cfg = compose_config([f"model={model}", "data.block_size=8", *TINY[model]])
    module: LanguageModel = instantiate(cfg.model, net={"vocab_size": len(vocab)}, vocab=vocab,
                                        lines=not words, separator=" " if words else "")
    texts = module.sample(4, max_new_tokens=20, temperature=0.8, top_k=5, seed=0)
    assert len(texts) == 4
    for text in texts:
        tokens = text.split(" ") if words else list(text)
        assert set(tokens) <= set(vocab)
        # lines stop at their boundary (never part of the text); streams run the full length
        assert len(tokens) == 20 if words else len(tokens) <= 20 and "\n" not in text
    assert module.sample(4, max_new_tokens=20, temperature=0.8, top_k=5, seed=0) == texts
    prompt = "the cat" if words else "ab"
    assert all(t.startswith(prompt) for t in module.sample(2, prompt=prompt, max_new_tokens=5))


BAD_SIZES = {
    "model=transformer model.net.depth=-1": "model.net.depth=-1 is not allowed; it must be an integer >= 1",
    "model=transformer model.net.heads=3":
        "model.net.heads=3 is not allowed; it must divide model.net.width=64",
    "model=lstm model.net.width=0": "model.net.width=0 is not allowed; it must be an integer >= 1",
    "model=gru model.net.cell=lstn": "model.net.cell='lstn' is not allowed; use rnn, lstm, gru",
    "model=mlp model.net.embed=0": "model.net.embed=0 is not allowed; it must be an integer >= 1",
}


@pytest.mark.parametrize("overrides", BAD_SIZES)
def test_bad_model_sizes_stop_the_run_in_one_line(overrides: str, tmp_path: Path) -> None:
    """What ``python train.py <overrides>`` prints after ``error:`` (and exits 2), before training."""
    cfg = make_cfg([*overrides.split(), "data.num_names=50", "logger=none"], tmp_path)
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value) == BAD_SIZES[overrides]
    assert not list(tmp_path.rglob("summary.json"))


def write_words(tmp_path: Path) -> Path:
    path = tmp_path / "words.txt"
    lines = ["the cat sat on the mat .", "the dog sat on the log .", "a cat and a dog ran ."]
    path.write_text("\n".join(lines * 40) + "\n", encoding="utf-8")
    return path


def test_checkpoint_round_trip_through_a_word_run(tmp_path: Path) -> None:
    corpus = write_words(tmp_path)
    result = run(["data=words", f"data.path={corpus}", "data.block_size=8", "model=transformer",
                  *TINY["transformer"], "logger=csv", "trainer.max_steps=20",
                  "trainer.val_check_interval=10", "samples=2", f"paths.data_dir={tmp_path / 'data'}"],
                 tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next(tmp_path.glob("train/runs/*/summary.json")).read_text())
    assert summary["status"] == "completed" and len(summary["samples"]) == 2
    assert list((tmp_path / "data" / "words").glob("*.pt"))  # the processed corpus was cached
    module, config = load_module(summary["best_ckpt"])
    assert module.separator == " " and module.vocab[0] == "<eos>"
    data = instantiate(config.data)
    data.setup()
    assert data.vocab == module.vocab
    losses = [(torch.nn.functional.cross_entropy(module(x).flatten(0, 1), y.flatten(),
                                                 reduction="sum"), y.numel())
              for x, y in data.val_dataloader()]
    val = sum(loss for loss, _ in losses) / sum(n for _, n in losses)
    assert val.item() == pytest.approx(summary["metrics"]["best/val/loss"], abs=1e-4)
    assert all(set(t.split(" ")) <= set(module.vocab) for t in module.sample(2, max_new_tokens=6))


def test_headline_multirun_command(tmp_path: Path) -> None:
    tiny = ["trainer.max_steps=20", "trainer.val_check_interval=10", "logger=csv", "samples=2",
            f"paths.log_dir={tmp_path}"]
    result = run([*tiny, "model=lstm", "norm=layernorm", "-m"], tmp_path)  # as typed, tiny first
    assert result.returncode == 0, result.stderr[-2000:]
    summaries = list((tmp_path / "train" / "multiruns").rglob("summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["status"] == "completed" and summary["steps"] == 20
    assert summary["choices"]["norm"] == "layernorm" and summary["choices"]["model"] == "lstm"
    assert summary["metrics"]["val/loss"] < 3.3  # below the uniform 27-way guess (ln 27 = 3.30)


def test_shakespeare_missing_offline_is_one_clear_line(tmp_path: Path) -> None:
    # A proxy on a closed local port makes any download fail at once, network or not.
    proxy = "http://127.0.0.1:9"
    result = run(["data=shakespeare", "logger=none", f"paths.data_dir={tmp_path / 'data'}"], tmp_path,
                 https_proxy=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, HTTP_PROXY=proxy)
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and "tinyshakespeare.txt" in error[0] and "data.path=" in error[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_names_experiment_runs_end_to_end(model: str, tmp_path: Path) -> None:
    result = run([f"experiment=names_{model}", "trainer.max_steps=30", "trainer.val_check_interval=15",
                  "logger=csv"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next(tmp_path.glob("train/runs/*/summary.json")).read_text())
    assert summary["status"] == "completed" and summary["metrics"]["test/loss"] < 3.3



def test_gpu_recipe_trains_with_bf16_autocast_on_cpu(tmp_path: Path) -> None:
    """``experiment=shakespeare_gpt``'s path (dropout, fused AdamW, bf16-mixed) at toy size."""
    text = tmp_path / "text.txt"
    text.write_text("to be, or not to be, that is the question:\n" * 400)
    result = run(["experiment=shakespeare_gpt", "trainer=cpu", "trainer.precision=bf16-mixed",
                  f"data.path={text}", "data.block_size=32", "data.batch_size=16",
                  "model.net.depth=1", "model.net.heads=2", "model.net.width=32",
                  "optimizer.lr=0.01", "scheduler.warmup_steps=5", "trainer.max_steps=60",
                  "trainer.val_check_interval=60", "logger=csv",
                  "samples=1", "trainer.enable_progress_bar=false"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next(tmp_path.glob("train/runs/*/summary.json")).read_text())
    assert summary["status"] == "completed" and summary["steps"] == 60
    assert summary["metrics"]["val/loss"] < 0.6 * math.log(len(set(text.read_text())))


@pytest.mark.slow
def test_compiled_transformer_trains_and_keeps_plain_parameter_names(tmp_path: Path) -> None:
    result = run(["model=transformer", *TINY["transformer"], "model.compile=true", "trainer.max_steps=20",
                  "trainer.val_check_interval=10", "logger=csv", "samples=2"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next(tmp_path.glob("train/runs/*/summary.json")).read_text())
    assert summary["status"] == "completed" and summary["metrics"]["val/loss"] < 3.3
    state = torch.load(summary["best_ckpt"], weights_only=True)["state_dict"]
    assert not any("_orig_mod" in name for name in state)  # checkpoints load into uncompiled nets
