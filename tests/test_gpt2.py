"""GPT-2-family checkpoints without a network: a tiny GPT-2 built and saved with ``transformers``
(random weights, a BPE tokenizer trained on a small text) gives the same logits and greedy tokens
in our GPT as in GPT2LMHeadModel, fine-tunes through train.py, and checkpoints our GPT cannot
hold stop in one line."""

import json
import re
from pathlib import Path

import pytest
import torch

from conftest import make_cfg
from dlstudies.config.errors import ConfigError
from dlstudies.data.bpe import train_bpe
from dlstudies.hub import hf_checkpoint
from dlstudies.models.gpt2 import gpt2_options
from dlstudies.sample import sample
from dlstudies.tasks.language_model import LanguageModel
from dlstudies.train import train

transformers = pytest.importorskip("transformers")  # the dev extra's; never a runtime dependency

TEXT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
        "must be in want of a wife. However little known the feelings or views of such a man may be "
        "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
        "surrounding families, that he is considered the rightful property of some one or other of "
        "their daughters.\n") * 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "austen.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A saved tiny GPT-2 (2 layers, width 32, 64 positions, 300 BPE tokens) and the model itself.
    Weights are drawn wider than GPT-2's 0.02 so that greedy decoding does not repeat one token."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tokenizer = train_bpe(TEXT, 300)
    transformers.GPT2TokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>").save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=300,
                                     bos_token_id=0, eos_token_id=0, initializer_range=0.2)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    return folder, model


def test_logits_and_greedy_tokens_equal_gpt2lmheadmodel(gpt2: tuple[Path, torch.nn.Module]) -> None:
    folder, reference = gpt2
    ours = LanguageModel.from_pretrained(f"hf:{folder}")
    ids = torch.tensor([ours.encode(TEXT[:400])[:64]])
    with torch.no_grad():
        torch.testing.assert_close(ours.net(ids), reference(ids).logits, atol=1e-5, rtol=0)
    prompt = "It is a truth"
    expected = reference.generate(torch.tensor([ours.encode(prompt)]), max_new_tokens=40, do_sample=False,
                                  pad_token_id=0)
    assert len(set(expected[0].tolist())) > 10  # a varied continuation, not one token repeated
    assert ours.sample(1, prompt=prompt, max_new_tokens=40, temperature=0) == [ours.decode(expected[0].tolist())]


def test_sample_command_generates_with_the_checkpoints_tokenizer_and_reports_its_speed(
        gpt2: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture) -> None:
    texts = sample(f"hf:{gpt2[0]}", 3, seed=0, prompt="It is a truth", max_new_tokens=20, temperature=0.8, top_k=50)
    assert len(texts) == 3 and all(text.startswith("It is a truth") for text in texts)
    assert sample(f"hf:{gpt2[0]}", 3, seed=0, prompt="It is a truth", max_new_tokens=20, temperature=0.8,
                  top_k=50, use_cache=False) == texts  # the same tokens without the cache
    assert re.search(r"^60 tokens in [\d.]+ s: [\d.]+ tokens/s on \d+ threads$", capsys.readouterr().err, re.M)


def test_fine_tuning_continues_from_the_checkpoint(gpt2: tuple[Path, torch.nn.Module], corpus: Path,
                                                   tmp_path: Path) -> None:
    folder, reference = gpt2
    cfg = make_cfg(["model=transformer", f"model.pretrained=hf:{folder}", "data=chars", f"data.path={corpus}",
                    "data.block_size=32", "data.batch_size=8", "optimizer.lr=3e-3", "scheduler=none", "trainer.max_steps=30",
                    "trainer.val_check_interval=30", "logger=none", "samples=2", "test=false",
                    "trainer.enable_progress_bar=false"], tmp_path)
    record = train(cfg)
    assert cfg.model.net.depth == 2 and cfg.model.net.width == 32 and cfg.data.tokenizer.endswith("tokenizer.json")
    data = LanguageModel.from_pretrained(f"hf:{folder}")
    ids = torch.tensor(data.encode(TEXT[-2000:]))
    windows = ids[: len(ids) // 33 * 33].view(-1, 33)  # the start's loss on text like the validation split
    with torch.no_grad():
        start = torch.nn.functional.cross_entropy(reference(windows[:, :-1]).logits.flatten(0, 1),
                                                  windows[:, 1:].flatten())
    assert record["status"] == "completed" and record["metrics"]["val/loss"] < 0.8 * float(start)
    tuned = torch.load(Path(record["best_ckpt"]), weights_only=True)["state_dict"]["net.wpe.weight"]
    moved = (tuned - reference.transformer.wpe.weight).norm() / reference.transformer.wpe.weight.norm()
    assert moved < 0.5  # close to the pretrained weights: it started from them


def test_checkpoints_our_gpt_cannot_hold_stop_in_one_line(tmp_path: Path) -> None:
    llama = {"model_type": "llama", "rope_theta": 10000.0, "hidden_act": "silu", "intermediate_size": 64,
             "rms_norm_eps": 1e-6, "num_attention_heads": 4, "num_key_value_heads": 2}
    with pytest.raises(ConfigError, match=r"^model.pretrained=hf:x is a llama checkpoint \(rotary positions, "
                                          r"a SwiGLU feed-forward, RMSNorm, grouped-query attention\); "
                                          r"model=transformer holds GPT-2-family checkpoints"):
        gpt2_options(llama, "model.pretrained=hf:x")
    variant = {"model_type": "gpt2", "n_embd": 32, "n_inner": 100, "activation_function": "relu"}
    with pytest.raises(ConfigError, match=r"GPT-2 variant our GPT cannot hold: activation relu, "
                                          r"a feed-forward of 100 units \(ours: 4 x 32\)$"):
        gpt2_options(variant, "model.pretrained=hf:x")
    (tmp_path / "config.json").write_text(json.dumps(llama))
    with pytest.raises(ConfigError, match=r"has no \*.safetensors, tokenizer.json in .*; a checkpoint folder holds"):
        hf_checkpoint(f"hf:{tmp_path}", "model.pretrained")


def test_a_hub_name_out_of_reach_fails_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^model.pretrained=hf:dlstudies-tests/no-such-model is no local "
                                          r"folder and could not be downloaded from the Hugging Face hub \(.*\); "
                                          r"give a folder with config.json"):
        hf_checkpoint("hf:dlstudies-tests/no-such-model", "model.pretrained")
