"""Texts a language model generates at the end of a run, for the summary, the console and W&B."""

import lightning as L

from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.loggers import log_table


class SampleTexts(L.Callback):
    """Generates ``n`` texts (seeded) from the weights the run reports, unless training diverged.

    Those are the best checkpoint's weights once the test has loaded them (``after_test``),
    else the weights at the end of fitting. The texts stay in ``texts`` and go to the loggers
    as a ``samples`` table. Modules without ``sample`` (classifiers) and ``n=0`` generate nothing.
    """

    def __init__(self, n: int, seed: int, after_test: bool) -> None:
        self.n, self.seed, self.after_test = n, seed, after_test
        self.texts: list[str] | None = None

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
        self.texts = pl_module.sample(self.n, seed=self.seed)
        log_table(trainer.loggers, "samples", ["sample"], [[text] for text in self.texts])
