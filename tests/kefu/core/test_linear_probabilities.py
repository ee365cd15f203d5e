"""The served heads' probabilities are scikit-learn's, for every kind of logistic regression kefu fits."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from kefu.core import sklearn_io
from kefu.core.linear_probabilities import LinearProbabilities

RNG = np.random.default_rng(7)


def _data(n_classes, n=120, d=16):
    X = RNG.normal(size=(n, d))
    y = RNG.integers(0, n_classes, size=n)
    X[np.arange(n), y % d] += 3.0  # learnable
    return X, y


@pytest.mark.parametrize("n_classes, options", [
    (5, {}),                                   # multinomial (the intent heads)
    (2, {}),                                   # two classes: one-vs-rest sigmoid
    (5, {"multi_class": "ovr"}),
    (5, {"solver": "liblinear"}),
    (5, {"class_weight": "balanced", "C": 20.0}),
])
def test_same_probabilities_as_scikit_learn(n_classes, options):
    X, y = _data(n_classes)
    classifier = LogisticRegression(max_iter=2000, **options).fit(X, y)
    queries = RNG.normal(size=(9, X.shape[1]))
    fast = LinearProbabilities(classifier)
    np.testing.assert_allclose(fast.probabilities(queries), classifier.predict_proba(queries), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.log_probabilities(queries), classifier.predict_log_proba(queries), rtol=1e-7, atol=1e-9)


def test_sparse_features_and_string_classes_after_a_skops_round_trip(tmp_path):
    texts_x = sp.random(80, 300, density=0.05, format="csr", random_state=3)
    y = np.array(["refund", "delivery", "greet", "bye"] * 20, dtype=object)
    classifier = sklearn_io.load(sklearn_io.save(tmp_path / "head.skops",
                                                 LogisticRegression(C=20.0, max_iter=2000).fit(texts_x, y)))
    queries = sp.random(4, 300, density=0.05, format="csr", random_state=4)
    fast = LinearProbabilities(classifier)
    assert list(fast.classes_) == sorted(set(y))
    np.testing.assert_allclose(fast.probabilities(queries), classifier.predict_proba(queries), rtol=1e-9, atol=1e-12)
