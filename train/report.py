"""Pictures of a training run or an evaluation: learning curves, confusion matrix, worst errors."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from augment.images import contact_sheet, save_rgb, staged


@functools.cache
def _pyplot():
    """matplotlib's pyplot, drawing to files only; imported on first use, as it takes half a second."""
    import matplotlib

    matplotlib.use("Agg")  # never open a window, work without a display
    import matplotlib.pyplot

    return matplotlib.pyplot


def _save(figure, path: Path) -> None:
    try:
        with staged(path) as temp_path:
            figure.savefig(temp_path, dpi=110, bbox_inches="tight")
    finally:
        _pyplot().close(figure)


def plot_history(history: dict[str, list[float]], path: Path, phase_starts: list[int] = ()) -> None:
    """Loss (and accuracy, if recorded) per epoch, training against validation; dotted lines where a phase begins."""
    metrics = [metric for metric in ("loss", "accuracy") if history.get(metric)]
    figure, axes = _pyplot().subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + metric)
            if values:
                axis.plot(range(1, len(values) + 1), values, style, label=(prefix or "train_") + metric)
        for start in phase_starts:
            axis.axvline(start + 0.5, color="grey", linestyle=":")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
        axis.grid(alpha=0.3)
    _save(figure, path)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """The confusion matrix as a labelled heat map, counts and row shares written in each cell."""
    matrix = np.asarray(confusion)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axis = _pyplot().subplots(figsize=(1.6 * len(labels) + 2, 1.4 * len(labels) + 1.5))
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for row in range(len(labels)):
        for column in range(len(labels)):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, f"{matrix[row, column]}\n{shares[row, column]:.1%}", ha="center",
                      va="center", color=colour)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    _save(figure, path)


def worst_errors(images: list[np.ndarray], true: np.ndarray, probabilities: np.ndarray, labels: list[str],
                 path: Path, count: int = 36) -> int:
    """A contact sheet of the most confident mistakes, captioned "true -> predicted confidence".

    Returns how many errors there were (the sheet shows at most ``count``); writes nothing if none.
    """
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != true)
    if len(wrong) == 0:
        return 0
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:count]
    captions = [f"{labels[true[i]]}>{labels[predicted[i]]} {probabilities[i, predicted[i]]:.0%}" for i in worst]
    save_rgb(path, contact_sheet([images[i] for i in worst], columns=6, cell=200, captions=captions))
    return len(wrong)
