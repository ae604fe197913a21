"""Denoising diffusion (Ho et al. 2020; Prince, chapter 18) for any net mapping (z_t, t, labels)
to an output of z_t's shape: points (toy data) and images alike.

Training draws t uniformly from 1..T and noise eps, forms z_t from q(z_t | x) and regresses the
net's output on its target (the noise, the data or v: ``prediction``) by mean squared error, Ho et
al.'s "simple" loss. A class-conditional net learns with the label replaced by "no label" with
probability ``label_dropout`` so that one net also models the data unconditionally, which
classifier-free guidance needs (Ho & Salimans 2022). With ``ema_decay`` Lightning's
``WeightAveraging`` keeps an exponential moving average of the weights; validation, every
checkpoint's ``state_dict``, the test and therefore every sample use the averaged weights (the
raw ones sample visibly worse and are kept in the checkpoint as ``current_model_state``).
"""

import contextlib
import time
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import WeightAveraging
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn
from torchmetrics import MeanMetric

from dlstudies.checkpoint import read_checkpoint
from dlstudies.config.errors import ConfigError
from dlstudies.generation.diffusion import (PREDICTIONS, NoiseModel, NoiseSchedule, check_sampler, guided,
                                           reverse_process, sampling_timesteps)
from dlstudies.metrics.classifier_distance import sample_quality
from dlstudies.metrics.points import against_truth
from dlstudies.tasks.base import Task

STAGES = ("val", "trainset", "test")


class Diffusion(Task):
    """A diffusion model around ``net`` (see the module docstring).

    The forward process: ``schedule`` (linear, cosine, constant with ``beta``) over ``timesteps``
    = T steps. Sampling defaults: ``sampler`` (ddpm, ddim), ``sample_steps`` (None: all T),
    ``eta`` (DDIM), ``guidance`` (the weight w of classifier-free guidance, conditional nets),
    in chunks of ``sample_batch``. ``class_names`` and, for images, ``pixels`` come from the data:
    images reach the net as (intensity in [0, 1] - ``mean``) / ``std``, so samples are clipped to
    that range and mapped back (points have no ``pixels``). At test, data that knows its true distribution
    (toy data) also scores ``eval_samples`` samples against it (``test/sample_distance`` beside
    its noise floor and N(0, I), ``dlstudies.metrics.points``) and times them
    (``test/sample_seconds``, per sample). Images are scored, with ``sample_classifier`` (a
    classifier of the same data: a checkpoint, or an experiment's name that train.py trains first),
    on ``eval_samples`` samples against as many test images (``metrics/classifier_distance.py``:
    ``test/sample_frechet`` beside its noise floor ``test/sample_frechet_floor``, and for a
    conditional net ``test/sample_class_share``, the share classified as the class asked for).
    """

    reads = ("labelled points", "labelled arrays")  # toy points (diffusion_mlp), images (unet)
    STUDY_METRICS = ("best/val/loss", "test/loss", "test/sample_distance", "test/sample_distance_floor",
                     "test/sample_distance_normal", "test/sample_nll", "test/sample_nll_floor",
                     "test/sample_nll_normal", "test/sample_seconds", "test/sample_frechet",
                     "test/sample_frechet_floor", "test/sample_class_share")
    TRAINED_FIRST = ("pretrained", "sample_classifier")

    def __init__(self, net: nn.Module, class_names: Sequence[str] = (), schedule: str = "linear",
                 timesteps: int = 1000, beta: float = 0.01511, prediction: str = "eps", label_dropout: float = 0.1,
                 ema_decay: float | None = 0.999, sampler: str = "ddpm", sample_steps: int | None = None,
                 eta: float = 0.0, guidance: float = 0.0, sample_batch: int = 10000, eval_samples: int = 10000,
                 pixels: Mapping | None = None, pretrained: str | None = None, sample_classifier: str | None = None,
                 **task_kwargs) -> None:
        super().__init__(net, **task_kwargs)
        if prediction not in PREDICTIONS:
            raise ConfigError(f"model.prediction={prediction!r} is not an option; allowed: {', '.join(PREDICTIONS)}")
        if not 0 <= label_dropout < 1:
            raise ConfigError(f"model.label_dropout={label_dropout!r} is not allowed; it must be in [0, 1)")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ConfigError(f"model.ema_decay={ema_decay!r} is not allowed; it must be in (0, 1), or null")
        self.schedule = NoiseSchedule(schedule, timesteps, beta)
        check_sampler(sampler, eta)  # bad sampling defaults fail now, in one line
        sampling_timesteps(timesteps, sample_steps)
        self.class_names, self.num_classes = list(class_names), getattr(net, "num_classes", 0)
        self.prediction, self.label_dropout, self.ema_decay = prediction, label_dropout, ema_decay
        self.defaults = {"sampler": sampler, "steps": sample_steps, "eta": eta, "guidance": guidance}
        self.sample_batch, self.eval_samples = sample_batch, eval_samples
        self.pixels = None if pixels is None else {"mean": float(pixels["mean"]), "std": float(pixels["std"])}
        self.value_range = None if pixels is None else tuple((v - self.pixels["mean"]) / self.pixels["std"] for v in (0, 1))
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in STAGES})
        self.pretrained, self.sample_classifier = pretrained, sample_classifier

    def setup(self, stage: str) -> None:
        """Start from the weights of ``pretrained`` (a checkpoint of this net), when given. They
        load when fitting starts, not when the module is built, so this run's own checkpoints load
        without that file; a weight average starts from them at its first update."""
        if stage != "fit" or not self.pretrained:
            return
        checkpoint = read_checkpoint(self.pretrained, key="model.pretrained")
        weights = checkpoint["state_dict"]
        shapes = {name: tuple(w.shape) for name, w in self.state_dict().items()}
        if {name: tuple(w.shape) for name, w in weights.items()} != shapes:
            raise ConfigError(f"model.pretrained={self.pretrained} holds the weights of another model or size "
                              "than this run builds; use the overrides it was trained with")
        self.load_state_dict(weights)

    def configure_callbacks(self) -> list:
        """The weight average that samples (see the module docstring), when ``ema_decay`` is set:
        updated every step by one foreach kernel over all weights, where Lightning's
        ``EMAWeightAveraging`` runs a few kernels per weight tensor (its ``avg_fn``)."""
        if self.ema_decay is None:
            return []
        return [WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay))]

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator | None = None) -> torch.Tensor:
        """The simple loss on a batch: mean squared error of the output against its target."""
        t = torch.randint(1, self.schedule.steps + 1, (len(x),), device=x.device, generator=generator)
        eps = torch.randn(x.shape, device=x.device, generator=generator)
        output = self.net(self.schedule.noised(x, t, eps), t, labels)
        return F.mse_loss(output, self.schedule.target(self.prediction, x, t, eps))

    def _labels(self, y: torch.Tensor, drop: bool) -> torch.Tensor | None:
        """The labels a conditional net sees (each dropped to "no label" with ``label_dropout`` when
        ``drop``); None for an unconditional net."""
        if not self.num_classes:
            return None
        if drop and self.label_dropout:
            y = y.masked_fill(torch.rand(y.shape, device=y.device) < self.label_dropout, self.num_classes)
        return y

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(x, self._labels(y, drop=True))
        if self.is_logging_step():
            self.log("train/loss", loss, prog_bar=True)
        return self.regularized(loss)

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, stage: str) -> None:
        """The loss at fixed draws of t and noise per batch, so that evaluations compare."""
        x, y = batch
        generator = torch.Generator(x.device).manual_seed(batch_idx)
        self.eval_loss[stage].update(self.loss(x, self._labels(y, drop=False), generator), weight=len(x))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int,
                        dataloader_idx: int = 0) -> None:
        self._evaluate(batch, batch_idx, "val" if dataloader_idx == 0 else "trainset")

    def on_validation_epoch_end(self) -> None:
        for stage in ("val", "trainset"):
            if self.eval_loss[stage].update_called:
                self.log(f"{stage}/loss", self.eval_loss[stage].compute(), prog_bar=True)
                self.eval_loss[stage].reset()

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def on_test_epoch_end(self) -> None:
        metrics = {"test/loss": self.eval_loss["test"].compute()}
        self.eval_loss["test"].reset()
        data = self.trainer.datamodule
        if hasattr(data, "reference") and self.eval_samples:
            labels = None
            if self.num_classes:  # the data's class frequencies, as the test split has them
                y = data.splits["test"][1]
                labels = y[torch.arange(self.eval_samples) % len(y)]
            started = time.perf_counter()
            points = self.sample(self.eval_samples, seed=0, labels=labels)
            metrics["test/sample_seconds"] = (time.perf_counter() - started) / self.eval_samples
            scores = against_truth(points, data.reference, data.distribution.log_prob)
            metrics |= {f"test/sample_{name}": value for name, value in scores.items()}
        if self.sample_classifier and self.eval_samples:
            quality = sample_quality(self.sample, data.images("test")[: self.eval_samples], data.images("train"),
                                     self.sample_classifier, self.num_classes)
            metrics |= {f"test/{name}": value for name, value in quality.items()}
        self.log_dict(metrics)

    def noise_model(self, labels: torch.Tensor | None = None, guidance: float = 0.0) -> NoiseModel:
        """What the samplers call: (z_t, t) -> the noise the net's output implies, whatever it
        predicts; conditioned on ``labels`` (guided with weight ``guidance``) when given."""
        def noise(z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
            return self.schedule.to_eps(self.prediction, self.net(z, t, y), z, t)

        return (lambda z, t: noise(z, t, None)) if labels is None else guided(noise, labels, self.num_classes, guidance)

    def _check_labels(self, labels: torch.Tensor | Sequence[int] | None, n: int) -> torch.Tensor | None:
        """``labels`` as a (n,) tensor on the module's device; one line for labels this model cannot take."""
        if labels is None:
            return None
        labels = torch.as_tensor(labels, dtype=torch.long, device=self.device).reshape(-1)
        if not self.num_classes:
            raise ConfigError("labels= needs a class-conditional model (model.net.conditional=true); "
                              "this one was trained without labels")
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if len(bad):
            raise ConfigError(f"labels={bad[0].item()} is not a class this model was trained on; "
                              f"allowed: 0-{self.num_classes - 1} ({', '.join(self.class_names)})")
        if len(labels) not in (1, n):
            raise ConfigError(f"labels has {len(labels)} entries; give one, or one per sample (n={n})")
        return labels.expand(n)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, labels: torch.Tensor | Sequence[int] | None = None,
               sampler: str | None = None, steps: int | None = None, eta: float | None = None,
               guidance: float | None = None, trajectory: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples: points (n, dims), or images (n, C, H, W) in [0, 1]. A conditional net
        samples the ``labels`` given (one, or one per sample), else the classes in equal blocks, in
        order (100 samples of 10 classes: a grid with one row per class); ``guidance=-1`` samples
        it unconditionally. Sampler options default to the model's. With ``trajectory``, also
        every z visited, (steps + 1, n, *shape), in the net's units."""
        if labels is None and self.num_classes:
            labels = torch.arange(n) * self.num_classes // n
        labels = self._check_labels(labels, n)
        given = {"sampler": sampler, "steps": steps, "eta": eta, "guidance": guidance}
        options = self.defaults | {k: v for k, v in given.items() if v is not None}
        generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        was_training = self.net.training
        self.net.eval()
        shape = tuple(self.net.in_shape)
        outputs = []
        # A run's samples (its callback, its test) take its precision: the net under bf16 autocast
        # with trainer.precision=bf16-mixed (half the time of float32 on a CPU); the steps stay float32.
        precision = self._trainer.precision_plugin.forward_context() if self._trainer else contextlib.nullcontext()
        with precision:
            for start in range(0, n, self.sample_batch):
                count = min(self.sample_batch, n - start)
                z = torch.randn(count, *shape, device=self.device, generator=generator)
                chunk = None if labels is None else labels[start : start + count]
                outputs.append(reverse_process(self.noise_model(chunk, options["guidance"]), self.schedule, z,
                                               options["sampler"], options["steps"], options["eta"],
                                               clip=self.value_range, generator=generator, trajectory=trajectory))
        self.net.train(was_training)
        if trajectory:
            return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs], 1)
        return self.to_data(torch.cat(outputs))

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        """Samples in the contract's units: points as they are; images with a channel axis, in [0, 1]."""
        if self.pixels is None:
            return x
        images = (x * self.pixels["std"] + self.pixels["mean"]).clamp(0, 1)
        return images.unsqueeze(1) if images.dim() == 3 else images
