import numpy as np
import pytest

from train.metrics import classification_report, confusion_matrix, log_loss


def test_confusion_rows_are_true_labels():
    matrix = confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 2)
    assert matrix.tolist() == [[1, 1], [1, 2]]
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0]), np.array([0, 1]), 2)


def test_report_precision_recall_and_undefined_values():
    report = classification_report(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]), ["with_mask", "without_mask"])
    assert report["n"] == 4 and report["accuracy"] == 0.75
    assert report["balanced_accuracy"] == pytest.approx((2 / 3 + 1.0) / 2)  # as if both labels had as many faces
    assert report["per_class"]["with_mask"] == {"precision": 1.0, "recall": 2 / 3, "n": 3}
    assert report["per_class"]["without_mask"] == {"precision": 0.5, "recall": 1.0, "n": 1}
    never_predicted = classification_report(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert never_predicted["per_class"]["b"]["precision"] is None
    absent = classification_report(np.array([0, 0]), np.array([0, 1]), ["a", "b"])
    assert absent["balanced_accuracy"] == 0.5  # "b" has no faces: its recall is not counted
    assert classification_report(np.array([], int), np.array([], int), ["a", "b"])["accuracy"] is None


def test_log_loss_weighs_each_answers_confidence():
    true = np.array([0, 1])
    sure = log_loss(true, np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert sure == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2)
    # Right on the same photos, but less sure: accuracy cannot tell these apart, the log loss can.
    assert log_loss(true, np.array([[0.6, 0.4], [0.4, 0.6]])) > sure
    # A certain wrong answer costs a finite, capped amount rather than infinity.
    assert log_loss(np.array([0]), np.array([[0.0, 1.0]])) == pytest.approx(-np.log(1e-7))
    assert log_loss(np.array([], int), np.zeros((0, 2))) is None
    # A report made from the probabilities carries it; one made from labels alone has none to give.
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert classification_report(true, probabilities.argmax(axis=1), ["a", "b"], probabilities)["log_loss"] == sure
    assert "log_loss" not in classification_report(true, probabilities.argmax(axis=1), ["a", "b"])
    with pytest.raises(ValueError):
        log_loss(np.array([0, 1]), np.array([0.5, 0.5]))
