"""Variational autoencoders (Kingma & Welling 2014; Prince ch. 17): the evidence lower bound, the
importance-weighted bound (Burda et al. 2016), active units and sampling, for the encoder and
decoder of models/vae.py over images in [0, 1].

Every figure is in nats per image: ``rec`` = E_q[-log p(x|z)] (one sample of z), ``kl`` =
KL(q(z|x) || N(0, I)) in closed form, ``nelbo`` = rec + kl (the negative ELBO, an upper bound on
-log p(x)), and on test ``nll`` = -log (1/k sum_i p(x, z_i) / q(z_i|x)) over k = ``eval_samples``
samples of q, the IWAE bound, which tightens towards -log p(x) as k grows (k = 1: the ELBO).
``loss`` is what the run minimises: rec + beta * kl, or with ``train_samples`` = k > 1 the IWAE
bound of k samples (its prior and posterior terms weighted by beta).
"""

import math
from collections.abc import Callable, Mapping, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import ContinuousBernoulli, Normal
from torchmetrics import MeanMetric, Metric

from dlstudies.config.errors import ConfigError
from dlstudies.metrics.classifier_distance import sample_quality
from dlstudies.models.vae import VAENet
from dlstudies.tasks.base import Task

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")
STAGES = ("val", "trainset", "test")
TERMS = ("loss", "rec", "kl", "nelbo")
ACTIVE = 0.01  # Burda et al.'s threshold on Cov_x(E_q[z_u]) for an active unit
CHUNK = 1 << 23  # decoder outputs (samples x images x pixels) held at once by the importance bound


class ActiveUnits(Metric):
    """Burda et al. 2016's active units: latent dimensions u whose posterior mean E_q[z_u | x]
    varies over the data with variance above 0.01 (the others carry no information about x)."""

    def __init__(self, latent: int) -> None:
        super().__init__()
        for name in ("total", "squares"):
            self.add_state(name, torch.zeros(latent, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, means: torch.Tensor) -> None:
        means = means.double()
        self.total += means.sum(0)
        self.squares += means.pow(2).sum(0)
        self.count += len(means)

    def compute(self) -> torch.Tensor:
        variance = self.squares / self.count - (self.total / self.count) ** 2
        return (variance > ACTIVE).sum().float()


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over the last dimension."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(-1)


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor, k: int) -> torch.Tensor:
    """k draws (k, *mean.shape) of z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): a sample of
    q(z|x) through which gradients reach the mean and the variance (the reparameterization trick)."""
    eps = torch.randn(k, *mean.shape, dtype=mean.dtype, device=mean.device)
    return mean + (0.5 * log_var).exp() * eps


class VAE(Task):
    """Trains a ``VAENet`` on images, maximising the (beta-weighted) ELBO or the IWAE bound.

    ``pixels`` comes from the data: 0/1 pixels (``binary``) take the ``bernoulli`` likelihood;
    grey levels (standardised by the data as (intensity - mean) / std, mapped back to [0, 1] here)
    take ``continuous_bernoulli`` (Loaiza-Ganem & Cunningham 2019: the normalised density that
    binary cross-entropy on grey levels is not) or ``gaussian`` with standard deviation ``sigma``.
    Without a ``likelihood``, the first that fits the pixels.
    ``beta`` weighs the KL term (Higgins et al. 2017), reached linearly over the first
    ``kl_warmup`` steps (Sønderby et al. 2016). See the module docstring for the metrics.

    ``sample_classifier``: a classifier of the same data (a checkpoint, or an experiment's name
    that train.py trains first): the test then also measures ``quality_samples`` samples against
    as many test images (metrics/classifier_distance.py: ``test/sample_frechet`` beside its noise
    floor ``test/sample_frechet_floor``, and ``test/sample_class_share`` for conditional nets).
    """

    reads = ("labelled arrays",)  # of those, images: the data must say how its pixels reach the model
    STUDY_METRICS = ("val/nelbo", "test/nll", "test/nelbo", "test/rec", "test/kl", "test/active_units",
                     "test/sample_frechet", "test/sample_frechet_floor")
    TRAINED_FIRST = ("sample_classifier",)

    def __init__(self, net: VAENet, class_names: Sequence[str], pixels: Mapping | None = None, likelihood: str | None = None,
                 sigma: float = 0.1, beta: float = 1.0, kl_warmup: int = 0, train_samples: int = 1,
                 eval_samples: int = 1, sample_classifier: str | None = None, quality_samples: int = 10000,
                 **task_kwargs) -> None:
        super().__init__(net, **task_kwargs)
        if pixels is None:
            raise ConfigError("model=vae models images and this data has no pixels; use data=mnist or data=fashion_mnist")
        likelihood = likelihood or ("bernoulli" if pixels["binary"] else "continuous_bernoulli")  # the data's fit
        if likelihood not in LIKELIHOODS:
            raise ConfigError(f"model.likelihood={likelihood!r} is not allowed; use {', '.join(LIKELIHOODS)}")
        if (likelihood == "bernoulli") != pixels["binary"]:
            raise ConfigError(f"model.likelihood={likelihood} does not fit {'0/1' if pixels['binary'] else 'grey'} "
                              "pixels; use bernoulli with data.binarize=dynamic or static, continuous_bernoulli "
                              "or gaussian with data.binarize=none")
        for key, value, low in (("train_samples", train_samples, 1), ("eval_samples", eval_samples, 1),
                                ("kl_warmup", kl_warmup, 0), ("quality_samples", quality_samples, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"model.{key}={value!r} is not allowed; it must be an integer >= {low}")
        for key, value in (("beta", beta), ("sigma", sigma)):
            if not value > 0:
                raise ConfigError(f"model.{key}={value!r} is not allowed; it must be a number > 0")
        self.class_names, self.pixels, self.likelihood, self.sigma = list(class_names), dict(pixels), likelihood, sigma
        self.beta, self.kl_warmup, self.train_samples, self.eval_samples = beta, kl_warmup, train_samples, eval_samples
        self.sample_classifier, self.quality_samples = sample_classifier, quality_samples
        self.terms = nn.ModuleDict({f"{s}_{t}": MeanMetric() for s in STAGES for t in (*TERMS, "nll")})
        self.active = nn.ModuleDict({s: ActiveUnits(net.latent) for s in STAGES})

    @property
    def sample_classes(self) -> int:
        """The classes a sample can be asked for (``labels=``); 0: not conditional."""
        return self.net.classes

    def unit_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The data's inputs as intensities in [0, 1] (0/1 pixels stay as they are)."""
        return x * self.pixels["std"] + self.pixels["mean"]

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, summed over its pixels, from the decoder's outputs ``out``
        (..., *image shape) and images x (B, *image shape) broadcast against them."""
        if self.likelihood == "bernoulli":
            log_p = -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none")
        elif self.likelihood == "continuous_bernoulli":
            log_p = ContinuousBernoulli(logits=out, validate_args=False).log_prob(x)
        else:
            log_p = Normal(out, self.sigma, validate_args=False).log_prob(x)
        return log_p.flatten(-len(self.net.in_shape)).sum(-1)

    def images(self, out: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) as images (N, C, H, W) in [0, 1]."""
        if self.likelihood == "bernoulli":
            mean = torch.sigmoid(out)
        elif self.likelihood == "continuous_bernoulli":
            mean = ContinuousBernoulli(logits=out, validate_args=False).mean  # not sigmoid(logits)
        else:
            mean = out.clamp(0, 1)
        return mean if mean.dim() == 4 else mean.unsqueeze(1)

    def log_weights(self, x: torch.Tensor, labels: torch.Tensor, z: torch.Tensor, mean: torch.Tensor,
                    log_var: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """log p(x|z) + beta (log p(z) - log q(z|x)) for draws z (k, B, latent): the importance
        weights of the IWAE bound (beta = 1), (k, B)."""
        prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
        posterior = Normal(mean, (0.5 * log_var).exp(), validate_args=False).log_prob(z).sum(-1)
        return self.log_likelihood(self.net.decode(z, labels), x) + beta * (prior - posterior)

    def importance_bound(self, x: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor,
                         k: int, beta: float = 1.0) -> torch.Tensor:
        """-log (1/k sum_i w_i) per image over k draws of q(z|x) = N(mean, exp(log_var)), drawn in
        chunks that bound the memory."""
        chunk, sums = max(1, CHUNK // (len(x) * x[0].numel())), []
        for start in range(0, k, chunk):
            z = reparameterize(mean, log_var, min(chunk, k - start))
            sums.append(self.log_weights(x, labels, z, mean, log_var, beta).logsumexp(0))
        return math.log(k) - torch.stack(sums).logsumexp(0)

    def terms_of(self, x: torch.Tensor, labels: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
        """Per-image rec, kl, nelbo and the objective ``loss`` of one batch, and q's parameters."""
        mean, log_var = self.net.encode(x, labels)
        rec = -self.log_likelihood(self.net.decode(reparameterize(mean, log_var, 1), labels), x)[0]
        kl = gaussian_kl(mean, log_var)
        loss = (rec + beta * kl if self.train_samples == 1
                else self.importance_bound(x, labels, mean, log_var, self.train_samples, beta))
        return {"loss": loss, "rec": rec, "kl": kl, "nelbo": rec + kl, "mean": mean, "log_var": log_var}

    def current_beta(self) -> float:
        """beta, reached linearly over the first ``kl_warmup`` training steps."""
        return self.beta * min(1.0, (self.global_step + 1) / self.kl_warmup) if self.kl_warmup else self.beta

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, labels = batch
        beta = self.current_beta()
        terms = self.terms_of(self.unit_pixels(x), labels, beta)
        if self.is_logging_step():
            logged = {f"train/{t}": terms[t].mean() for t in TERMS}
            self.log_dict(logged | {"train/beta": beta}, prog_bar=True)
        return self.regularized(terms["loss"].mean())

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, labels = batch
        x = self.unit_pixels(x)
        terms = self.terms_of(x, labels, self.beta)
        if stage == "test":
            k = self.eval_samples
            terms["nll"] = terms["nelbo"] if k == 1 else self.importance_bound(x, labels, terms["mean"],
                                                                                 terms["log_var"], k)
        for name in (*TERMS, "nll") if stage == "test" else TERMS:
            self.terms[f"{stage}_{name}"].update(terms[name].mean(), weight=len(x))
        self.active[stage].update(terms["mean"])

    def _log_eval(self, stage: str) -> None:
        names = (*TERMS, "nll") if stage == "test" else TERMS
        metrics = {f"{stage}/{name}": self.terms[f"{stage}_{name}"].compute() for name in names}
        metrics[f"{stage}/active_units"] = self.active[stage].compute()
        for metric in [*(self.terms[f"{stage}_{name}"] for name in names), self.active[stage]]:
            metric.reset()
        self.log_dict(metrics, prog_bar=stage == "val")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int,
                        dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val" if dataloader_idx == 0 else "trainset")

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")
        if self.terms["trainset_loss"].update_called:
            self._log_eval("trainset")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")
        if self.sample_classifier:
            data, n = self.trainer.datamodule, self.quality_samples
            quality = sample_quality(self.sample, data.images("test")[:n], data.images("train"),
                                     self.sample_classifier, self.sample_classes)
            self.log_dict({f"test/{name}": value for name, value in quality.items()})

    def _labels(self, n: int, labels: Sequence[int] | torch.Tensor | None) -> torch.Tensor | None:
        """Class labels for n samples of a conditional net (each class in turn unless given)."""
        if not self.net.classes:
            if labels is not None:
                raise ConfigError("labels= is not allowed: this VAE was not trained conditional on classes")
            return None
        if labels is None:
            return torch.arange(n, device=self.device) % self.net.classes
        labels = torch.as_tensor(labels, device=self.device).long().reshape(-1)
        if len(labels) not in (1, n) or not ((0 <= labels) & (labels < self.net.classes)).all():
            raise ConfigError(f"labels={labels.tolist()} is not allowed; give 1 or {n} classes in 0..{self.net.classes - 1}")
        return labels.expand(n)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, labels: Sequence[int] | None = None,
               between: Sequence[int] | None = None, data: Callable[[], L.LightningDataModule] | None = None
               ) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1]: the means of p(x|z) for codes z ~ N(0, I), of the
        classes ``labels`` for a conditional net. ``between=[i, j]``: instead, one strip
        (1, n + 2, C, H, W) from test image i to test image j: the two inputs at its ends and the
        decodings of n evenly spaced points on the line between their posterior means (``data``
        builds the run's data; ``python -m dlstudies.sample`` passes it)."""
        if between is not None:
            return self._strip(n, between, data)
        generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        z = torch.randn(n, self.net.latent, generator=generator, device=self.device)
        return self.images(self.net.decode(z, self._labels(n, labels)))

    def _strip(self, n: int, between: Sequence[int], data: Callable[[], L.LightningDataModule] | None) -> torch.Tensor:
        """The interpolation strip of ``sample(between=...)``."""
        if self.net.classes:
            raise ConfigError("between= is for VAEs not conditional on classes")
        if data is None:
            raise ConfigError("between= needs the run's test images; sample with python -m dlstudies.sample")
        x = data().splits["test"][0]
        if len(between) != 2 or not all(isinstance(i, int) and 0 <= i < len(x) for i in between):
            raise ConfigError(f"between={list(between)} is not allowed; give two test image numbers in 0..{len(x) - 1}")
        inputs = self.unit_pixels(x[list(between)].to(self.device))
        mean, _ = self.net.encode(inputs)
        weights = torch.linspace(0, 1, n, device=self.device)[:, None]
        decoded = self.images(self.net.decode((1 - weights) * mean[0] + weights * mean[1]))
        ends = inputs.unsqueeze(1) if inputs.dim() == 3 else inputs
        return torch.cat([ends[:1], decoded, ends[1:]]).unsqueeze(0)
