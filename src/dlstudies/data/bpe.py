"""Byte-level BPE tokenizers (GPT-2's kind): trained on a corpus's training split with Hugging Face
``tokenizers``, or read from a ``tokenizer.json`` (GPT-2's own is one), and what a language model
needs from them beyond ids: where a text ends, and how many characters each token stands for."""

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from dlstudies.config.errors import ConfigError

END = "<|endoftext|>"  # GPT-2's end of text: starts an empty prompt, ends a line item
MIN_VOCAB = 257  # the 256 byte tokens and END


def train_bpe(text: str, vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer of ``vocab_size`` tokens learnt from ``text``: END (id 0), the
    256 bytes, then the most frequent merges (``vocab_size`` >= ``MIN_VOCAB``). Encoding then
    decoding gives the text back."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[END], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([text], trainer)
    return tokenizer


def read_tokenizer(path: str | Path, key: str = "data.tokenizer") -> Tokenizer:
    """The byte-level BPE tokenizer saved at ``path``; a one-line error (naming it as ``key``)
    for an unreadable file or a tokenizer of another kind."""
    try:
        tokenizer = Tokenizer.from_file(str(Path(path).expanduser()))
    except Exception as error:  # the Rust parser's message names the JSON problem
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"{key}={path} is not a readable tokenizer.json ({reason})") from None
    return byte_level(tokenizer, f"{key}={path}")


def byte_level(tokenizer: Tokenizer, where: str) -> Tokenizer:
    """``tokenizer`` itself when it is byte-level BPE with END, else a one-line error."""
    kind = json.loads(tokenizer.to_str())
    model, decoder = kind["model"]["type"], (kind.get("decoder") or {}).get("type")
    if model != "BPE" or decoder != "ByteLevel":
        raise ConfigError(f"{where} is a {model} tokenizer with a {decoder} decoder; give a byte-level "
                          "BPE tokenizer (GPT-2's kind)")
    if tokenizer.token_to_id(END) is None:
        raise ConfigError(f"{where} has no {END} token, which starts samples and ends line items")
    return tokenizer


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """The tokenizer's vocabulary in id order (byte-level strings such as 'Ġthe')."""
    return [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]


def _byte_of_symbol() -> dict[str, int]:
    """The byte each symbol of GPT-2's byte-level alphabet stands for: printable bytes stand for
    themselves, the others (controls, space, ...) for chr(256 + n) in byte order. (``tokenizers``
    applies this table but does not expose it.)"""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(others)}


def characters_per_token(tokenizer: Tokenizer) -> list[int]:
    """How many characters of text each token id completes: its bytes that start a UTF-8
    character (a character split over tokens counts once, in the token holding its first byte),
    so the counts of a text's tokens add up to its length. Special tokens (END) count one: the
    line end they stand for, as the newline does for a character model."""
    byte = _byte_of_symbol()
    special = set(tokenizer.get_added_tokens_decoder())
    return [1 if i in special else sum(byte[s] & 0xC0 != 0x80 for s in token)
            for i, token in enumerate(vocabulary(tokenizer))]
