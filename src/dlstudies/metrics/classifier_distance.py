"""The Fréchet distance between two sets of images in the features of a frozen classifier of our
own, the offline stand-in for FID, and the share of images a classifier assigns to given classes.

FID (Heusel et al. 2017) fits a Gaussian to each set's Inception-v3 features and measures
||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)). Inception's weights cannot be downloaded
here, and ImageNet features say little about 28x28 digits anyway, so the features are those of a
classifier trained on the same data (experiment=mnist_cnn or fashion_mnist_cnn): the input of its
last linear layer. The formula and its computation are torchmetrics' ``FrechetInceptionDistance``
with that classifier as ``feature``; the values are not comparable with published FIDs, only with
each other and with the noise floor: the same distance between two sets of real images of the
same size (it is not 0, since each set's mean and covariance are estimates).

    quality = ClassifierDistance.from_checkpoint("outputs/.../mnist_cnn/checkpoints/best.ckpt")
    quality(samples, test_images)          # images (N, C, H, W) or (N, H, W) in [0, 1]
    quality(train_images, test_images)     # its noise floor, at the same N
    quality.class_share(samples, labels)   # class-conditional samples: share classified as asked

``sample_quality`` does all three for a generative task's test.
"""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError


class ClassifierFeatures(nn.Module):
    """A trained image classifier as a frozen feature extractor: images in [0, 1] -> the input of
    its last linear layer. The images are standardised as the classifier's training data was."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        pixels = getattr(classifier, "pixels", None)
        if pixels is None:
            raise ConfigError("the feature classifier does not record how its images were standardised "
                              "(a classifier of image data trained with this version does)")
        self.net, self.mean, self.std = classifier.net, pixels["mean"], pixels["std"]
        self.head = [m for m in self.net.modules() if isinstance(m, nn.Linear)][-1]
        self.num_features = self.head.in_features  # read by torchmetrics instead of a trial forward
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "ClassifierFeatures":
        """Always in evaluation mode: batch norm uses the running statistics it was trained with."""
        return super().train(False)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) or (N, H, W) in [0, 1] as the classifier reads them (one channel dropped)."""
        images = images[:, 0] if images.dim() == 4 and images.shape[1] == 1 else images
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda module, args: features.append(args[0]))
        try:
            self.net(self.inputs(images))
        finally:
            hook.remove()
        return features[0].flatten(1)

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """The classes (N,) the classifier assigns to images in [0, 1]."""
        return self.net(self.inputs(images)).argmax(-1)


class ClassifierDistance:
    """Fréchet distance between image sets in ``ClassifierFeatures`` (see the module docstring),
    features computed ``batch_size`` images at a time."""

    def __init__(self, classifier: nn.Module, batch_size: int = 1000) -> None:
        self.features, self.batch_size = ClassifierFeatures(classifier), batch_size

    @classmethod
    def from_checkpoint(cls, path: str | Path, batch_size: int = 1000) -> "ClassifierDistance":
        """The distance in the features of the classifier saved at ``path`` (a dlstudies checkpoint)."""
        module, _ = load_module(path)
        return cls(module, batch_size)

    @torch.no_grad()
    def __call__(self, images_a: torch.Tensor, images_b: torch.Tensor) -> float:
        """The Fréchet distance between the two sets' feature Gaussians (0 for identical sets)."""
        device = self.features.head.weight.device
        metric = FrechetInceptionDistance(feature=self.features, normalize=True).to(device)
        for images, real in ((images_a, True), (images_b, False)):
            for batch in images.split(self.batch_size):
                metric.update(batch.to(device), real=real)
        return float(metric.compute())

    @torch.no_grad()
    def class_share(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """The share of ``images`` that the classifier assigns to ``labels`` (N,), the classes they
        were generated for."""
        device = self.features.head.weight.device
        predicted = torch.cat([self.features.classify(batch.to(device)) for batch in images.split(self.batch_size)])
        return float((predicted == labels.to(device)).float().mean())


def sample_quality(sample: Callable[..., torch.Tensor], real: torch.Tensor, held_out: torch.Tensor,
                   classifier: str | Path, classes: int = 0, seed: int = 0, batch: int = 1000) -> dict[str, float]:
    """How close a generative model's images come to ``real`` ones (N, C, H, W) in [0, 1], for a
    task's test: ``sample_frechet``, the distance between N samples and ``real``, beside
    ``sample_frechet_floor``, that of N other real images (``held_out``, e.g. training images) to
    the same ``real`` ones. ``sample(n, seed=..., labels=...)`` draws images in [0, 1] (``batch``
    at a time, seeded from ``seed``); with ``classes`` > 0 it is asked for each class in turn and
    ``sample_class_share`` is the share of samples the classifier assigns to the class asked for."""
    distance = ClassifierDistance.from_checkpoint(classifier)
    parts = torch.arange(len(real)).split(batch)
    samples = torch.cat([sample(len(part), seed=seed + i, **({"labels": part % classes} if classes else {}))
                         for i, part in enumerate(parts)])
    distance.features.to(samples.device)
    metrics = {"sample_frechet": distance(samples, real), "sample_frechet_floor": distance(held_out[: len(real)], real)}
    if classes:
        metrics["sample_class_share"] = distance.class_share(samples, torch.arange(len(real)) % classes)
    return metrics
