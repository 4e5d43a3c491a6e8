"""Pictures of a training run: the bpd curve (curve.png in a run's folder)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List


def write_curve(history: List[Dict[str, Any]], path: Path, title: str = "") -> None:
    """Train / test bpd per epoch as a PNG (matplotlib, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ep = [r["epoch"] for r in history]
    ax.plot(ep, [r["train_bpd"] for r in history], marker="o", ms=3, label="train bpd")
    test = [(r["epoch"], r["test_bpd"]) for r in history if r.get("test_bpd") is not None]
    if test:
        ax.plot(*zip(*test), marker="s", ms=3, label="test bpd")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per dimension")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def save_figure(fig, path) -> None:
    """Write a matplotlib figure as a PNG, atomically (nfzoo.safeio), and close it."""
    import io

    import matplotlib.pyplot as plt

    from nfzoo.safeio import atomic_write_bytes

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
