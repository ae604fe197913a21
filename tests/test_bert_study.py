"""The pre-training study's trend lines from job folders with known results, the n-gram baseline,
and the BERT experiments and the study run through the real command line at smoke size."""

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from conftest import run_command
from dlstudies.callbacks.ngram_baseline import NgramBaseline, mcnemar_p
from dlstudies.report import report
from test_studies import job, make_sweep

SPLIT = {"data.val_fraction": 0.1, "data.test_fraction": 0.1}


def study_job(pretrained: bool, num_train: int | None, seed: int, acc: float, ngram: float) -> dict:
    spec = job({"model.pretrained": "names_bert_mlm" if pretrained else None, "data.num_train": num_train,
                "seed": seed}, test_err=1 - acc, config=SPLIT)
    spec["metrics"]["test/ngram_acc"] = ngram
    return spec


def test_pretraining_study_gives_the_gain_at_each_labelled_size(tmp_path: Path) -> None:
    results = {(True, 100): (0.74, 0.76), (False, 100): (0.62, 0.66), (True, None): (0.89, 0.89),
               (False, None): (0.88, 0.88)}
    jobs = [study_job(pretrained, n, seed, accs[seed], ngram=0.7 if n else 0.87)
            for (pretrained, n), accs in results.items() for seed in (0, 1)]
    outputs = report(make_sweep(tmp_path, "pretraining", jobs), use_wandb=False)
    assert outputs["png"].stat().st_size > 10_000
    lines = outputs["txt"].read_text().splitlines()
    assert lines[0] == "pretraining: 8 jobs 8 completed"
    assert lines[1] == ("100 labels: pre-trained 75.0% (std 1.4), from scratch 64.0% (std 2.8), "
                        "n-gram 70.0%; pre-training +11.0 points")
    assert lines[2].startswith("77823 labels: pre-trained 89.0% (std 0.0), from scratch 88.0% (std 0.0), "
                               "n-gram 87.0%; pre-training +1.0 points")
    assert lines[3] == "pre-training's gain: +11.0 points at 100 labels, +1.0 at 77823; largest at 100"


def run_ok(args: list[str], tmp_path: Path, **kwargs) -> str:
    result = run_command(args, tmp_path, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


TINY = ["model.net.depth=1", "model.net.width=16", "model.net.heads=2", "trainer.max_steps=6",
        "trainer.val_check_interval=3", "logger=csv", "trainer.enable_progress_bar=false"]


def test_mnist1d_transformer_runs_end_to_end(tmp_path: Path) -> None:
    out = run_ok(["experiment=mnist1d_transformer", *TINY, "data.num_train=200", f"paths.data_dir={tmp_path}",
                  "model.net.patch=4"], tmp_path)
    assert "test/acc" in out and "test/class_acc/9" in out


@pytest.mark.slow
def test_pretraining_study_smoke_then_report(tmp_path: Path) -> None:
    """The whole pipeline: the first pre-trained job pre-trains (once), the others reuse it."""
    run_ok(["-m", "+sweep=pretraining", "study.scale=smoke", "logger=csv", "hydra.launcher.n_jobs=2"], tmp_path)
    (sweep,) = (tmp_path / "pretraining" / "multiruns").iterdir()
    (pretraining,) = tmp_path.glob("pretrained/names_bert_mlm-*/summary.json")
    assert json.loads(pretraining.read_text())["status"] == "completed"
    outputs = report(sweep, use_wandb=False)
    table = pd.read_csv(outputs["csv"])
    assert len(table) == 4 and set(table["status"]) == {"completed"} and table["ngram_acc"].notna().all()
    assert outputs["png"].is_file() and "pre-training's gain" in outputs["txt"].read_text()


def test_the_ngram_baseline_learns_names_by_their_letters_and_is_compared_pair_by_pair() -> None:
    train = ["anna", "maria", "julia", "emma", "sofia", "mark", "john", "peter", "tom", "erik"] * 3
    test = ["lena", "carla", "frank", "jack"]
    labels = torch.tensor([int(name.endswith("a")) for name in train])
    data = SimpleNamespace(texts={"train": train, "test": test},
                           splits={"train": (None, labels), "test": (torch.zeros(4, 5), torch.tensor([1, 1, 0, 0]))})
    logged: dict[str, float] = {}
    always_a = torch.tensor([0.0, 1.0])  # a model that calls every name class 1: right on lena, carla only
    module = SimpleNamespace(device="cpu", log_dict=logged.update, log_probs=lambda logits: logits,
                             logits_and_labels=lambda batch: (always_a.expand(len(batch[0]), 2), batch[1]))
    NgramBaseline(n=2).on_test_epoch_end(SimpleNamespace(datamodule=data), module)
    assert logged == {"test/ngram_acc": 1.0, "test/only_model_right": 0.0, "test/only_ngram_right": 2.0,
                      "test/vs_ngram_p": 0.5}


def test_mcnemar_p_is_the_exact_two_sided_binomial_chance_of_the_split() -> None:
    assert mcnemar_p(0, 10) == pytest.approx(2 / 2**10)  # all ten discordant pairs one way
    assert mcnemar_p(5, 5) == mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(396, 416) == mcnemar_p(416, 396) > 0.4  # 20 of 812 apart: chance
