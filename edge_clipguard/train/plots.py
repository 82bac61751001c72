"""PNG of a run's curves: training loss, gradient norms before/after clipping, validation loss."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_path


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(run_dir: str | Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    steps, epochs = _rows(run_dir / "steps.jsonl"), _rows(run_dir / "epochs.jsonl")
    if not steps:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    x = [r["step"] for r in steps]
    for key in ("loss", "score", "heatmap", "size", "offset", "refer"):
        if key in steps[0]:
            axes[0].plot(x, [r.get(key, float("nan")) for r in steps], label=key, lw=1)
    axes[0].set_title("training loss terms")
    axes[0].set_yscale("log")
    for key in ("grad_norm_text", "grad_norm_image", "grad_norm_fusion", "grad_norm_total", "grad_norm_post"):
        axes[1].plot(x, [r.get(key, float("nan")) for r in steps], label=key.removeprefix("grad_norm_"), lw=1)
    clipped = [r["step"] for r in steps if r.get("clipped")]
    axes[1].set_title(f"gradient norms (clipped {len(clipped)}/{len(steps)} steps)")
    axes[1].set_yscale("log")
    if epochs:
        axes[2].plot([r["step"] for r in epochs], [r.get("val_loss") for r in epochs], "o-", label="val_loss")
    axes[2].set_title("validation loss")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = run_dir / "curves.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out
