import numpy as np

from training.evaluate.metrics import classification_report, confusion_matrix, pr_curve, roc_curve


def test_confusion_and_per_class_scores_by_hand() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 0])
    cm = confusion_matrix(labels, preds)
    assert cm[0].tolist()[:3] == [1, 1, 0] and cm[2, 0] == 1 and cm.sum() == 5
    probs = np.eye(10)[preds] * 0.9 + 0.01
    report = classification_report(labels, probs)
    assert report["accuracy"] == 0.6 and report["errors"] == 2
    c1 = report["per_class"][1]
    assert c1["precision"] == round(2 / 3, 5) and c1["recall"] == 1.0 and c1["f1"] == 0.8
    assert report["per_class"][2]["recall"] == 0.0


def test_roc_and_pr_extremes() -> None:
    positive = np.array([1, 1, 0, 0], bool)
    _, _, auc = roc_curve(np.array([0.9, 0.8, 0.2, 0.1]), positive)
    assert auc == 1.0
    _, _, auc = roc_curve(np.array([0.1, 0.2, 0.8, 0.9]), positive)
    assert auc == 0.0
    _, _, ap = pr_curve(np.array([0.9, 0.1, 0.8, 0.2]), positive)
    assert abs(ap - (1 + 2 / 4) / 2) < 1e-9  # positives ranked 1st and 4th
