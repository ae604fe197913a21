"""Variational autoencoders: the ELBO against a hand computation, the importance-weighted bound
against the closed-form likelihood of a linear-Gaussian model, the reparameterization, active
units, the nets' shapes, binarized image data, one-line errors and a short training run."""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest import make_cfg, run_command
from dlstudies.callbacks.latent_map import LatentMap
from dlstudies.config.errors import ConfigError
from dlstudies.data.idx import read_idx, write_idx
from dlstudies.data.mnist import FILES, MNISTDataModule
from dlstudies.metrics.classifier_distance import ClassifierDistance
from dlstudies.models.mlp_classifier import MLPClassifier
from dlstudies.models.vae import VAENet
from dlstudies.tasks.classifier import Classifier
from dlstudies.tasks.vae import VAE, ActiveUnits, reparameterize
from dlstudies.sample import sample as sample_command
from dlstudies.report import report
from dlstudies.train import train
from test_studies import job, trends

GREY = {"binary": False, "mean": 0.0, "std": 1.0}
BINARY = {"binary": True, "mean": 0.0, "std": 1.0}
TINY = ["logger=none", "trainer.enable_progress_bar=false", "samples=0"]


def task(net: VAENet, pixels: dict = BINARY, **options) -> VAE:
    """The VAE task around ``net`` with a fixed optimizer, as Hydra would build it."""
    return VAE(net, class_names=[str(c) for c in range(10)], pixels=pixels,
               optimizer=lambda params: torch.optim.Adam(params, 1e-3), **options)


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """IDX files of 'digits': a bright square whose place encodes the label, on a dark ground."""
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 400), ("test", 60)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label : 2 * label + 8, 4:20] = 230
        write_idx(folder / FILES[f"{prefix}_images"], images.astype(np.uint8))
        write_idx(folder / FILES[f"{prefix}_labels"], labels.astype(np.uint8))
    return folder


def test_elbo_of_a_tiny_vae_equals_the_hand_computation() -> None:
    net = VAENet(in_shape=(2, 2), num_classes=10, depth=0, latent=2)
    with torch.no_grad():  # q(z|x) = N([0.5, -1], diag[1, 4]) for every x; logits = b + z_1 * [1, 0, 0, -1]
        net.to_code.weight.zero_()
        net.to_code.bias.copy_(torch.tensor([0.5, -1.0, 0.0, math.log(4.0)]))
        net.decoder[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]))
        net.decoder[0].bias.copy_(torch.tensor([0.0, math.log(3), -math.log(3), 2.0]))
    x = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]])
    torch.manual_seed(0)
    terms = task(net, beta=0.5).terms_of(x, None, beta=0.5)
    torch.manual_seed(0)
    eps = torch.randn(1, 2, 2)[0]
    kl = 0.5 * ((0.25 + 1 - 1 - 0) + (1 + 4 - 1 - math.log(4)))  # 0.5 sum(mu^2 + s^2 - 1 - log s^2)
    for index, (image, e) in enumerate(zip(x, eps)):
        z1 = 0.5 + 1.0 * float(e[0])
        logits = [z1, math.log(3), -math.log(3), 2.0 - z1]
        pixels = image.flatten().tolist()
        rec = sum(math.log1p(math.exp(l)) - p * l for p, l in zip(pixels, logits))  # -log Bernoulli
        expected = {"rec": rec, "kl": kl, "nelbo": rec + kl, "loss": rec + 0.5 * kl}
        assert {k: pytest.approx(float(terms[k][index]), abs=1e-5) for k in expected} == expected


def test_importance_bound_rises_with_k_towards_the_true_likelihood_of_a_linear_gaussian_vae() -> None:
    torch.manual_seed(0)
    net = VAENet(in_shape=(2, 2), num_classes=10, depth=0, latent=2)
    sigma, weight, bias = 0.5, torch.randn(4, 2), torch.randn(4) * 0.3
    # p(x|z) = N(W z + b, sigma^2 I); the posterior is N(S W^T (x - b) / sigma^2, S), S = (I + W^T W / sigma^2)^-1.
    # q: a diagonal Gaussian with 0.8 times its mean and 1.5 times its variances, so the ELBO is loose.
    posterior = torch.linalg.inv(torch.eye(2) + weight.T @ weight / sigma**2)
    to_mean = 0.8 * posterior @ weight.T / sigma**2
    with torch.no_grad():
        net.decoder[0].weight.copy_(weight)
        net.decoder[0].bias.copy_(bias)
        net.to_code.weight.copy_(torch.cat([to_mean, torch.zeros(2, 4)]))
        net.to_code.bias.copy_(torch.cat([-to_mean @ bias, (1.5 * posterior.diagonal()).log()]))
    model = task(net, pixels=GREY, likelihood="gaussian", sigma=sigma)
    x = (bias + torch.randn(300, 2) @ weight.T + sigma * torch.randn(300, 4)).view(300, 2, 2)
    marginal = torch.distributions.MultivariateNormal(bias, weight @ weight.T + sigma**2 * torch.eye(4))
    true_nll = -marginal.log_prob(x.flatten(1)).mean().item()  # -log p(x) in closed form
    with torch.no_grad():
        mean, log_var = net.encode(x)
        bounds = [model.importance_bound(x, None, mean, log_var, k).mean().item() for k in (1, 10, 100, 3000)]
    # -log p(x) <= the k-sample bound, which falls towards it with k (up to the estimate's noise, ~0.005)
    assert bounds[0] > bounds[1] + 1.0 and bounds[1] > bounds[2] + 0.05 and bounds[1] > true_nll + 0.05
    assert abs(bounds[2] - true_nll) < 0.02 and abs(bounds[3] - true_nll) < 0.01


def test_reparameterized_sample_has_the_asked_mean_and_variance() -> None:
    torch.manual_seed(0)
    mean = torch.tensor([1.5, -2.0, 0.0], requires_grad=True)
    log_var = torch.tensor([0.0, math.log(0.25), math.log(9.0)], requires_grad=True)
    z = reparameterize(mean, log_var, 200_000)
    assert z.shape == (200_000, 3)
    assert torch.allclose(z.mean(0), mean, atol=0.02)
    assert torch.allclose(z.var(0), log_var.exp(), rtol=0.02)
    z.sum().backward()  # gradients reach both parameters through the sample
    assert torch.allclose(mean.grad, torch.full((3,), 200_000.0)) and log_var.grad.abs().min() > 0


def test_active_units_count_the_latents_whose_posterior_mean_varies() -> None:
    metric = ActiveUnits(3)
    x = torch.linspace(-1, 1, 1000)
    metric.update(torch.stack([x, 0.05 * x, torch.full_like(x, 3.0)], 1)[:500])  # in two batches
    metric.update(torch.stack([x, 0.05 * x, torch.full_like(x, 3.0)], 1)[500:])
    assert metric.compute() == 1  # variance 0.33 > 0.01; 0.0008 and 0 are not active


@pytest.mark.parametrize(("kind", "shape"), [("mlp", (28, 28)), ("conv", (28, 28)), ("conv", (3, 15, 9))])
def test_nets_map_images_to_codes_and_codes_to_pixels(kind: str, shape: tuple) -> None:
    for conditional in (False, True):
        net = VAENet(in_shape=shape, num_classes=10, kind=kind, depth=2, width=8, latent=5, conditional=conditional)
        labels = torch.tensor([1, 2, 3, 4]) if conditional else None
        mean, log_var = net.encode(torch.rand(4, *shape), labels)
        assert mean.shape == log_var.shape == (4, 5)
        assert net.decode(torch.randn(7, 4, 5), labels).shape == (7, 4, *shape)


def test_conditional_samples_follow_the_asked_class_and_unconditional_ones_refuse_labels() -> None:
    net = VAENet(in_shape=(4, 4), num_classes=10, depth=1, width=8, latent=2, conditional=True)
    model = task(net)
    assert model.sample(6, seed=0).shape == (6, 1, 4, 4)
    assert torch.equal(model.sample(3, seed=0, labels=[2]), model.sample(3, seed=0, labels=[2, 2, 2]))
    assert not torch.equal(model.sample(3, seed=0, labels=[2]), model.sample(3, seed=0, labels=[5]))
    with pytest.raises(ConfigError, match=r"labels=\[12\] is not allowed"):
        model.sample(3, labels=[12])
    with pytest.raises(ConfigError, match="not trained conditional"):
        task(VAENet(in_shape=(4, 4), num_classes=10, latent=2)).sample(3, labels=[1])


def test_sizes_and_options_that_do_not_fit_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"^model.net.latent=0 is not allowed; it must be an integer >= 1$"):
        VAENet(in_shape=(28, 28), num_classes=10, latent=0)
    with pytest.raises(ConfigError, match=r"^model.net.depth=0 is not allowed"):
        VAENet(in_shape=(28, 28), num_classes=10, kind="conv", depth=0)
    with pytest.raises(ConfigError, match=r"^model.net.kind='rnn' is not allowed; use mlp or conv$"):
        VAENet(in_shape=(28, 28), num_classes=10, kind="rnn")
    net = VAENet(in_shape=(28, 28), num_classes=10)
    with pytest.raises(ConfigError, match=r"^model.likelihood=bernoulli does not fit grey pixels; use bernoulli"):
        task(net, likelihood="bernoulli", pixels=GREY)
    with pytest.raises(ConfigError, match=r"^model.eval_samples=0 is not allowed; it must be an integer >= 1$"):
        task(net, eval_samples=0)
    with pytest.raises(ConfigError, match=r"^model.beta=-1 is not allowed; it must be a number > 0$"):
        task(net, beta=-1)
    with pytest.raises(ConfigError, match=r"^data.binarize='yes' is not allowed; use none, dynamic, static$"):
        MNISTDataModule(binarize="yes")


def test_a_bad_binarize_stops_the_run_before_training_in_one_line(tmp_path: Path) -> None:
    cfg = make_cfg(["model=vae", "data=mnist", "data.binarize=maybe", *TINY], tmp_path)
    with pytest.raises(ConfigError, match=r"^data.binarize='maybe' is not allowed; use none, dynamic, static$"):
        train(cfg)
    assert not (tmp_path / "run" / "summary.json").exists()  # stopped before anything ran


def test_binarization_dynamic_per_training_batch_fixed_and_seeded_elsewhere(idx_dir: Path) -> None:
    def data(binarize: str, seed: int = 0) -> MNISTDataModule:
        module = MNISTDataModule(path=str(idx_dir), val_size=50, binarize=binarize, seed=seed, batch_size=16)
        module.setup("fit")
        return module

    dynamic, other_seed, static, grey = data("dynamic"), data("dynamic", seed=3), data("static"), data("none")
    for module in (dynamic, static):
        assert {float(v) for v in module.splits["test"][0].unique()} == {0.0, 1.0}
        assert module.model_kwargs()["pixels"] == BINARY
    assert torch.equal(dynamic.splits["test"][0], other_seed.splits["test"][0])  # the same test images
    assert torch.equal(dynamic.splits["test"][0], static.splits["test"][0])
    intensities = dynamic.splits["train"][0]
    assert 0 <= intensities.min() and intensities.max() <= 1 and len(intensities.unique()) > 2
    dynamic.trainer = type("FakeTrainer", (), {"training": True})()  # what Lightning sets while fitting
    first, second = (dynamic.on_after_batch_transfer((intensities[:64], None), 0)[0] for _ in range(2))
    assert not torch.equal(first, second) and set(first.unique().tolist()) == {0.0, 1.0}
    assert abs(first.mean() - intensities[:64].mean()) < 0.02  # Bernoulli(intensity): the same mean
    assert {float(v) for v in dynamic.val_dataloader()[1].dataset.tensors[0].unique()} == {0.0, 1.0}
    pixels = grey.model_kwargs()["pixels"]
    restored = grey.splits["test"][0] * pixels["std"] + pixels["mean"]  # back to intensities in [0, 1]
    raw = torch.from_numpy(read_idx(idx_dir / FILES["test_images"]).copy()).float() / 255
    assert torch.allclose(restored, raw, atol=1e-5) and not pixels["binary"]


def test_mnist_vae_learns_and_tests_with_importance_samples_and_sample_distance(tmp_path: Path, idx_dir: Path) -> None:
    classifier = train(make_cfg(["experiment=mnist_cnn", f"data.path={idx_dir}", "data.val_size=50",
                                 "model.net.head=avg", "trainer.max_steps=4", "trainer.val_check_interval=2", *TINY],
                              tmp_path / "cnn"))  # pooled: 64 features, not 3136
    cfg = make_cfg(["experiment=mnist_vae", f"data.path={idx_dir}", "data.val_size=50", "model.eval_samples=20",
                    "model.net.latent=4", f"model.sample_classifier={classifier['best_ckpt']}",
                    "model.quality_samples=50", *TINY, "samples=16", "trainer.max_steps=60",
                    "trainer.val_check_interval=30", "scheduler.warmup_steps=10"], tmp_path)
    record = train(cfg)
    metrics = record["metrics"]
    assert record["status"] == "completed"
    assert metrics["test/nll"] <= metrics["test/nelbo"] + 1.0  # the 20-sample bound is the tighter one
    assert metrics["val/nelbo"] < 0.7 * 28 * 28 * math.log(2)  # well below a coin flip per pixel (its start)
    assert metrics["test/active_units"] >= 1
    assert metrics["test/sample_frechet"] > metrics["test/sample_frechet_floor"] > 0
    assert record["samples_figure"] == str(tmp_path / "run" / "samples.png")  # the grid of 16 samples
    strip = sample_command(record["best_ckpt"], 6, between=[0, 3], out=str(tmp_path / "strip.png"))
    assert strip == tmp_path / "strip.png" and strip.stat().st_size > 1000
    with pytest.raises(ConfigError, match=r"^between=\[0, 60\] is not allowed; give two test image numbers in 0..59$"):
        sample_command(record["best_ckpt"], 6, between=[0, 60])


def nearest_mean_classifier(images: torch.Tensor, labels: torch.Tensor) -> Classifier:
    """A classifier of images in [0, 1] that picks the class of the nearest mean image: its hidden
    layer (no activation) scores the ten classes, its head passes the scores on."""
    means = torch.stack([images[labels == c].flatten(1).mean(0) for c in range(10)])
    net = MLPClassifier(in_shape=list(images.shape[1:]), num_classes=10, depth=1, width=10, activation=nn.Identity)
    with torch.no_grad():
        net.stem[0].weight.copy_(means)
        net.stem[0].bias.copy_(-0.5 * means.pow(2).sum(1))
        net.head[0].weight.copy_(torch.eye(10))
        net.head[0].bias.zero_()
    return Classifier(net, [str(c) for c in range(10)], pixels=GREY, optimizer=None)


def test_classifier_distance_is_zero_for_identical_sets_and_grows_with_noise(idx_dir: Path) -> None:
    data = MNISTDataModule(path=str(idx_dir), val_size=50)
    data.setup("fit")
    real, labels = data.images("train"), data.splits["train"][1]
    distance = ClassifierDistance(nearest_mean_classifier(real[:, 0], labels), batch_size=128)
    assert distance.features.num_features == 10  # the input of the last linear layer
    assert distance(real, real) == pytest.approx(0, abs=1e-6)
    torch.manual_seed(0)
    noisy = [distance(real, (real + level * torch.randn_like(real)).clamp(0, 1)) for level in (0.05, 0.2, 0.5)]
    assert 0 < noisy[0] < noisy[1] < noisy[2]
    assert distance.class_share(real, labels) == 1.0  # the fixture's classes are its squares' places
    assert distance.class_share(real, (labels + 1) % 10) == 0.0


def test_interpolation_strip_runs_from_one_test_image_to_the_other() -> None:
    torch.manual_seed(0)
    x = torch.bernoulli(torch.rand(5, 4, 4))
    data = SimpleNamespace(splits={"test": (x, torch.zeros(5))})
    strip = task(VAENet(in_shape=(4, 4), num_classes=10, depth=1, width=8, latent=2)).sample(6, between=[1, 4],
                                                                                             data=lambda: data)
    assert strip.shape == (1, 8, 1, 4, 4)  # one row: image 1, six decodings, image 4
    assert torch.equal(strip[0, 0, 0], x[1]) and torch.equal(strip[0, -1, 0], x[4])
    assert not torch.equal(strip[0, 1], strip[0, 6])  # the decodings move along the line


def test_vae_beta_report_trades_rate_for_distortion(tmp_path: Path) -> None:
    jobs = []
    for beta, (rec, kl, active, frechet) in {0.1: (60.0, 45.0, 50, 30.0), 1: (75.0, 25.0, 20, 12.0),
                                             10: (150.0, 3.0, 3, 40.0)}.items():
        spec = job({"model.beta": beta}, 0.0, config={"model._target_": "dlstudies.tasks.vae.VAE",
                                                      "model.net.latent": 50, "model.eval_samples": 100})
        spec["metrics"] = {"test/rec": rec, "test/kl": kl, "test/nelbo": rec + kl, "test/nll": rec + kl - 3,
                           "test/active_units": active, "test/sample_frechet": frechet,
                           "test/sample_frechet_floor": 1.0}
        jobs.append(spec)
    assert trends(tmp_path, "vae_beta", jobs) == [
        "beta=0.1: rate 45.0 nats, distortion 60.0, -ELBO 105.00, NLL 102.00 (k=100), active units 50, "
        "sample distance 30.00 (floor 1.00)",
        "beta=1: rate 25.0 nats, distortion 75.0, -ELBO 100.00, NLL 97.00 (k=100), active units 20, "
        "sample distance 12.00 (floor 1.00)",
        "beta=10: rate 3.0 nats, distortion 150.0, -ELBO 153.00, NLL 150.00 (k=100), active units 3, "
        "sample distance 40.00 (floor 1.00)",
        "from beta=0.1 to 10: rate 45.0 -> 3.0 nats, distortion 60.0 -> 150.0 nats; lowest NLL 97.00 at beta=1"]


@pytest.mark.slow
def test_vae_beta_smoke_study_then_report(tmp_path: Path, idx_dir: Path) -> None:
    result = run_command(["-m", "+sweep=vae_beta", "study.scale=smoke", "hydra.launcher.n_jobs=1", "logger=csv",
                          f"data.path={idx_dir}", "data.val_size=50"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "vae_beta" / "multiruns").iterdir()
    outputs = report(sweep, use_wandb=False)
    table = pd.read_csv(outputs["csv"])
    assert len(table) == 2 and set(table["status"]) == {"completed"}
    assert (table["test/sample_frechet_floor"] > 0).all() and table["checkpoint"].notna().all()
    assert outputs["png"].stat().st_size > 30_000  # the curves and a grid of samples per beta


def test_latent_map_draws_the_codes_by_class_and_the_decodings_over_the_plane(tmp_path: Path) -> None:
    model = task(VAENet(in_shape=(4, 4), num_classes=10, depth=1, width=8, latent=2))
    x, y = torch.bernoulli(torch.rand(50, 4, 4)), torch.arange(50) % 10
    data = SimpleNamespace(splits={"test": (x, y)}, class_names=[str(c) for c in range(10)])
    LatentMap(tmp_path, "a 2-D code", points=5).on_test_end(SimpleNamespace(datamodule=data, is_global_zero=True),
                                                             model)
    assert (tmp_path / "latent_map.png").stat().st_size > 10_000
