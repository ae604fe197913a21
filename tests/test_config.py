"""Every option of every config group composes, resolves and builds what it names."""

from functools import partial
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from conftest import make_cfg
from dlstudies.config.argv import check_choices, group_options
from dlstudies.config.errors import ConfigError

GROUPS = ["data", "model", "optimizer", "scheduler", "regularizer", "norm", "activation", "init",
          "trainer", "logger", "callbacks", "experiment"]
CASES = [(group, option) for group in GROUPS for option in group_options(group)]


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes_and_resolves(group: str, option: str, tmp_path: Path,
                                            names_file: Path) -> None:
    cfg = make_cfg([f"{group}={option}", f"++data.path={names_file}"], tmp_path)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert cfg.model.net._target_ and cfg.data._target_


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


@pytest.mark.parametrize("option", group_options("init"))
def test_init_options_apply(option: str, tmp_path: Path) -> None:
    init = instantiate(make_cfg([f"init={option}"], tmp_path).init)
    net = nn.Sequential(nn.Linear(400, 300), nn.Linear(300, 10))
    init(net)
    assert torch.isfinite(net[0].weight).all()


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
