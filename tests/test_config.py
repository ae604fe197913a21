"""Every option of every config group composes, resolves and builds what it names."""

import ast
import math
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from conftest import make_cfg
from dlstudies.config.argv import check_choices, group_options
from dlstudies.config.errors import ConfigError
from dlstudies.tasks.classifier import Classifier
from dlstudies.tasks.diffusion import Diffusion
from dlstudies.tasks.language_model import LanguageModel
from dlstudies.tasks.seq2seq import Seq2Seq
from dlstudies.tasks.vae import VAE

# Groups whose options build objects of their own here; optimizer, scheduler, norm, activation,
# init and regularizer options have the tests further down.
GROUPS = ["data", "model", "trainer", "logger", "callbacks", "experiment"]
CASES = [(group, option) for group in GROUPS for option in group_options(group)]
VOCAB = ["\n", *"abcdefghij"]


def check_model(cfg: DictConfig) -> None:
    """Build the task and its net as the data would, and run a batch through it."""
    if cfg.model._target_.endswith("LanguageModel"):
        module = instantiate(cfg.model, net={"vocab_size": len(VOCAB)}, vocab=VOCAB)
        x = torch.zeros(2, min(8, cfg.data.block_size), dtype=torch.long)
        assert isinstance(module, LanguageModel) and module(x).shape == (2, x.size(1), len(VOCAB))
        if cfg.model.net.get("block_size") is not None:
            assert module.net.block_size == cfg.data.block_size  # the context follows the data
    elif cfg.model._target_.endswith("TokenClassifier"):  # one class per token
        module = instantiate(cfg.model, net={"vocab_size": len(VOCAB), "num_classes": 4, "block_size": 8},
                             class_names=list("abcd"))
        assert isinstance(module, Classifier) and module(torch.zeros(2, 8, dtype=torch.long)).shape == (2, 8, 4)
    elif cfg.model._target_.endswith("Seq2Seq"):
        module = instantiate(cfg.model, net={"src_vocab_size": 11, "tgt_vocab_size": 7}, src_vocab=VOCAB,
                             tgt_vocab=VOCAB[:7])
        src, tgt = torch.randint(1, 11, (2, 5)), torch.randint(1, 7, (2, 4))
        assert isinstance(module, Seq2Seq) and module(src, tgt).shape == (2, 4, 7)
    elif cfg.model._target_.endswith("Diffusion"):  # a noise predictor of the data's shape
        shape = [28, 28] if cfg.model.net._target_.endswith("UNet") else [2]
        module = instantiate(cfg.model, net={"in_shape": shape, "num_classes": 4}, class_names=list("abcd"))
        z = torch.zeros(2, *shape)
        assert isinstance(module, Diffusion) and module.net(z, torch.ones(2, dtype=torch.long)).shape == z.shape
    elif cfg.model._target_.endswith("VAE"):  # images in [0, 1]: 0/1 pixels for a Bernoulli likelihood
        pixels = {"binary": cfg.model.likelihood == "bernoulli", "mean": 0.0, "std": 1.0}
        module = instantiate(cfg.model, net={"in_shape": [28, 28], "num_classes": 10}, class_names=list(VOCAB[1:]),
                             pixels=pixels)
        assert isinstance(module, VAE) and module.sample(3, seed=0).shape == (3, 1, 28, 28)
    else:
        module = instantiate(cfg.model, net={"in_shape": [40], "num_classes": 4}, class_names=list("abcd"))
        assert isinstance(module, Classifier) and module(torch.zeros(2, 40)).shape[-2:] == (2, 4)


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_builds_what_it_names(group: str, option: str, tmp_path: Path, names_file: Path) -> None:
    cfg = make_cfg([f"{group}={option}"], tmp_path)
    if OmegaConf.is_missing(cfg.data, "path") or "dataset" in cfg.data:  # corpora the user names
        cfg.data.path = str(names_file)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if group in ("data", "experiment"):
        assert isinstance(instantiate(cfg.data), L.LightningDataModule)
    if group in ("model", "experiment"):
        check_model(cfg)
    if group == "trainer":  # on this CPU machine; the option's strategy and precision stay
        assert isinstance(instantiate(cfg.trainer, accelerator="cpu"), L.Trainer)
    if group in ("logger", "callbacks"):
        kinds = {"logger": L.pytorch.loggers.Logger, "callbacks": L.Callback}
        assert all(isinstance(instantiate(c), kinds[group]) for c in cfg[group].values() if c is not None)


def test_norm_activation_init_change_the_mlp(tmp_path: Path) -> None:
    cfg = make_cfg(["norm=batchnorm", "activation=relu", "init=he"], tmp_path)
    module = instantiate(cfg.model, net={"vocab_size": 27}, vocab=list("\nabcdefghijklmnopqrstuvwxyz"))
    layers = [type(m).__name__ for m in module.net.hidden]
    assert layers[:3] == ["Linear", "BatchNorm", "ReLU"]
    weight = module.net.hidden[0].weight
    assert weight.std().item() == pytest.approx((2 / weight.shape[1]) ** 0.5, rel=0.1)


@pytest.mark.parametrize("option", group_options("norm"))
def test_norm_options_build_layers(option: str, tmp_path: Path) -> None:
    norm = instantiate(make_cfg([f"norm={option}"], tmp_path).norm)
    layer = norm(8)
    x = torch.randn(4, 5, 8)
    assert layer(x).shape == x.shape


@pytest.mark.parametrize("option", group_options("activation"))
def test_activation_options_build_modules(option: str, tmp_path: Path) -> None:
    activation = instantiate(make_cfg([f"activation={option}"], tmp_path).activation)
    assert isinstance(activation(), nn.Module)


@pytest.mark.parametrize("optimizer", group_options("optimizer"))
@pytest.mark.parametrize("scheduler", group_options("scheduler"))
def test_optimizer_and_scheduler_options_step(optimizer: str, scheduler: str, tmp_path: Path) -> None:
    cfg = make_cfg([f"optimizer={optimizer}", f"scheduler={scheduler}"], tmp_path)
    param = nn.Parameter(torch.ones(3))
    opt = instantiate(cfg.optimizer)([param])
    sched = instantiate(cfg.scheduler)(opt, total_steps=10)
    param.sum().backward()
    opt.step()
    sched.step()
    assert param.data.lt(1).all()


# The weight variance each init option draws for a layer with these fans (init.std 0.02 for normal).
INIT_VARIANCE = {
    "default": lambda fan_in, fan_out: 1 / (3 * fan_in),  # PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    "he": lambda fan_in, fan_out: 2 / fan_in,
    "glorot": lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    "normal": lambda fan_in, fan_out: 0.02**2,
}


@pytest.mark.parametrize("option", group_options("init"))
def test_init_options_draw_their_variance_in_every_layer(option: str, tmp_path: Path) -> None:
    """Linear and convolutional layers, with a convolution's fans counting its kernel
    (fan_in = in_channels x kernel size); weights start constant, so an init that does nothing fails."""
    init = instantiate(make_cfg([f"init={option}"], tmp_path).init)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(400, 300), nn.Conv1d(16, 32, kernel_size=5),
                        nn.Conv2d(8, 24, kernel_size=3))
    fans = [(400, 300), (16 * 5, 32 * 5), (8 * 9, 24 * 9)]
    for param in net.parameters():
        nn.init.constant_(param, 0.5)
    init(net)
    for layer, (fan_in, fan_out) in zip(net, fans):
        assert layer.weight.var().item() == pytest.approx(INIT_VARIANCE[option](fan_in, fan_out), rel=0.1)
        if option == "default":  # PyTorch draws biases too, from the same bound
            assert 0 < layer.bias.abs().max() <= 1 / math.sqrt(fan_in)
        else:
            assert torch.count_nonzero(layer.bias) == 0


def test_regularizer_options_only_change_their_own_key(tmp_path: Path) -> None:
    base = OmegaConf.to_container(make_cfg([], tmp_path).regularizer)
    for option in group_options("regularizer"):
        changed = OmegaConf.to_container(make_cfg([f"regularizer={option}"], tmp_path).regularizer)
        assert set(changed) == set(base)
        assert sum(changed[k] != base[k] for k in base) <= 1, option


def test_several_loggers_at_once(tmp_path: Path) -> None:
    cfg = make_cfg(["logger=[csv,tensorboard]"], tmp_path)
    loggers = [instantiate(c) for c in cfg.logger.values()]
    assert [type(lg).__name__ for lg in loggers] == ["CSVLogger", "TensorBoardLogger"]


def test_unknown_options_are_rejected_in_one_line() -> None:
    check_choices(["model=mlp,bigram", "norm=layernorm", "logger=[csv,wandb]", "trainer.max_steps=3"])
    with pytest.raises(ConfigError, match=r"^norm=groupnorm is not an option; allowed: .*layernorm"):
        check_choices(["norm=groupnorm"])
    with pytest.raises(ConfigError, match="model=gpt5"):
        check_choices(["model=mlp,gpt5"])


def test_partial_factories_are_what_models_receive(tmp_path: Path) -> None:
    cfg = make_cfg(["norm=layernorm", "activation=gelu"], tmp_path)
    assert isinstance(instantiate(cfg.norm), partial) and isinstance(instantiate(cfg.activation), partial)


def test_config_is_the_floor() -> None:
    """config/ imports nothing of dlstudies above it: every other module may use it."""
    from dlstudies import PACKAGE_DIR

    for path in sorted((PACKAGE_DIR / "config").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlstudies"):
                assert node.module == "dlstudies" or node.module.startswith("dlstudies.config."), \
                    f"{path.name} imports {node.module}"


def test_an_error_line_keeps_brackets_rich_would_read_as_markup(capsys) -> None:
    from dlstudies.config.errors import print_error

    print_error("trainer.devices=[0,1] is not allowed; [bold] stays text")
    assert capsys.readouterr().err == "error: trainer.devices=[0,1] is not allowed; [bold] stays text\n"
