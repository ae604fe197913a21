"""What generation shares: image samples laid out as a grid, points as a scatter or histogram, the
samples callback writing what fits, a run recording where its picture went, and the sample
command drawing any generative checkpoint (tiny fake image and point tasks, in-process)."""

import json
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pytest
import torch

from conftest import make_cfg
from dlstudies.callbacks.samples import Samples
from dlstudies.config.errors import ConfigError
from dlstudies.generation.figures import draw, image_grid, kind
from dlstudies.sample import sample
from dlstudies.tasks.classifier import Classifier


class ImageClassifier(Classifier):
    """A classifier that also draws (N, 1, 4, 6) images, each filled with its index / n, brightened
    by ``shade``: a stand-in for a generative image task."""

    def sample(self, n: int, seed: int | None = None, shade: float = 0.0) -> torch.Tensor:
        return (torch.arange(n) / n + shade).clamp(0, 1).view(n, 1, 1, 1).expand(n, 1, 4, 6)


class PointClassifier(Classifier):
    """A stand-in for a generative task on 2-D (``dims=2``) or 1-D points: a seeded normal sample."""

    def __init__(self, *args, dims: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dims = dims

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        return torch.randn(n, self.dims, generator=torch.Generator().manual_seed(seed or 0))


def test_a_grid_lays_images_out_row_by_row_with_grey_gaps() -> None:
    images = torch.arange(6.0).div(6).view(6, 1, 1, 1).expand(6, 1, 3, 5)
    grid = image_grid(images, gap=2)  # 6 images: 2 rows of 3 columns
    assert grid.shape == (2 * 5, 3 * 7, 1)
    cells = grid[1::5, 1::7, 0][:2, :3]  # each cell's first pixel
    torch.testing.assert_close(cells, torch.tensor([[0, 1, 2], [3, 4, 5]]) / 6)
    assert (grid[0] == 0.5).all() and (grid[:, 0] == 0.5).all()  # the gaps
    rows = image_grid(images.reshape(2, 3, 1, 3, 5), gap=0)  # (R, K, C, H, W): as given
    torch.testing.assert_close(rows[::3, ::5, 0], torch.tensor([[0, 1, 2], [3, 4, 5]]) / 6)
    five = image_grid(images[:5], gap=0)  # 5 images: 3 columns, the last cell empty (grey)
    assert five.shape == (6, 15, 1) and (five[3:, 10:] == 0.5).all()
    colour = image_grid(torch.rand(4, 3, 2, 2).mul(3), gap=0)  # RGB, out of range: clamped
    assert colour.shape == (4, 4, 3) and colour.max() <= 1


def test_the_kind_of_samples_follows_their_shape() -> None:
    assert kind(["a", "b"]) == "texts"
    assert kind(torch.rand(4, 3, 8, 8)) == kind(torch.rand(2, 5, 1, 8, 8)) == "images"
    assert kind(torch.rand(9, 2)) == kind(torch.rand(9, 1)) == "points"
    with pytest.raises(ValueError, match=r"^samples of shape \(9, 3\) are neither images"):
        kind(torch.rand(9, 3))


def test_points_are_drawn_as_a_scatter_or_a_density_histogram() -> None:
    points = torch.randn(500, 2)
    (scatter,) = draw(points, "toy2d: 500 samples").axes
    torch.testing.assert_close(torch.tensor(np.asarray(scatter.collections[0].get_offsets())), points.double())
    assert scatter.get_xlabel() and scatter.get_ylabel() and scatter.figure.get_suptitle() == "toy2d: 500 samples"
    (hist,) = draw(points[:, :1], "toy1d").axes
    area = sum(bar.get_width() * bar.get_height() for bar in hist.patches)
    assert len(hist.patches) == 25 and area == pytest.approx(1.0)  # a density over 500 / 20 bins


def _trainer(**kwargs) -> SimpleNamespace:
    return SimpleNamespace(callbacks=[], loggers=[], is_global_zero=True, datamodule=None, **kwargs)


def test_the_callback_draws_images_and_points_into_the_run_folder(tmp_path: Path) -> None:
    for module, name in ((ImageClassifier(torch.nn.Linear(1, 2), ["a", "b"], optimizer=None), "images"),
                         (PointClassifier(torch.nn.Linear(1, 2), ["a", "b"], optimizer=None), "points")):
        folder = tmp_path / name
        samples = Samples(16, seed=0, after_test=False, folder=folder, title=f"{name}: 16 samples")
        samples.on_fit_end(_trainer(), module)
        assert samples.texts is None and samples.figure == folder / "samples.png"
        assert matplotlib.image.imread(samples.figure).ndim == 3  # a readable PNG


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A few steps of the fake image task on the scalar grid, trained as train.py trains (W&B offline)."""
    from dlstudies.train import train

    tmp_path = tmp_path_factory.mktemp("images")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "offline")
        cfg = make_cfg(["data=scalar_grid", "data.points=32", "model=mlp_classifier", "model.net.depth=1",
                        "model.net.width=8", "model._target_=test_generation.ImageClassifier", "trainer.max_steps=4",
                        "trainer.val_check_interval=2", "logger=[csv,wandb]", "samples=6",
                        "trainer.enable_progress_bar=false"],
                       tmp_path)
        return train(cfg)


def test_a_run_records_where_its_picture_went(image_run: dict) -> None:
    figure = Path(image_run["output_dir"]) / "samples.png"
    assert image_run["status"] == "completed" and image_run["samples_figure"] == str(figure)
    assert "samples" not in image_run and figure.is_file()
    assert json.loads((figure.parent / "summary.json").read_text())["samples_figure"] == str(figure)
    (logged,) = figure.parent.glob("wandb/offline-run-*/files/media/images/samples_*.png")  # and to W&B
    assert logged.read_bytes() == figure.read_bytes()


def test_the_sample_command_draws_any_generative_checkpoint(image_run: dict, tmp_path: Path) -> None:
    best = Path(image_run["best_ckpt"])
    assert sample(str(best), 4, seed=0) == best.parent.parent / "samples_best.png"
    out = sample(str(best), 4, seed=0, out=str(tmp_path / "grid.png"), shade=0.5)
    picture = matplotlib.image.imread(out)
    assert out == tmp_path / "grid.png" and picture.ndim == 3
    with pytest.raises(ConfigError, match=r"^temperature=0.8 is not an option of ImageClassifier sampling; "
                                          r"allowed: shade$"):
        sample(str(best), 4, temperature=0.8)
    with pytest.raises(ConfigError, match=r"^n=0 is not allowed; it must be an integer >= 1$"):
        sample(str(best), 0)


def test_a_classifier_checkpoint_does_not_sample(image_run: dict, tmp_path: Path) -> None:
    checkpoint = torch.load(image_run["best_ckpt"], weights_only=True)
    checkpoint["dlstudies"]["config"]["model"]["_target_"] = "dlstudies.tasks.classifier.Classifier"
    torch.save(checkpoint, tmp_path / "classifier.ckpt")
    with pytest.raises(ConfigError, match=r"holds a Classifier, which does not sample; give the checkpoint "
                                          r"of a generative model$"):
        sample(str(tmp_path / "classifier.ckpt"), 4)
