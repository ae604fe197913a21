"""After testing: how close a generative model's images come to the test images, offline."""

import lightning as L
import torch

from dlstudies.metrics.classifier_distance import ClassifierDistance


class SampleQuality(L.Callback):
    """Logs, with the test metrics, the Fréchet distance in a frozen classifier's features
    (metrics/classifier_distance.py) between ``n`` samples and ``n`` test images
    (``test/sample_frechet``), beside its noise floor: ``n`` training images against the same
    test images (``test/sample_frechet_floor``). A task that samples by class (``sample_classes``
    > 0) is asked for each class in turn, and ``test/sample_class_share`` is the share of samples
    the classifier assigns to the class asked for.

    ``classifier``: the checkpoint of a classifier of the same data; the data module gives the
    real images in [0, 1] (``images(split)``); samples come in batches of 1000, seeded.
    """

    def __init__(self, classifier: str, n: int = 10000, seed: int = 0) -> None:
        self.classifier, self.n, self.seed = classifier, n, seed

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        distance = ClassifierDistance.from_checkpoint(self.classifier)
        distance.features.to(pl_module.device)
        data = trainer.datamodule
        test, held_out = data.images("test")[: self.n], data.images("train")[: self.n]
        classes = getattr(pl_module, "sample_classes", 0)
        labels = torch.arange(len(test)) % classes if classes else None
        samples = torch.cat([pl_module.sample(len(part), seed=self.seed + i, **({"labels": part % classes} if classes else {}))
                             for i, part in enumerate(torch.arange(len(test)).split(1000))])
        metrics = {"test/sample_frechet": distance(samples, test), "test/sample_frechet_floor": distance(held_out, test)}
        if classes:
            metrics["test/sample_class_share"] = distance.class_share(samples, labels)
        pl_module.log_dict(metrics)
