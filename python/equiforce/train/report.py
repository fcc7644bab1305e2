"""What training shows and leaves behind: a live progress bar and parity plots."""
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


class ProgressBar:
    """One line per epoch, redrawn in place on a terminal (``\\r``) with the running loss, the steps
    per second and the time left in the epoch; elsewhere (logs, CI) only the closing line."""

    def __init__(self, total: int, label: str, stream=None, width: int = 24) -> None:
        self.total, self.label, self.width = max(total, 1), label, width
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last_draw = time.monotonic()
        self.done, self.loss_sum = 0, 0.0

    def update(self, loss: float) -> None:
        self.done += 1
        self.loss_sum += loss
        now = time.monotonic()
        if self.live and (now - self.last_draw > 0.2 or self.done == self.total):
            self.last_draw = now
            self.stream.write("\r" + self._line(now))
            self.stream.flush()

    def _line(self, now: float) -> str:
        filled = int(self.width * self.done / self.total)
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / max(rate, 1e-9)
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                f"loss {self.loss_sum / self.done:.4g}  {rate:.1f} it/s  {left:.0f}s left ")

    def close(self, summary: str) -> None:
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(f"{self.label} {summary}\n")
        self.stream.flush()


def parity_plots(sets: Dict[str, Dict[str, Tuple[np.ndarray, np.ndarray]]], path: Path) -> Optional[Path]:
    """``sets[name] = {"energy_per_atom": (ref, pred), "forces": (ref, pred)}`` -> one PNG with a
    reference-vs-prediction panel per quantity, every set overlaid, MAE in the legend."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[train] matplotlib is not installed: no parity plots (pip install matplotlib)", file=sys.stderr)
        return None
    quantities = [("energy_per_atom", "energy per atom (eV)"), ("forces", "force component (eV/A)")]
    fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 4.6))
    for ax, (key, label) in zip(np.atleast_1d(axes), quantities):
        lo, hi = np.inf, -np.inf
        for name, data in sets.items():
            if key not in data:
                continue
            ref, pred = (np.asarray(a, dtype=np.float64).ravel() for a in data[key])
            mae = np.abs(pred - ref).mean()
            unit = "meV/atom" if key == "energy_per_atom" else "meV/A"
            ax.scatter(ref, pred, s=3, alpha=0.5, label=f"{name}: MAE {1e3 * mae:.2f} {unit}")
            lo, hi = min(lo, ref.min(), pred.min()), max(hi, ref.max(), pred.max())
        if np.isfinite(lo):
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def line_plot(path: Path, series: Sequence[Tuple[str, Sequence[float], Sequence[float], str]], xlabel: str,
              ylabel: str, title: str, log: bool = False) -> Optional[Path]:
    """One PNG of curves ``(label, x, y, matplotlib format)`` (learning curves and the like);
    ``log``: both axes logarithmic."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, x, y, style in series:
        (ax.loglog if log else ax.plot)(x, y, style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
