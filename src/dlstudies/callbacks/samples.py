"""What a generative model samples at the end of a run, written as fits the samples: texts to the
summary, the console and a W&B table; images or points to a picture in the run folder and W&B."""

from pathlib import Path

import lightning as L

from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.generation.figures import kind, save_samples
from dlstudies.loggers import log_image, log_table

FIGURE = "samples.png"


class Samples(L.Callback):
    """Calls the task's ``sample(n, seed=seed)`` on the weights the run reports, unless training
    diverged, and keeps what it returned: ``texts`` (a list of strings, also logged as a
    ``samples`` table), or ``figure``, the path of ``samples.png`` in ``folder`` drawn from an
    image or point tensor (see ``dlstudies.generation.figures``) and titled ``title``, also
    logged as a ``samples`` image. Points are drawn over as many true points when the data
    knows its distribution (``reference``, the toy data).

    Those weights are the best checkpoint's once the test has loaded them (``after_test``), else
    the weights at the end of fitting. Tasks without ``sample`` (classifiers) and ``n=0`` sample
    nothing.
    """

    def __init__(self, n: int, seed: int, after_test: bool, folder: str | Path, title: str) -> None:
        self.n, self.seed, self.after_test = n, seed, after_test
        self.folder, self.title = Path(folder), title
        self.texts: list[str] | None = None
        self.figure: Path | None = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.after_test:
            self._sample(trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.after_test:
            self._sample(trainer, pl_module)

    def _sample(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        diverged = any(isinstance(c, StopOnDivergence) and c.diverged for c in trainer.callbacks)
        if not hasattr(pl_module, "sample") or not self.n or diverged:
            return
        samples = pl_module.sample(self.n, seed=self.seed)
        if kind(samples) == "texts":
            self.texts = samples
            log_table(trainer.loggers, "samples", ["sample"], [[text] for text in samples])
        elif trainer.is_global_zero:  # every rank samples alike; one writes
            reference = getattr(trainer.datamodule, "reference", None)  # toy data: true points beneath
            truth = reference(len(samples), self.seed) if reference and kind(samples) == "points" else None
            self.figure = save_samples(samples, self.folder / FIGURE, self.title, truth)
            log_image(trainer.loggers, "samples", self.figure)
