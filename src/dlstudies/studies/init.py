"""Initialization scale: the std of every layer's output at initialisation (from the diagnostics
callback, the table's ``act_std_init``) per init std, and the error after training."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import errorbar, mean, over_seeds, value_ticks

COLUMNS = {"init_std": "init.std", "depth": "model.net.depth"}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Activation std per layer (geometric mean over seeds) and error vs init std."""
    axes = fig.subplots(1, 2)
    lines = []
    for std, part in table.groupby("init_std"):
        profiles = [p for p in part.get("act_std_init", []) if isinstance(p, list)]
        if profiles:
            profile = np.exp(np.log(np.maximum(np.array(profiles, dtype=float), 1e-38)).mean(0))
            axes[0].plot(range(len(profile)), profile, marker=".", label=f"std {std:g}")
            lines.append(f"init std {std:g}: activation std {profile[0]:.3g} at layer 0 -> "
                         f"{profile[-2]:.3g} at the last hidden layer; test error "
                         f"{100 * mean(part, 'test/err'):.1f}%")
    axes[0].set(yscale="log", xlabel="linear layer (0: the first)", ylabel="std of the layer's output",
                title="activations at initialisation")
    axes[0].legend(fontsize="small")
    errorbar(axes[1], over_seeds(table, ["init_std"], "test/err"), "init_std", "test", scale=100)
    errorbar(axes[1], over_seeds(table, ["init_std"], "trainset/err"), "init_std", "training",
             scale=100, linestyle="--")
    axes[1].set(xscale="log", xlabel="init std (of each weight)", ylabel="error (%)", title="error after training")
    value_ticks(axes[1], table["init_std"])
    axes[1].legend()
    return lines
