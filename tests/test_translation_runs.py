"""Translation end to end: a smoke run of every translation experiment, a model that learns, the
translate command on a real checkpoint (and its bad input), and the attention_vs_length study's
report on known results and as a real smoke multirun."""

from pathlib import Path

import math

import pytest

from conftest import TINY, make_cfg, run_command
from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError
from dlstudies.report import report
from dlstudies.sample import sample
from dlstudies.translate import translate
from dlstudies.train import train
from test_studies import job, trends

SMALL = {"encoder_decoder": ["model.net.width=16", "model.net.heads=2", "model.net.depth=1"],
         "seq2seq_rnn": ["model.net.width=16", "model.net.embed=8"]}
EXPERIMENTS = {"numbers_rnn": "seq2seq_rnn", "numbers_attention": "seq2seq_rnn",
               "numbers_transformer": "encoder_decoder", "dates_transformer": "encoder_decoder"}


def tiny_run(experiment: str, tmp_path: Path, *overrides: str) -> dict:
    """A few steps of ``experiment`` on 300 pairs, in process; its summary record."""
    cfg = make_cfg([f"experiment={experiment}", *TINY, "data.num_pairs=300", f"paths.data_dir={tmp_path}/data",
                    *SMALL[EXPERIMENTS[experiment]], *overrides], tmp_path)
    return train(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_translation_experiment_runs_and_reports_buckets(experiment: str, tmp_path: Path) -> None:
    record = tiny_run(experiment, tmp_path, "trainer.max_steps=4", "trainer.val_check_interval=4")
    assert record["status"] == "completed"
    metrics = record["metrics"]
    for name in ("loss", "ppl", "acc", "exact_match", "bleu", "chrf"):
        assert f"val/{name}" in metrics and f"test/{name}" in metrics and f"test/{name}/len_1-10" in metrics
    buckets = [k for k in metrics if k.startswith("test/count/")]
    assert sum(metrics[k] for k in buckets) == 15  # 5% of 300 test pairs, each in one bucket
    assert len(record["samples"]) == 3 and all(" -> " in s for s in record["samples"])
    maps = sorted(p.name for p in (tmp_path / "run").glob("attention_*.png"))
    assert maps == ([] if experiment == "numbers_rnn" else ["attention_0.png", "attention_1.png", "attention_2.png"])


def test_the_transformer_learns_to_translate_numbers(tmp_path: Path) -> None:
    record = tiny_run("numbers_transformer", tmp_path, "data.max_number=999", "trainer.max_steps=150",
                      "trainer.val_check_interval=150", "optimizer.lr=0.005", "scheduler.warmup_steps=10")
    start = math.log(40)  # about uniform over the French vocabulary
    assert record["metrics"]["train/loss"] < 0.3 * start
    assert record["metrics"]["val/acc"] > 0.6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a real (tiny) Bahdanau run."""
    tmp_path = tmp_path_factory.mktemp("translate")
    tiny_run("numbers_attention", tmp_path, "trainer.max_steps=4", "trainer.val_check_interval=4", "test=false")
    return tmp_path / "run" / "checkpoints" / "best.ckpt"


def test_translate_command_prints_a_translation_and_draws_its_map(checkpoint: Path, tmp_path: Path) -> None:
    module, _ = load_module(checkpoint)
    word = next(t for t in module.src_vocab[4:] if t.isalpha())
    result = run_command([f"ckpt_path={checkpoint}", f"text={word} hundred", "beam_size=3",
                          f"plot={tmp_path / 'map.png'}"], tmp_path, module="dlstudies.translate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == translate(module, f"{word} hundred", beam_size=3)
    assert (tmp_path / "map.png").stat().st_size > 1000


def test_translate_bad_input_fails_in_one_line(checkpoint: Path, tmp_path: Path, names_file: Path) -> None:
    module, _ = load_module(checkpoint)
    with pytest.raises(ConfigError, match=r"^beam_size=0 is not allowed; it must be an integer >= 1$"):
        translate(module, "one", beam_size=0)
    with pytest.raises(ConfigError, match=r"^text='one zorglub' has token\(s\) \['zorglub'\] outside the source"):
        translate(module, "one zorglub")
    with pytest.raises(ConfigError, match=r"holds a translation model; translate text with: python -m dlstudies.translate "
                       r"ckpt_path=\S+ text="):
        sample(str(checkpoint), n=3)  # what python -m dlstudies.sample ckpt_path=<translation model> prints
    train(make_cfg([*TINY, f"data.path={names_file}", "trainer.max_steps=2", "test=false"], tmp_path))
    lm = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = run_command([f"ckpt_path={lm}", "text=one"], tmp_path, module="dlstudies.translate")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("holds a LanguageModel checkpoint; translate needs a translation "
                                          "model (model=seq2seq_rnn or encoder_decoder)")


def test_study_report_gives_exact_match_by_length_for_each_variant(tmp_path: Path) -> None:
    rnn = "dlstudies.models.seq2seq.Seq2SeqRNN"
    variants = {("none", rnn): (0.9, 0.1), ("bahdanau", rnn): (0.99, 0.95),
                (None, "dlstudies.models.encoder_decoder.EncoderDecoderTransformer"): (1.0, 0.98)}
    jobs = []
    for (attention, net), (short, long) in variants.items():
        for seed in (0, 1):
            result = job({"seed": seed}, test_err=0.5, config={"model.net.attention": attention, "model.net._target_": net})
            result["metrics"] |= {"test/exact_match/len_1-10": short, "test/exact_match/len_41+": long + 0.01 * seed,
                                  "test/bleu/len_1-10": short, "test/bleu/len_41+": long}
            jobs.append(result)
    assert trends(tmp_path, "attention_vs_length", jobs) == [
        "RNN + bahdanau attention: exact match 99.0% at len_1-10 -> 95.5% at len_41+ words",
        "RNN, no attention: exact match 90.0% at len_1-10 -> 10.5% at len_41+ words",
        "Transformer: exact match 100.0% at len_1-10 -> 98.5% at len_41+ words"]


@pytest.mark.slow
def test_study_smoke_multirun_and_report(tmp_path: Path) -> None:
    result = run_command(["-m", "+sweep=attention_vs_length", "study.scale=smoke", "logger=csv",
                          f"paths.data_dir={tmp_path}/data", "hydra.launcher.n_jobs=1"], tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "attention_vs_length" / "multiruns").iterdir()
    outputs = report(sweep, use_wandb=False)
    lines = outputs["txt"].read_text().splitlines()
    assert lines[0] == "attention_vs_length: 3 jobs 3 completed"
    assert [line.split(":")[0] for line in lines[1:]] == ["RNN + bahdanau attention", "RNN, no attention",
                                                          "Transformer"]
    assert outputs["png"].stat().st_size > 10_000
