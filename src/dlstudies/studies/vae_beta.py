"""The weight of the KL term (beta-VAE, Higgins et al. 2017; Alemi et al. 2018's rate-distortion
view): rate (KL, nats) against distortion (reconstruction, nats), the test NLL, the active units,
the offline sample distance beside its noise floor, and a grid of samples per beta."""

from pathlib import Path

import pandas as pd
import torch
from matplotlib.figure import Figure

from dlstudies.checkpoint import load_module
from dlstudies.generation.figures import image_grid
from dlstudies.studies.figures import errorbar, over_seeds, swept_axes

COLUMNS = {"beta": "model.beta", "latent": "model.net.latent", "eval_samples": "model.eval_samples"}
VALUES = {"rec": "test/rec", "kl": "test/kl", "nll": "test/nll", "nelbo": "test/nelbo",
          "active": "test/active_units", "frechet": "test/sample_frechet", "floor": "test/sample_frechet_floor"}
GRID = 36  # samples drawn per beta for the figure (seed 0)


def job_values(job: Path) -> dict:
    """The job's best checkpoint, whose samples the figure shows (once it exists)."""
    checkpoint = job / "checkpoints" / "best.ckpt"
    return {"checkpoint": str(checkpoint) if checkpoint.is_file() else None}


def samples(checkpoint: str) -> torch.Tensor:
    """``GRID`` samples (seed 0) of the VAE saved at ``checkpoint``, as one grid picture."""
    module, _ = load_module(checkpoint)
    return image_grid(module.sample(GRID, seed=0)).squeeze(-1)


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Top: rate-distortion, NLL, active units, sample distance against beta; below: samples."""
    stats = {name: over_seeds(table, ["beta"], key) for name, key in VALUES.items()}
    merged = pd.DataFrame({"beta": stats["rec"]["beta"]} | {name: s["mean"].to_numpy() for name, s in stats.items()})
    fig.set_size_inches(14, 7.5)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 1])
    rate, nll, active, distance = top.subplots(1, 4)

    rate.plot(merged["kl"], merged["rec"], marker="o")
    for row in merged.itertuples():
        rate.annotate(f"beta={row.beta:g}", (row.kl, row.rec), textcoords="offset points", xytext=(4, 4), fontsize=8)
    rate.set(xlabel="rate: KL(q(z|x) || p(z)) (nats per image)", ylabel="distortion: E_q[-log p(x|z)] (nats)",
             title="rate against distortion (test)")
    errorbar(nll, stats["nelbo"], "beta", "-ELBO")
    k = int(table["eval_samples"].max())
    errorbar(nll, stats["nll"], "beta", f"NLL (IWAE bound, k={k})")
    errorbar(active, stats["active"], "beta", f"active units (of {int(table['latent'].max())})")
    errorbar(distance, stats["frechet"], "beta", "samples vs test images")
    errorbar(distance, stats["floor"], "beta", "noise floor: training vs test images", linestyle="--")
    swept_axes([nll, active, distance], ("test NLL and -ELBO", "active units (Burda et al.)", "sample distance"),
               ("nats per image", "latent dimensions with Cov_x E_q[z] > 0.01",
                "Fréchet distance in mnist_cnn's features"), table["beta"], "beta (weight of the KL term)")

    grids = table.dropna(subset=["checkpoint"]).sort_values("beta").drop_duplicates("beta")
    for ax, row in zip(bottom.subplots(1, max(len(grids), 1), squeeze=False)[0], grids.itertuples()):
        ax.imshow(samples(row.checkpoint).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"beta={row.beta:g}: samples (seed 0)", fontsize=9)
        ax.set_axis_off()

    lines = [f"beta={r.beta:g}: rate {r.kl:.1f} nats, distortion {r.rec:.1f}, -ELBO {r.nelbo:.2f}, NLL {r.nll:.2f} "
             f"(k={k}), active units {r.active:.0f}, sample distance {r.frechet:.2f} (floor {r.floor:.2f})"
             for r in merged.itertuples()]
    low, high = merged.iloc[0], merged.iloc[-1]
    best = merged.loc[merged["nll"].idxmin()]
    lines.append(f"from beta={low.beta:g} to {high.beta:g}: rate {low.kl:.1f} -> {high.kl:.1f} nats, distortion "
                 f"{low.rec:.1f} -> {high.rec:.1f} nats; lowest NLL {best.nll:.2f} at beta={best.beta:g}")
    return lines
