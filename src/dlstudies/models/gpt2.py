"""GPT-2-family checkpoints in the Hugging Face format, read into our ``TransformerLanguageModel``
(after nanoGPT's ``from_pretrained``): the net's options from the checkpoint's config.json, its
tensors renamed to ours, GPT-2's Conv1D matrices (in, out) transposed to nn.Linear's (out, in)."""

import re

import torch

from dlstudies.config.errors import ConfigError
from dlstudies.models.transformer import TransformerLanguageModel

# Hugging Face activation names -> nn.GELU's ``approximate``: GPT-2 trained with the tanh form
GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh", "gelu": "none"}
# Hugging Face GPT-2 names -> ours, applied in order to each tensor's name
RENAMES = [(r"^transformer\.", ""), (r"^h\.(\d+)\.", r"blocks.\1."), (r"\bln_1\b", "norm_1"),
           (r"\bln_2\b", "norm_2"), (r"^ln_f\b", "norm_f"), (r"\bc_attn\b", "qkv"), (r"\bc_proj\b", "proj"),
           (r"\bc_fc\b", "fc"), (r"^lm_head\b", "head")]
CONV1D = re.compile(r"\.(c_attn|c_proj|c_fc)\.weight$")  # stored (in, out): transposed on reading
BUFFERS = re.compile(r"\.attn\.(masked_)?bias$")  # the causal masks older checkpoints carry


def _not_gpt2(config: dict) -> list[str]:
    """What makes a checkpoint of another family differ from GPT-2, as far as its config says."""
    found = []
    if any(key in config for key in ("rope_theta", "rotary_dim", "rotary_pct", "rope_scaling")):
        found.append("rotary positions")
    if config.get("hidden_act") in ("silu", "swiglu") and "intermediate_size" in config:
        found.append("a SwiGLU feed-forward")
    if "rms_norm_eps" in config:
        found.append("RMSNorm")
    if config.get("num_key_value_heads", config.get("num_attention_heads")) != config.get("num_attention_heads"):
        found.append("grouped-query attention")
    if config.get("alibi"):
        found.append("ALiBi positions")
    return found


def _gpt2_variants(config: dict) -> list[str]:
    """The options of a GPT-2 config that our GPT has no counterpart for."""
    width, inner = config["n_embd"], config.get("n_inner")
    found = [f"activation {config.get('activation_function')}"] if config.get(
        "activation_function", "gelu_new") not in GELU else []
    if inner not in (None, 4 * width):
        found.append(f"a feed-forward of {inner} units (ours: 4 x {width})")
    if config.get("scale_attn_by_inverse_layer_idx"):
        found.append("attention scaled by the inverse layer index")
    if not config.get("scale_attn_weights", True):
        found.append("unscaled attention scores")
    if config.get("add_cross_attention"):
        found.append("cross-attention")
    return found


def gpt2_options(config: dict, where: str) -> dict:
    """``model.net`` options (plain config data) that make our GPT the model of a Hugging Face
    GPT-2-family config.json; a model our GPT cannot hold stops with one line naming what differs
    (``where`` names the checkpoint, as the config does)."""
    family = config.get("model_type")
    if family != "gpt2":
        differences = ", ".join(_not_gpt2(config)) or "another architecture"
        raise ConfigError(f"{where} is a {family} checkpoint ({differences}); model=transformer holds "
                          "GPT-2-family checkpoints (model_type gpt2)")
    variants = _gpt2_variants(config)
    if variants:
        raise ConfigError(f"{where} is a GPT-2 variant our GPT cannot hold: {', '.join(variants)}")
    return {"depth": config["n_layer"], "heads": config["n_head"], "width": config["n_embd"],
            "block_size": config["n_positions"], "bias": True, "post_ln": False,
            "tie_weights": config.get("tie_word_embeddings", True),
            "activation": {"_target_": "torch.nn.GELU", "_partial_": True,
                           "approximate": GELU[config.get("activation_function", "gelu_new")]},
            "norm": {"_target_": "torch.nn.LayerNorm", "_partial_": True,
                     "eps": config.get("layer_norm_epsilon", 1e-5)}}


def gpt2_state_dict(weights: dict[str, torch.Tensor], tie_weights: bool) -> dict[str, torch.Tensor]:
    """A GPT-2 checkpoint's tensors under our GPT's names: Conv1D matrices transposed, causal-mask
    buffers dropped, and the output head the token embedding when the two are tied."""
    ours = {}
    for name, tensor in weights.items():
        if BUFFERS.search(name) or (tie_weights and name.endswith("lm_head.weight")):
            continue
        if CONV1D.search(name):
            tensor = tensor.t()
        for pattern, replacement in RENAMES:
            name = re.sub(pattern, replacement, name)
        ours[name] = tensor
    if tie_weights and "wte.weight" in ours:
        ours["head.weight"] = ours["wte.weight"]
    return ours


def load_gpt2(net: TransformerLanguageModel, weights: dict[str, torch.Tensor], where: str) -> None:
    """Copy a GPT-2 checkpoint's tensors into ``net`` (built from ``gpt2_options``); a tensor that
    is missing, left over or of another shape stops with one line naming it."""
    ours, own = gpt2_state_dict(weights, tie_weights=net.head.weight is net.wte.weight), net.state_dict()
    for name in sorted(own.keys() | ours.keys()):
        shapes = [tuple(t[name].shape) if name in t else "absent" for t in (ours, own)]
        if shapes[0] != shapes[1]:
            raise ConfigError(f"{where} does not fit the GPT its config describes: {name} is {shapes[0]} "
                              f"there, {shapes[1]} here")
    with torch.no_grad():
        for name, tensor in own.items():
            tensor.copy_(ours[name])
