"""Fine-tuning a BERT encoder (fig 12.11): sequence classification from ``<cls>``, token
classification on every position, optionally from a masked-LM run's encoder, frozen or not."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torchmetrics.classification import MulticlassF1Score

from dlstudies.checkpoint import read_checkpoint
from dlstudies.config.errors import ConfigError
from dlstudies.data.tokens import IGNORE
from dlstudies.tasks.classifier import Classifier

PRETRAINING_TASK = "MaskedLanguageModel"


def encoder_options(encoder: nn.Module) -> dict[str, int | str]:
    """The sizes and position scheme a pre-trained encoder and its fine-tuned copy must share."""
    return {"width": encoder.width, "depth": len(encoder.blocks), "heads": encoder.blocks[0].attn.heads,
            "block_size": encoder.block_size, "positions": encoder.positions}


def vocabulary_difference(there: list[str] | None, here: list[str] | None) -> str | None:
    """How two vocabularies differ, in words; None when they are equal."""
    if there == here:
        return None
    if there is None or here is None or len(there) != len(here):
        count = ["no" if v is None else len(v) for v in (there, here)]
        return f"{count[0]} tokens there, {count[1]} tokens here"
    i = next(i for i, (a, b) in enumerate(zip(there, here)) if a != b)
    return f"token {i} is {there[i]!r} there, {here[i]!r} here"


def load_encoder(encoder: nn.Module, path: str | Path, vocab: list[str] | None) -> None:
    """Copy a masked-LM checkpoint's encoder weights into ``encoder``; a checkpoint of another
    task, vocabulary, size or layout fails in one line that names what differs."""
    checkpoint = read_checkpoint(path, key="model.pretrained")
    meta = checkpoint["dlstudies"]
    task = str(meta["config"]["model"]["_target_"]).rsplit(".", 1)[-1]
    if task != PRETRAINING_TASK:
        raise ConfigError(f"model.pretrained={path} is a checkpoint of {task}, not of masked-LM "
                          "pre-training (model=bert)")
    difference = vocabulary_difference(meta["model_kwargs"].get("vocab"), vocab)
    if difference:
        raise ConfigError(f"model.pretrained={path} was pre-trained on another vocabulary ({difference}); "
                          "fine-tune on data with the same tokens")
    there = {"positions": "start"} | meta["config"]["model"]["net"]  # checkpoints older than positions
    for key, value in encoder_options(encoder).items():
        if there[key] != value:
            raise ConfigError(f"model.pretrained={path} has an encoder of {key} {there[key]}, this model "
                              f"{value}; fine-tune with the pre-training's model.net.{key}")
    prefix = "net.encoder."
    weights = {k.removeprefix(prefix): v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    own = encoder.state_dict()
    for name in sorted(own.keys() | weights.keys()):
        shapes = [tuple(t[name].shape) if name in t else "absent" for t in (weights, own)]
        if shapes[0] != shapes[1]:
            raise ConfigError(f"model.pretrained={path} holds another encoder layout: {name} is "
                              f"{shapes[0]} there, {shapes[1]} here (norm or bias options differ)")
    encoder.load_state_dict(weights)


class EncoderClassifier(Classifier):
    """A Classifier of a net with an ``encoder`` (``BertClassifier``, ``BertTagger``).

    ``pretrained``: a masked-LM checkpoint whose encoder the net starts from (a config may name a
    pre-training experiment instead, e.g. ``names_bert_mlm``: train.py passes its run's
    checkpoint, see ``dlstudies.prerequisites``). The weights are loaded when fitting starts
    (``setup``), not when the module is built, so a fine-tuned checkpoint loads without its
    pre-training files. ``freeze_encoder`` trains the head alone. ``vocab``: the data's tokens,
    which must equal the pre-training's.
    """

    reads = ("labelled text", "labelled arrays")  # tokens, or values cut into patches
    TRAINED_FIRST = ("pretrained",)

    def __init__(self, net: nn.Module, class_names: Sequence[str], vocab: Sequence[str] | None = None,
                 pretrained: str | None = None, freeze_encoder: bool = False, **task_kwargs) -> None:
        super().__init__(net, class_names, **task_kwargs)
        self.vocab = None if vocab is None else list(vocab)
        self.pretrained = pretrained
        self.encoders = [member.encoder for member in getattr(self.net, "members", [self.net])]
        if freeze_encoder:
            for encoder in self.encoders:
                encoder.requires_grad_(False)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.pretrained:
            for encoder in self.encoders:
                load_encoder(encoder, self.pretrained, self.vocab)


class TokenClassifier(EncoderClassifier):
    """Classifies every token (``BertTagger``): cross-entropy, accuracy and macro F1 over the real
    tokens only (padding is labelled ``IGNORE``), per-class accuracy at test."""

    reads = ("tagged text",)
    STUDY_METRICS = (*Classifier.STUDY_METRICS, "val/f1", "test/f1")

    def __init__(self, net: nn.Module, class_names: Sequence[str], **kwargs) -> None:
        super().__init__(net, class_names, **kwargs)
        for metrics in self.eval_metrics.values():
            metrics.add_metrics({"f1": MulticlassF1Score(len(self.class_names), average="macro")})

    def logits_and_labels(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One example per real token: logits (N, C) (an ensemble's (k, N, C)), labels (N,)."""
        x, y = batch
        keep = y != IGNORE
        return self.net(x).flatten(-3, -2)[..., keep.flatten(), :], y[keep]
