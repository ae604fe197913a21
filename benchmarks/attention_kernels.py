"""Why attention runs in float32 under bfloat16 autocast on a CPU: PyTorch's fused attention
kernel (``F.scaled_dot_product_attention``), forward and backward, in float32 and in bfloat16, at
the course's attention shapes.

    python benchmarks/attention_kernels.py [--threads 2] [--repeat 3]

Each row: milliseconds for one causal forward + backward pass of (batch, heads, tokens, head size)
queries, keys and values, the fastest of ``--repeat`` timings of 50 passes each.
"""

import argparse
import time

import torch
import torch.nn.functional as F

# (recipe, batch, heads, tokens, head size): the recipes' attention at their training batch
SHAPES = [("names_transformer", 32, 4, 16, 16), ("shakespeare_gpt_cpu", 12, 4, 64, 32),
          ("shakespeare_gpt (GPU recipe's size)", 64, 6, 256, 64)]


def pass_ms(shape: tuple[int, ...], dtype: torch.dtype, repeat: int, passes: int = 50) -> float:
    """Milliseconds of one causal attention forward + backward pass, fastest of ``repeat``."""
    q, k, v = (torch.randn(*shape, dtype=dtype, requires_grad=True) for _ in range(3))
    grad = torch.randn(*shape, dtype=dtype)

    def step() -> None:
        F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(grad)

    for _ in range(5):
        step()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(passes):
            step()
        best = min(best, (time.perf_counter() - start) / passes)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {args.threads} thread(s), fastest of {args.repeat}\n")
    print("| recipe | batch x heads x tokens x head size | float32 ms | bfloat16 ms | bfloat16 / float32 |")
    print("|---|---|---|---|---|")
    for name, *shape in SHAPES:
        fp32, bf16 = (pass_ms(tuple(shape), dtype, args.repeat) for dtype in (torch.float32, torch.bfloat16))
        print(f"| {name} | {' x '.join(map(str, shape))} | {fp32:.2f} | {bf16:.2f} | {bf16 / fp32:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
