"""The metric arithmetic against hand-computed cases and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from facesift.evaluation import metrics
from facesift.evaluation.identification import unknown_people

GENUINE = [0.9, 0.8, 0.6, 0.4]
IMPOSTOR = [0.7, 0.3, 0.2, 0.1]


def test_auc_counts_genuine_beating_impostor():
    # 0.9 and 0.8 beat all 4 impostors, 0.6 and 0.4 beat 3 each: 14 of 16
    assert metrics.auc(GENUINE, IMPOSTOR) == pytest.approx(14 / 16)
    assert metrics.auc([0.5], [0.5]) == pytest.approx(0.5)  # a tie counts half


def test_tar_at_far_by_hand():
    point = metrics.tar_at_far(GENUINE, IMPOSTOR, 0.25)  # one of four impostors may pass: cut just above 0.3
    assert point.tar == pytest.approx(1.0) and point.false_accepts == 1 and 0.3 < point.threshold < 0.4
    point = metrics.tar_at_far([0.9, 0.8, 0.6, 0.25], IMPOSTOR, 0.3)  # still one may pass; 0.25 is below the cut
    assert point.tar == pytest.approx(0.75) and point.false_accepts == 1
    point = metrics.tar_at_far(GENUINE, IMPOSTOR + [0.05] * 6, 0.1)  # 1 of 10 may pass: 0.7
    assert point.tar == pytest.approx(1.0) and point.false_accepts == 1
    assert metrics.tar_at_far(GENUINE, IMPOSTOR, 0.2) is None  # 4 impostors cannot measure 1 in 5


def test_eer_by_hand():
    rate, threshold = metrics.eer(GENUINE, IMPOSTOR)
    assert rate == pytest.approx(0.25)  # at 0.6 < t <= 0.7 one impostor passes and one genuine fails
    assert 0.4 < threshold <= 0.7


def test_best_threshold_and_k_fold_by_hand():
    threshold, accuracy = metrics.best_threshold([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert threshold == pytest.approx(0.5) and accuracy == 1.0
    scores = [0.9, 0.8, 0.2, 0.1, 0.6, 0.4, 0.5, 0.3]
    same = [1, 1, 0, 0, 1, 0, 0, 0]
    same[5] = 1  # fold 1: genuine 0.6, 0.4; impostor 0.5, 0.3
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    accuracies, thresholds = metrics.k_fold_accuracy(scores, same, folds)
    # fold 0 tested with the threshold from fold 1 (0.55, between 0.6 and 0.5): all right
    # fold 1 tested with the threshold from fold 0 (0.5): 0.4 rejected, 0.5 accepted: half right
    assert thresholds == pytest.approx([0.55, 0.5])
    assert accuracies == pytest.approx([1.0, 0.5])


def test_against_scikit_learn_with_ties():
    rng = np.random.default_rng(7)
    genuine = np.round(rng.normal(0.6, 0.15, 700), 2)
    impostor = np.round(rng.normal(0.1, 0.12, 3000), 2)
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(genuine.size), np.zeros(impostor.size)])
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    far, tar, ours = metrics.roc(genuine, impostor)
    assert far == pytest.approx(fpr) and tar == pytest.approx(tpr) and ours[1:] == pytest.approx(thresholds[1:])
    assert metrics.auc(genuine, impostor) == pytest.approx(roc_auc_score(labels, scores))
    for rate in (1e-1, 1e-2, 1e-3):
        assert metrics.tar_at_far(genuine, impostor, rate).tar == pytest.approx(tpr[fpr <= rate].max())
    assert metrics.tar_at_far(genuine, impostor, 1e-4) is None


def test_identification_rates_by_hand():
    best = np.array([
        [0.9, 0.2, 0.1],  # known, person 0 at rank 1
        [0.5, 0.6, 0.1],  # known, person 0 at rank 2
        [0.3, 0.2, 0.8],  # known, person 2 at rank 1
        [0.7, 0.1, 0.1],  # unknown, top 0.7
        [0.1, 0.4, 0.2],  # unknown, top 0.4
    ])
    true = np.array([0, 0, 2, -1, -1])
    rates = metrics.identification_rates(best, true, np.ones(5, bool), ranks=(1, 2), false_positive_rates=(0.5, 0.1))
    assert rates.cmc == pytest.approx({1: 2 / 3, 2: 1.0})
    # FPIR 0.5: one of two unknown probes may pass, so the cut is 0.4; probes 0 (0.9) and 2 (0.8) are found
    assert rates.dir[0.5] == pytest.approx({1: 2 / 3, 2: 1.0}) and rates.thresholds[0.5] > 0.4
    assert rates.dir[0.1] is None  # two unknown probes cannot measure 1 in 10
    no_face = np.array([False, True, True, True, True])
    assert metrics.identification_rates(best, true, no_face, ranks=(1,)).cmc[1] == pytest.approx(1 / 3)


def test_unknown_people_spread_evenly():
    chosen = unknown_people(10, 0.5)
    assert chosen.sum() == 5 and not chosen[:2].all()
    assert unknown_people(7, 0.0).sum() == 0
    with pytest.raises(ValueError):
        unknown_people(3, 1.0)


def test_mcnemar_exact_by_hand_and_against_scipy():
    from scipy.stats import binomtest

    # 1 pair only the first gets right, 9 only the second, 90 both: p = 2 * (C(10,0) + C(10,1)) / 2**10
    first = np.array([True] * 91 + [False] * 9)
    second = np.array([False] + [True] * 99)
    test = metrics.mcnemar(first, second)
    assert (test.only_first, test.only_second) == (1, 9)
    assert test.p_value == pytest.approx(22 / 1024)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.random(300) < 0.9, rng.random(300) < 0.85
        test = metrics.mcnemar(a, b)
        n = test.only_first + test.only_second
        assert test.p_value == pytest.approx(binomtest(test.only_first, n, 0.5).pvalue)
    assert metrics.mcnemar(first, first).p_value == 1.0  # no discordant pairs: no evidence of a difference
    with pytest.raises(ValueError):
        metrics.mcnemar(first, second[:50])
