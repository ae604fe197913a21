"""Text generation on a CPU: our GPT with and without its key-value cache, against Hugging Face's
GPT2LMHeadModel.generate (with its own cache) on the same weights, measured in the same run.

    python benchmarks/generation_benchmark.py [--threads 2] [--repeat 3] [--rows 3] [--new 100]

Two GPT-2-family models with random weights (speed does not depend on the weights, and nothing is
downloaded): a tiny one (2 layers, width 64, 256 positions, 1024 tokens) and one of GPT-2's own
shape (12 layers, width 768, 1024 positions, 50257 tokens: 124M parameters). Each is built by
``transformers`` and read into our GPT through ``dlstudies.models.gpt2``. Every method generates
``--rows`` continuations of ``--new`` tokens after a 10-token prompt, sampling with temperature 0.8
among the 50 most likely tokens, as ``python -m dlstudies.sample ... n=3 max_new_tokens=100
temperature=0.8 top_k=50`` does; the fastest of ``--repeat`` interleaved runs counts. Greedy
decoding checks that the cache changes no token. Also prints each model's memory for its weights
in float32 and bfloat16, from its parameter count. Needs ``transformers`` (the dev extra).
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402  (after the path: the benchmark runs from a plain checkout too)
import transformers  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from dlstudies.generation.generate import generate  # noqa: E402
from dlstudies.models.gpt2 import gpt2_options, load_gpt2  # noqa: E402
from dlstudies.models.transformer import TransformerLanguageModel  # noqa: E402

MODELS = {"tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 256, "vocab_size": 1024},
          "gpt2 (124M)": {}}  # transformers' GPT2Config defaults are GPT-2's own sizes


def pair(sizes: dict) -> tuple[transformers.GPT2LMHeadModel, TransformerLanguageModel]:
    """A random GPT-2 and our GPT holding the same weights, both in eval mode."""
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config(**sizes)).eval()
    options = instantiate(gpt2_options(reference.config.to_dict(), "benchmark"))
    net = TransformerLanguageModel(reference.config.vocab_size, **options)
    load_gpt2(net, reference.state_dict(), "benchmark")
    return reference, net.eval()


def seconds(run: Callable[[], torch.Tensor]) -> float:
    """Wall time of one run."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--new", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.rows} rows x {args.new} new tokens after a 10-token prompt, top-k 50, temperature 0.8, "
          f"{args.threads} threads, fastest of {args.repeat}")
    print("| model | parameters | float32 (4 bytes each) | bfloat16 (2 bytes each) | ours, cache | ours, no cache | transformers' generate | cache speed-up | ours / transformers |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, sizes in MODELS.items():
        reference, net = pair(sizes)
        prompt = torch.randint(0, reference.config.vocab_size, (args.rows, 10), generator=torch.Generator().manual_seed(0))
        greedy = [generate(net, prompt, 30, temperature=0, use_cache=c) for c in (True, False)]
        assert torch.equal(*greedy), "the cache changed a greedy token"
        runs = {cache: (lambda cache=cache: generate(net, prompt, args.new, 0.8, 50, use_cache=cache == "cache"))
                for cache in ("cache", "none")}
        runs["hf"] = lambda: reference.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                                temperature=0.8, top_k=50, max_new_tokens=args.new,
                                                min_new_tokens=args.new, pad_token_id=0)
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeat):  # interleaved, so that drift hits all three alike
            for method, run in runs.items():
                best[method] = min(best[method], seconds(run))
        speed = {method: args.rows * args.new / wall for method, wall in best.items()}
        params = sum(p.numel() for p in net.parameters())
        print(f"| {name} | {params / 1e6:.2f}M | {params * 4 / 1e6:.0f} MB | {params * 2 / 1e6:.0f} MB | "
              f"{speed['cache']:.0f} tokens/s | {speed['none']:.0f} tokens/s | {speed['hf']:.0f} tokens/s | "
              f"{speed['cache'] / speed['none']:.2f}x | {speed['cache'] / speed['hf']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
