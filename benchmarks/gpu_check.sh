#!/usr/bin/env bash
# The GPU check: one command on a machine with a CUDA GPU, one table (checks 1-3 under 10 minutes on
# one GPU; check 4 trains a U-Net for 20000 steps on top).
#   1. experiment=shakespeare_gpt (nanoGPT's shakespeare_char GPU recipe, 5000 steps, bf16): wall
#      time, validation loss at its end (nanoGPT: 1.47), tokens per second and model FLOPs
#      utilisation (nanoGPT's estimate: 6N + 12 L H Q T FLOPs per token, over the GPU's peak bf16).
#   2. the depth study at default scale (40 small MLPs) on one GPU, with 1 and with 8 jobs per GPU
#      (jobs_per_gpu=8; goal: under 2 minutes): wall time, the most jobs that trained on it at once.
#   3. the l2 study, one job per GPU: which GPUs its jobs held, how many ran at once, none shared.
#   4. experiment=mnist_diffusion (the class-conditional U-Net's GPU recipe, bf16): wall time, the
#      share of samples classified as the digit asked for (goal 90%), the Fréchet distance in
#      mnist_cnn's features beside its noise floor.
#
#   benchmarks/gpu_check.sh [--data PATH/tinyshakespeare.txt] [--mnist DIR] [--peak-tflops N] [--out DIR]
#
# --data: default ../shared/data/ beside the checkout, else data/ (else downloaded, when online).
# --mnist: MNIST's IDX files; default ../shared/data/mnist, else data/mnist (else downloaded).
# --peak-tflops: the GPU's dense bf16 peak; known from the name for A100, H100, H200, L4, L40S.
# PYTHON=.venv/bin/python picks the interpreter. Runs log to CSV only (no W&B).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DATA="" MNIST="" PEAK="" OUT="outputs/gpu_check/$(date +%Y-%m-%d_%H-%M-%S)"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --mnist) MNIST=$2; shift 2 ;;
    --peak-tflops) PEAK=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "gpu_check: unknown argument $1; allowed: --data PATH, --mnist DIR, --peak-tflops N, --out DIR" >&2; exit 2 ;;
  esac
done

"$PYTHON" - <<'EOF' || exit 1
import sys
import torch
if not torch.cuda.is_available():
    reason = "this PyTorch is a CPU build" if torch.version.cuda is None else "PyTorch sees no CUDA GPU"
    sys.exit(f"gpu_check: no GPU: {reason} (torch {torch.__version__}); run it on a machine with an NVIDIA GPU")
EOF

if [ -z "$DATA" ]; then
  for candidate in ../shared/data/tinyshakespeare.txt data/tinyshakespeare.txt; do
    [ -f "$candidate" ] && DATA=$candidate && break
  done
fi
if [ -z "$MNIST" ]; then
  for candidate in ../shared/data/mnist data/mnist; do
    [ -d "$candidate" ] && MNIST=$(cd "$candidate" && pwd) && break
  done
fi
MNIST_ARGS=()
[ -n "$MNIST" ] && MNIST_ARGS=("data.path=$MNIST")
DATA_ARGS=()
if [ -n "$DATA" ]; then
  [ -f "$DATA" ] || { echo "gpu_check: --data $DATA is not a file" >&2; exit 2; }
  DATA_ARGS=("data.path=$DATA")
fi
mkdir -p "$OUT"

# run NAME ARGS...: python train.py ARGS in $OUT/NAME, its output in $OUT/NAME.log, wall time in $OUT/NAME.wall
run() {
  local name=$1 start
  shift
  echo "gpu_check: $name ($OUT/$name.log)" >&2
  start=$(date +%s.%N)
  if ! "$PYTHON" train.py "$@" logger=csv paths.log_dir="$OUT/$name" > "$OUT/$name.log" 2>&1; then
    tail -n 20 "$OUT/$name.log" >&2
    echo "gpu_check: $name failed; its output: $OUT/$name.log" >&2
    exit 1
  fi
  awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { print end - start }' > "$OUT/$name.wall"
}

# Validation once, at the last step (the recipe's every 250 steps would count in the throughput).
run shakespeare_gpt experiment=shakespeare_gpt "${DATA_ARGS[@]}" trainer.val_check_interval=5000 \
  test=false samples=0 trainer.enable_progress_bar=false
ONE_GPU=${CUDA_VISIBLE_DEVICES:-0}
ONE_GPU=${ONE_GPU%%,*}  # the first visible GPU
CUDA_VISIBLE_DEVICES=$ONE_GPU run depth_1_per_gpu -m +sweep=depth_vs_performance trainer.accelerator=gpu
CUDA_VISIBLE_DEVICES=$ONE_GPU run depth_8_per_gpu -m +sweep=depth_vs_performance trainer.accelerator=gpu jobs_per_gpu=8
run l2 -m +sweep=l2 trainer.accelerator=gpu
run mnist_diffusion experiment=mnist_diffusion "${MNIST_ARGS[@]}" trainer.enable_progress_bar=false

"$PYTHON" - "$OUT" "$PEAK" <<'EOF'
"""The table: figures from each run's summary.json and resolved config, wall times from the script."""
import itertools
import json
import sys
from pathlib import Path

import torch
import yaml

out, peak = Path(sys.argv[1]), sys.argv[2]
name, count = torch.cuda.get_device_name(0), torch.cuda.device_count()
# Dense bf16 peaks from the vendors' data sheets (no sparsity), longest name first.
PEAKS = {"H100 PCIe": 756, "H100 NVL": 835, "GH200": 989, "H200": 989, "H100": 989, "A100": 312,
         "L40S": 362, "L4": 121}
peak_tflops = float(peak) if peak else next((v for k, v in PEAKS.items() if k in name), None)


def wall(run: str) -> float:
    return float((out / f"{run}.wall").read_text())


def summaries(run: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / run).rglob("summary.json"))]


(gpt,) = summaries("shakespeare_gpt")
cfg = yaml.safe_load((Path(gpt["output_dir"]) / ".hydra" / "config.yaml").read_text())
net, data = cfg["model"]["net"], cfg["data"]
layers, heads, width = (net.get(k, net.get(alias)) for k, alias in
                        (("n_layer", "depth"), ("n_head", "heads"), ("n_embd", "width")))
block = data["block_size"]
tokens_per_s = gpt["steps"] * data["batch_size"] * block / gpt["wall_time_s"]
# nanoGPT's estimate_mfu: non-embedding parameters (all but the position table), plus attention.
flops_per_token = 6 * (gpt["n_params"] - block * width) + 12 * layers * heads * (width // heads) * block
mfu = (f"{tokens_per_s * flops_per_token / (peak_tflops * 1e12):.1%} of {peak_tflops:g} TFLOPS"
       if peak_tflops else "unknown peak: pass --peak-tflops")

rows = [("shakespeare_gpt", f"{wall('shakespeare_gpt'):.0f} s",
         f"val loss {gpt['metrics']['val/loss']:.3f} after {gpt['steps']} steps; {tokens_per_s / 1e3:.0f}k tokens/s "
         f"over its {gpt['wall_time_s']:.0f} s job (build, fit, one validation); MFU {mfu}", "nanoGPT: val 1.47")]


def most_at_once(jobs: list[dict]) -> int:
    """The most jobs that trained at the same moment."""
    return max((sum(s["started"] <= t["started"] < s["ended"] for s in jobs) for t in jobs), default=0)


for slots in (1, 8):
    run = f"depth_{slots}_per_gpu"
    depth = summaries(run)
    done = sum(s["status"] in ("completed", "diverged") for s in depth)
    gpus = sorted({g for s in depth for g in s.get("gpus") or []})
    rows.append((f"depth_vs_performance, one GPU, jobs_per_gpu={slots}", f"{wall(run):.0f} s",
                 f"{done}/{len(depth)} jobs finished on GPU {', '.join(gpus)}; up to {most_at_once(depth)} at once",
                 f"at most {slots} at once" + ("; under 120 s" if slots > 1 else "")))

l2 = summaries("l2")
held = [(g, s["started"], s["ended"]) for s in l2 for g in s.get("gpus") or []]
shared = any(a[0] == b[0] and a[1] < b[2] and b[1] < a[2] for a, b in itertools.combinations(held, 2))
rows.append(("l2 (one job per GPU)", f"{wall('l2'):.0f} s",
             f"{len(l2)} jobs on GPUs {', '.join(sorted({g for g, _, _ in held}))}; up to {most_at_once(l2)} at once; "
             f"{'a GPU was SHARED' if shared else 'no GPU shared'}", f"{count} at once"))

(diffusion,) = [s for s in summaries("mnist_diffusion") if "pretrained" not in s["output_dir"]]  # not mnist_cnn's
m = diffusion["metrics"]
rows.append(("mnist_diffusion", f"{wall('mnist_diffusion'):.0f} s",
             f"{m['test/sample_class_share']:.1%} of samples classified as the digit asked for; Fréchet distance "
             f"{m['test/sample_frechet']:.1f} (noise floor {m['test/sample_frechet_floor']:.1f}) after "
             f"{diffusion['steps']} steps in {diffusion['wall_time_s']:.0f} s", "class share >= 90%"))

print(f"\n{name} x {count}, torch {torch.__version__}; runs in {out}\n")
print("| check | wall | result | reference |\n|---|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
EOF
