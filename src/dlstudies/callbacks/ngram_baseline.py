"""A classical baseline computed in the same run on the same split: logistic regression on
character n-gram counts (scikit-learn), for text classification data, and a paired test of
whether the run's model and the baseline really differ."""

import lightning as L
import torch
from scipy.stats import binomtest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact McNemar test (two-sided): the chance that two equally accurate classifiers split the
    examples only one of them gets right at least this unevenly."""
    n = only_a + only_b
    return 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)


@torch.no_grad()
def predicted_classes(pl_module: L.LightningModule, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The classifier's predicted class of every row of ``x`` (as its test scores them)."""
    batches = (pl_module.logits_and_labels((rows.to(pl_module.device), None))[0] for rows in x.split(batch_size))
    return torch.cat([pl_module.log_probs(logits).argmax(-1).cpu() for logits in batches])


class NgramBaseline(L.Callback):
    """When the run tests, fits the baseline on the training split (as the run sees it, e.g.
    ``data.num_train`` of it) and logs its test accuracy as ``test/ngram_acc`` beside ``test/acc``,
    how many test examples only the model (``test/only_model_right``) or only the baseline
    (``test/only_ngram_right``) gets right, and McNemar's p-value of that split
    (``test/vs_ngram_p``): a small p says the two accuracies differ beyond chance.

    Features: counts of the character 1- to ``n``-grams of each text, padded with a space at its
    ends so that beginnings and endings count (scikit-learn's ``char_wb``). The data module keeps
    ``texts[split]`` (strings) beside ``splits[split] = (x, y)``, as ``data=names_sex`` does.
    """

    def __init__(self, n: int = 4, max_iter: int = 2000) -> None:
        self.n, self.max_iter = n, max_iter

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        data = trainer.datamodule
        x, y = data.splits["test"]
        labels = y.numpy()
        baseline = make_pipeline(CountVectorizer(analyzer="char_wb", ngram_range=(1, self.n)),
                                 LogisticRegression(max_iter=self.max_iter))
        baseline.fit(data.texts["train"], data.splits["train"][1].numpy())
        ngram_right = baseline.predict(data.texts["test"]) == labels
        model_right = predicted_classes(pl_module, x).numpy() == labels
        only_model, only_ngram = int((model_right & ~ngram_right).sum()), int((ngram_right & ~model_right).sum())
        pl_module.log_dict({"test/ngram_acc": float(ngram_right.mean()), "test/only_model_right": float(only_model),
                            "test/only_ngram_right": float(only_ngram),
                            "test/vs_ngram_p": mcnemar_p(only_model, only_ngram)})
