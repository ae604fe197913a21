"""``python train.py --help`` is dlstudies' own help, generated from the config files."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dlstudies import CONF_DIR
from dlstudies.config.argv import group_options
from dlstudies.config.help import description
from dlstudies.config.resolvers import register_resolvers


def test_help_lists_every_group_option_experiment_and_study() -> None:
    """The text Hydra prints for --help: train.yaml picks conf/hydra/help/dlstudies.yaml."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        hydra_cfg = compose("train", return_hydra_config=True).hydra
    text = OmegaConf.to_container(hydra_cfg.help, resolve=True)["template"]
    assert text.startswith("dlstudies: PyTorch Lightning + Hydra experiments")
    assert "lightning.Trainer argument with trainer.<argument>=value" in text
    for group in ("data", "model", "optimizer", "trainer", "logger", "callbacks", "init", "norm"):
        assert f"  {group} " in text and ", ".join(group_options(group)) in text, group
    for group in ("experiment", "sweep", "debug"):
        for option in group_options(group):
            assert f"  {option} " in text and description(CONF_DIR / group / f"{option}.yaml", 60)[:40] in text
    assert text.count("\n  python train.py") == 5  # the examples


def test_a_description_is_the_first_sentence_of_the_header_comment(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text("# @package _global_\n# A ReLU MLP on MNIST-1D (He et al. 2016). It trains fast.\n"
                      "# python train.py experiment=x\nmodel: {}\n")
    assert description(config, 80) == "A ReLU MLP on MNIST-1D (He et al. 2016)."
    config.write_text("# A very long description that goes on and on and on: python train.py x=1\n")
    assert description(config, 30) == "A very long description ..."
