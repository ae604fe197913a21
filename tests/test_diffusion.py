"""Diffusion: the forward process, the samplers against hand-computed steps, the toy data and
its distances, the nets' shapes and the one-line errors."""

import math

import pytest
import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.toy import SHAPES, ToyDataModule
from dlstudies.generation.diffusion import NoiseSchedule, betas, guided, reverse_process, sampling_timesteps
from dlstudies.metrics.points import against_truth, sliced_wasserstein
from test_vae import idx_dir  # noqa: F401  (a fixture: tiny IDX 'digits')


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_forward_marginal_has_the_closed_form_mean_and_variance(kind: str) -> None:
    """Running q(z_t | z_{t-1}) step by step from a fixed x gives z_t with mean sqrt(abar_t) x and
    variance 1 - abar_t (checked on 200k chains), and ``noised`` draws from that same marginal."""
    schedule = NoiseSchedule(kind, 100)
    beta = betas(kind, 100)
    x, n = torch.tensor([1.5, -0.7]), 200_000
    z = x.expand(n, 2).double()
    generator = torch.Generator().manual_seed(0)
    for t in range(1, 31):
        z = (1 - beta[t - 1]).sqrt() * z + beta[t - 1].sqrt() * torch.randn(z.shape, generator=generator, dtype=z.dtype)
    abar = float(schedule.alpha_bar[30])
    assert torch.allclose(z.mean(0), math.sqrt(abar) * x.double(), atol=0.01)
    assert torch.allclose(z.var(0), torch.full((2,), 1 - abar, dtype=z.dtype), rtol=0.02)
    direct = schedule.noised(x.expand(n, 2), torch.full((n,), 30), torch.randn(n, 2, generator=generator))
    assert torch.allclose(direct.mean(0), math.sqrt(abar) * x, atol=0.01)
    assert torch.allclose(direct.var(0), torch.full((2,), 1 - abar), rtol=0.02)


def test_schedules_end_where_they_should() -> None:
    """The notebooks' constant schedule leaves abar_T = 0.218; linear and cosine end near pure noise."""
    assert float(NoiseSchedule("constant", 100, 0.01511).alpha_bar[-1]) == pytest.approx(0.218, abs=0.001)
    for kind in ("linear", "cosine"):
        for steps in (100, 1000):
            assert float(NoiseSchedule(kind, steps).alpha_bar[-1]) < 1e-4


def true_noise_model(schedule: NoiseSchedule, x: torch.Tensor):
    """A model that predicts the noise exactly, knowing the one x every chain came from."""
    def model(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = schedule.alpha_bar[t].view(-1, *[1] * (z.dim() - 1))
        return (z - a.sqrt() * x) / (1 - a).sqrt()
    return model


@pytest.mark.parametrize("steps", [1, 7, 50])
def test_ddim_with_eta_0_is_deterministic_and_inverts_the_forward_process(steps: int) -> None:
    schedule = NoiseSchedule("cosine", 50)
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    model = true_noise_model(schedule, x)
    z_T = schedule.noised(x, torch.full((2,), 50), torch.randn(2, 2, generator=torch.Generator().manual_seed(1)))
    first = reverse_process(model, schedule, z_T, "ddim", steps, eta=0.0, generator=torch.Generator().manual_seed(2))
    again = reverse_process(model, schedule, z_T, "ddim", steps, eta=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)  # no noise enters, whatever the generator
    assert torch.allclose(first, x, atol=1e-4)  # each step lands on q's mean path back to x


def test_ddpm_and_ddim_steps_agree_with_hand_computation() -> None:
    """T = 2, beta = 0.1 and 0.2, a model that always says eps = 0.5, z_2 = 1; the noise each step
    adds is the sampler generator's next draw, redrawn here from a twin generator."""
    schedule = NoiseSchedule("constant", 2, 0.1)
    schedule.alpha_bar = torch.tensor([1.0, 0.9, 0.9 * 0.8])
    z2 = torch.tensor([[1.0]])
    model = lambda z, t: torch.full_like(z, 0.5)  # noqa: E731
    noise = float(torch.randn(1, 1, generator=torch.Generator().manual_seed(4)))
    ddpm = reverse_process(model, schedule, z2, "ddpm", generator=torch.Generator().manual_seed(4), trajectory=True)[1]
    ddim = reverse_process(model, schedule, z2, "ddim", eta=0.5, generator=torch.Generator().manual_seed(4),
                           trajectory=True)[1]
    skipped = reverse_process(model, schedule, z2, "ddpm", steps=1)
    # DDPM (Prince's algorithm 18.2): z_1 = (z_2 - beta_2 / sqrt(1 - abar_2) eps) / sqrt(1 - beta_2) + sqrt(beta_2) noise
    z1 = (1 - 0.2 / math.sqrt(1 - 0.72) * 0.5) / math.sqrt(0.8) + math.sqrt(0.2) * noise
    x = (z1 - 0.1 / math.sqrt(1 - 0.9) * 0.5) / math.sqrt(0.9)  # the last step adds no noise
    assert ddpm.flatten().tolist() == pytest.approx([1.0, z1, x], abs=1e-6)
    # DDIM (Song et al. eq. 12): x0 = (z_2 - sqrt(1 - abar_2) eps) / sqrt(abar_2), sigma from eta
    x0 = (1 - math.sqrt(0.28) * 0.5) / math.sqrt(0.72)
    sigma = 0.5 * math.sqrt((1 - 0.9) / (1 - 0.72) * (1 - 0.72 / 0.9))
    d1 = math.sqrt(0.9) * x0 + math.sqrt(1 - 0.9 - sigma**2) * 0.5 + sigma * noise
    d0 = (d1 - math.sqrt(0.1) * 0.5) / math.sqrt(0.9)
    assert ddim.flatten().tolist() == pytest.approx([1.0, d1, d0], abs=1e-6)
    # one step from T straight to the data: the estimate of x at t = 2
    assert float(skipped) == pytest.approx(x0, abs=1e-6)


def test_guidance_mixes_conditional_and_unconditional_noise() -> None:
    model = lambda z, t, y: z + y.float()[:, None]  # noqa: E731  label 9 stands for "no label"
    mixed = guided(model, torch.tensor([1, 2]), null=9, weight=2.0)
    z = torch.zeros(2, 1)
    assert mixed(z, torch.ones(2, dtype=torch.long)).flatten().tolist() == [3 * 1 - 2 * 9, 3 * 2 - 2 * 9]


def test_sampling_timesteps_are_evenly_spaced_and_distinct() -> None:
    assert sampling_timesteps(100, None) == list(range(100, 0, -1))
    assert sampling_timesteps(100, 5) == [100, 75, 51, 26, 1]
    assert sampling_timesteps(10, 1) == [10]
    for steps in range(1, 101):
        ts = sampling_timesteps(100, steps)
        assert len(set(ts)) == steps and ts[0] == 100 and ts[-1] == (1 if steps > 1 else 100)


def test_distances_are_zero_for_identical_sets_and_grow_with_a_shift() -> None:
    shape = SHAPES["moons"]
    x = shape.sample(4000, 0)[0]
    assert sliced_wasserstein(x, x) == 0.0
    shifted = [sliced_wasserstein(x + torch.tensor([d, 0.0]), x) for d in (0.1, 0.3, 1.0)]
    assert shifted == sorted(shifted) and shifted[0] > 0.02
    one_d = torch.randn(3000, 1, generator=torch.Generator().manual_seed(0))
    from scipy.stats import wasserstein_distance
    assert sliced_wasserstein(one_d + 0.4, one_d * 2) == pytest.approx(
        wasserstein_distance((one_d + 0.4)[:, 0], (one_d * 2)[:, 0]), rel=1e-9)
    scores = against_truth(SHAPES["four_gaussians"].sample(20000, 7)[0],
                           lambda n, seed: SHAPES["four_gaussians"].sample(n, 100 + seed)[0],
                           SHAPES["four_gaussians"].log_prob)
    assert scores["distance"] < 3 * scores["distance_floor"] < scores["distance_normal"]
    assert scores["nll"] == pytest.approx(scores["nll_floor"], abs=0.03) and scores["nll_normal"] > scores["nll"] + 1


def test_toy_data_is_seeded_and_labelled() -> None:
    data = ToyDataModule("eight_gaussians", num_train=500, num_val=50, num_test=50, data_seed=3)
    data.setup()
    again = ToyDataModule("eight_gaussians", num_train=500, num_val=50, num_test=50, data_seed=3)
    again.setup()
    assert torch.equal(data.splits["train"][0], again.splits["train"][0])
    assert not torch.equal(data.splits["val"][0], data.splits["test"][0])
    assert data.model_kwargs()["net"] == {"in_shape": [2], "num_classes": 8}
    assert not torch.equal(data.reference(50, 0), data.reference(50, 1))
    x, y = data.splits["train"]
    assert set(y.tolist()) == set(range(8)) and x.shape == (500, 2)


@pytest.mark.parametrize("bad, message", [
    (lambda: NoiseSchedule("linear", 0), "model.timesteps=0 is not allowed; T must be an integer >= 1"),
    (lambda: NoiseSchedule("quadratic", 10), "model.schedule='quadratic' is not an option; allowed: linear, cosine, constant"),
    (lambda: sampling_timesteps(100, 101), "steps=101 is not allowed; a sampler takes between 1 and T=100 steps"),
    (lambda: ToyDataModule("spiral"), "data.shape='spiral' is not an option; allowed: four_gaussians, moons, "
                                      "eight_gaussians, swiss_roll, circle, checkerboard"),
])
def test_bad_settings_stop_with_one_line(bad, message: str) -> None:
    with pytest.raises(ValueError) as error:
        bad()
    assert str(error.value) == message


@pytest.mark.parametrize("in_shape", [[28, 28], [3, 32, 32]])
@pytest.mark.parametrize("conditional", [False, True])
def test_unet_keeps_the_shape_and_its_output_depends_on_t(in_shape: list[int], conditional: bool) -> None:
    from dlstudies.models.unet import UNet

    torch.manual_seed(0)
    net = UNet(in_shape, num_classes=10, conditional=conditional, depth=3, width=8, blocks=1, heads=2, embed=16)
    torch.nn.init.normal_(net.head[-1].weight)  # the head starts at zero: no output would depend on anything
    z = torch.randn(2, *in_shape)
    labels = torch.tensor([3, 10]) if conditional else None  # 10: "no label"
    out = net(z, torch.tensor([1, 1]), labels)
    assert out.shape == z.shape
    assert not torch.allclose(out, net(z, torch.tensor([500, 500]), labels), atol=1e-4)
    if conditional:
        assert not torch.allclose(out, net(z, torch.tensor([1, 1]), torch.tensor([4, 10])), atol=1e-4)


def test_unet_pads_sizes_that_do_not_halve_evenly() -> None:
    from dlstudies.models.unet import UNet

    net = UNet([28, 28], depth=4, width=8, blocks=1, heads=2, embed=16)  # 28 -> 14 -> 7 -> 4 needs padding to 32
    assert net(torch.randn(3, 28, 28), torch.tensor([1, 2, 3])).shape == (3, 28, 28)


def test_diffusion_mlp_has_tiny_diffusions_size() -> None:
    from dlstudies.models.diffusion_mlp import DiffusionMLP

    net = DiffusionMLP([2])
    assert sum(p.numel() for p in net.parameters()) == 99_074  # tanelp/tiny-diffusion: 3 blocks of 128
    assert net(torch.randn(5, 2), torch.arange(5)).shape == (5, 2)


def tiny_task(conditional: bool):
    from dlstudies.models.diffusion_mlp import DiffusionMLP
    from dlstudies.tasks.diffusion import Diffusion

    net = DiffusionMLP([2], num_classes=2, conditional=conditional, depth=2, width=16, embed=8)
    return Diffusion(net, ["upper moon", "lower moon"], timesteps=20, optimizer=torch.optim.Adam)


def test_labels_outside_what_the_model_learnt_stop_with_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^labels=2 is not a class this model was trained on; "
                                          r"allowed: 0-1 \(upper moon, lower moon\)$"):
        tiny_task(conditional=True).sample(4, labels=[0, 1, 2, 0])
    with pytest.raises(ConfigError, match="^labels= needs a class-conditional model"):
        tiny_task(conditional=False).sample(4, labels=[0])
    with pytest.raises(ConfigError, match="^steps=21 is not allowed; a sampler takes between 1 and T=20 steps$"):
        tiny_task(conditional=False).sample(4, steps=21)
    assert tiny_task(conditional=True).sample(4, seed=0, labels=[1], guidance=2.0, sampler="ddim", steps=5).shape == (4, 2)


def test_a_toy_diffusion_run_learns_and_scores_its_samples(tmp_path) -> None:
    from conftest import make_cfg

    from dlstudies.train import train

    cfg = make_cfg(["model=diffusion_mlp", "data=toy2d", "data.num_train=4000", "data.num_val=500",
                    "data.num_test=500", "model.timesteps=50", "model.prediction=v", "model.eval_samples=1000",
                    "model.ema_decay=0.9",
                    "model.net.width=64", "trainer.max_steps=400", "trainer.val_check_interval=200",
                    "optimizer.lr=3e-3", "logger=csv", "samples=0", "trainer.enable_progress_bar=false"], tmp_path)
    record = train(cfg)
    metrics = record["metrics"]
    assert record["status"] == "completed"
    assert metrics["test/sample_distance"] < 0.4 * metrics["test/sample_distance_normal"]  # learnt the moons
    assert metrics["test/sample_distance_floor"] < metrics["test/sample_distance"]


def test_the_gpu_mnist_recipe_runs_on_a_cpu_and_scores_its_samples_per_class(tmp_path, idx_dir) -> None:
    """experiment=mnist_diffusion's smoke test: its class-conditional U-Net, shrunk, trains a few
    steps on tiny 'digits' and its test scores samples in a frozen classifier's features."""
    from conftest import make_cfg
    from PIL import Image

    from dlstudies.train import train

    tiny = ["logger=none", "trainer.enable_progress_bar=false", f"data.path={idx_dir}", "data.val_size=50"]
    classifier = train(make_cfg(["experiment=mnist_cnn", "model.net.head=avg", "trainer.max_steps=4",
                                 "trainer.val_check_interval=2", "samples=0", *tiny], tmp_path / "cnn"))
    record = train(make_cfg(["experiment=mnist_diffusion", "trainer.accelerator=cpu", "trainer.max_steps=6",
                             "trainer.val_check_interval=3", "data.batch_size=16", "data.train_eval_size=50",
                             "model.net.width=8", "model.net.depth=2", "model.net.blocks=1", "model.net.embed=16",
                             "model.net.heads=2", "model.timesteps=50", "model.sample_steps=4", "model.eval_samples=20",
                             f"model.sample_classifier={classifier['best_ckpt']}", "samples=20", *tiny], tmp_path))
    metrics = record["metrics"]
    assert record["status"] == "completed"
    assert metrics["test/sample_frechet"] > metrics["test/sample_frechet_floor"] > 0
    assert 0 <= metrics["test/sample_class_share"] <= 1
    assert Image.open(record["samples_figure"]).size[0] > 100  # the grid: two rows of the ten classes


@pytest.mark.slow
@pytest.mark.parametrize("study, jobs", [("toy1d_schedules", 3), ("sampling_steps", 4)])
def test_smoke_diffusion_study_then_report(study: str, jobs: int, tmp_path) -> None:
    from conftest import run_command

    from dlstudies.report import report

    result = run_command(["-m", f"+sweep={study}", "study.scale=smoke", "logger=none"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = next((tmp_path / study / "multiruns").iterdir())
    outputs = report(sweep, use_wandb=False)
    lines = outputs["txt"].read_text().splitlines()
    assert lines[0] == f"{study}: {jobs} jobs {jobs} completed"
    assert outputs["png"].stat().st_size > 10_000
    assert all("noise floor" in line for line in lines[1:])
