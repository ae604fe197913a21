"""A classical baseline computed in the same run on the same split: logistic regression on
character n-gram counts (scikit-learn), for text classification data."""

import lightning as L
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


class NgramBaseline(L.Callback):
    """When the run tests, fits the baseline on the training split (as the run sees it, e.g.
    ``data.num_train`` of it) and logs its test accuracy as ``test/ngram_acc`` beside ``test/acc``.

    Features: counts of the character 1- to ``n``-grams of each text, padded with a space at its
    ends so that beginnings and endings count (scikit-learn's ``char_wb``). The data module keeps
    ``texts[split]`` (strings) beside ``splits[split] = (x, y)``, as ``data=names_sex`` does.
    """

    def __init__(self, n: int = 4, max_iter: int = 2000) -> None:
        self.n, self.max_iter = n, max_iter

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        data = trainer.datamodule
        model = make_pipeline(CountVectorizer(analyzer="char_wb", ngram_range=(1, self.n)),
                              LogisticRegression(max_iter=self.max_iter))
        model.fit(data.texts["train"], data.splits["train"][1].numpy())
        pl_module.log("test/ngram_acc", float(model.score(data.texts["test"], data.splits["test"][1].numpy())))
