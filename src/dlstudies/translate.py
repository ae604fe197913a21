"""Translate a sentence with a trained encoder-decoder:
``python -m dlstudies.translate ckpt_path=... text="three hundred and forty-two" [beam_size=4] [plot=attention.png]``."""

import sys

import hydra
from omegaconf import DictConfig

from dlstudies import CONF_DIR
from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError, print_error
from dlstudies.config.resolvers import register_resolvers
from dlstudies.tasks.seq2seq import Seq2Seq


def translate(module: Seq2Seq, text: str, beam_size: int = 1, plot: str | None = None) -> str:
    """The translation of ``text``; with ``plot``, also its cross-attention map as a PNG there."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam_size={beam_size!r} is not allowed; it must be an integer >= 1")
    src = module.source_ids(text)
    output = module.translate_ids(src, beam_size)[0]
    if plot and module.draw_map(plot, src[0], output) is None:
        raise ConfigError(f"plot={plot}: this model has no attention to draw (model.net.attention=none)")
    return module.text(output.tolist(), module.tgt_vocab)[1]


register_resolvers()  # before Hydra resolves conf/translate.yaml's paths (${dls.root:})


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="translate")
def main(cfg: DictConfig) -> None:
    """Console entry point: translate ``text``; bad input exits 2 with one line."""
    try:
        module, _ = load_module(cfg.ckpt_path)
        if not isinstance(module, Seq2Seq):
            raise ConfigError(f"ckpt_path={cfg.ckpt_path} holds a {type(module).__name__} checkpoint; "
                              "translate needs a translation model (model=seq2seq_rnn or encoder_decoder)")
        print(translate(module, str(cfg.text), cfg.beam_size, cfg.plot))
    except ConfigError as error:
        print_error(error)
        sys.exit(2)


if __name__ == "__main__":
    main()
