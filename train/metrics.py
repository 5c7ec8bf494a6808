"""Classification metrics from label indices: confusion matrix, accuracy, per-class precision and
recall; and, from predicted probabilities, the log loss."""

from __future__ import annotations

import numpy as np


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts; rows are true labels, columns predicted ones."""
    true, predicted = np.asarray(true, np.int64), np.asarray(predicted, np.int64)
    if true.shape != predicted.shape:
        raise ValueError(f"{true.shape} true labels but {predicted.shape} predictions")
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def classification_report(true: np.ndarray, predicted: np.ndarray, labels: list[str],
                          probabilities: np.ndarray | None = None) -> dict:
    """``n``, ``accuracy``, ``balanced_accuracy`` (the mean recall of the labels present: what
    accuracy would be with as many faces of each), ``labels``, ``confusion`` (rows = true),
    ``per_class`` precision/recall/n and, given the ``probabilities`` (n, classes) the predictions
    came from, ``log_loss``.

    A precision or recall with nothing to divide by is ``None`` rather than a made-up 0 or 1.
    """
    matrix = confusion_matrix(true, predicted, len(labels))
    total = int(matrix.sum())
    per_class = {}
    for index, label in enumerate(labels):
        hits, actual, claimed = matrix[index, index], matrix[index].sum(), matrix[:, index].sum()
        per_class[label] = {
            "precision": float(hits / claimed) if claimed else None,
            "recall": float(hits / actual) if actual else None,
            "n": int(actual),
        }
    report = {
        "n": total,
        "accuracy": float(np.trace(matrix) / total) if total else None,
        "balanced_accuracy": (float(np.mean([v["recall"] for v in per_class.values() if v["recall"] is not None]))
                              if total else None),
        "labels": list(labels),
        "confusion": matrix.tolist(),
        "per_class": per_class,
    }
    if probabilities is not None:
        report["log_loss"] = log_loss(true, probabilities)
    return report


# Probabilities are clipped here before the log, so one confidently wrong answer costs at most -log(1e-7) = 16.1.
SMALLEST_PROBABILITY = 1e-7


def log_loss(true: np.ndarray, probabilities: np.ndarray) -> float | None:
    """The mean negative log of the probability given to the true label (natural log; lower is better).

    ``true`` (n,) label indices, ``probabilities`` (n, classes) rows summing to 1. Unlike accuracy it
    moves with every answer's confidence, so it tells apart two classifiers that are right on the same
    photos; ``None`` for no answers.
    """
    true, probabilities = np.asarray(true, np.int64), np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or len(probabilities) != len(true):
        raise ValueError(f"{true.shape} true labels but probabilities of shape {probabilities.shape}")
    if not len(true):
        return None
    given = probabilities[np.arange(len(true)), true]
    return float(-np.log(np.clip(given, SMALLEST_PROBABILITY, 1.0)).mean())
