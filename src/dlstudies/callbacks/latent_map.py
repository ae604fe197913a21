"""The two pictures of a VAE with a 2-D code, drawn after its test (Kingma & Welling 2014, fig. 4)."""

from pathlib import Path

import lightning as L
import torch
from matplotlib.figure import Figure

from dlstudies.files import atomic_path
from dlstudies.generation.figures import image_grid

FIGURE = "latent_map.png"


class LatentMap(L.Callback):
    """Writes ``latent_map.png`` into ``folder``: left, the posterior means of the test images,
    coloured by class; right, the decodings (mean images) of a ``points`` x ``points`` grid of
    codes at the standard normal's quantiles 0.05 ... 0.95 in each dimension (evenly spaced in
    probability, so each cell covers as much of the prior). Titled ``title``."""

    def __init__(self, folder: str | Path, title: str, points: int = 15) -> None:
        self.folder, self.title, self.points = Path(folder), title, points

    @torch.no_grad()
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.net.latent != 2 or not trainer.is_global_zero:
            return
        x, y = trainer.datamodule.splits["test"]
        codes = torch.cat([pl_module.net.encode(pl_module.unit_pixels(batch.to(pl_module.device)))[0].cpu()
                           for batch in x.split(1000)])
        quantiles = torch.linspace(0.05, 0.95, self.points)
        z = torch.distributions.Normal(0.0, 1.0).icdf(quantiles)
        grid = torch.stack(torch.meshgrid(z.flip(0), z, indexing="ij"), -1)  # rows: z2 from high to low
        images = pl_module.images(pl_module.net.decode(grid.reshape(-1, 2).to(pl_module.device))).cpu()
        self.draw(codes, y, images.view(self.points, self.points, *images.shape[1:]), z,
                  trainer.datamodule.class_names)

    def draw(self, codes: torch.Tensor, labels: torch.Tensor, images: torch.Tensor, z: torch.Tensor,
             class_names: list[str]) -> Path:
        """The figure from the test codes (N, 2), their classes, and the decoded grid (P, P, C, H, W)."""
        fig = Figure(figsize=(13, 6), layout="constrained")
        scatter, decoded = fig.subplots(1, 2)
        points = scatter.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7,
                                 vmin=-0.5, vmax=len(class_names) - 0.5, linewidths=0)
        bar = fig.colorbar(points, ax=scatter, ticks=range(len(class_names)))
        bar.ax.set_yticklabels(class_names)
        bar.set_label("class of the test image")
        scatter.set(xlabel="z1 (posterior mean)", ylabel="z2 (posterior mean)",
                    title=f"codes of the {len(codes)} test images")
        scatter.set_aspect("equal", adjustable="datalim")
        decoded.imshow(image_grid(images).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        cell = image_grid(images).shape[0] / self.points
        ticks = [0, self.points // 2, self.points - 1]
        decoded.set_xticks([(i + 0.5) * cell for i in ticks], [f"{z[i]:.2f}" for i in ticks])
        decoded.set_yticks([(i + 0.5) * cell for i in ticks], [f"{z.flip(0)[i]:.2f}" for i in ticks])
        decoded.set(xlabel="z1 (standard normal quantiles 0.05 ... 0.95)", ylabel="z2",
                    title="decodings (mean images) over the code plane")
        fig.suptitle(self.title)
        path = self.folder / FIGURE
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        return path
