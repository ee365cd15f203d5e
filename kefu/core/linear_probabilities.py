"""A fitted scikit-learn logistic regression's probabilities, straight from its coefficients.

`LogisticRegression.predict_proba` validates its input on every call (dtype,
finiteness, feature count, sparse format); for one message of a few hundred
features that checking costs more than the product itself (the classifier has
two heads and the knowledge base one, each called on every message). The estimator stays the saved, trained object (skops); this is only how a
served model evaluates it: the same formula as scikit-learn 1.1's
`predict_proba` (one-vs-rest sigmoid or multinomial softmax, chosen the same
way), checked against it in the tests.
"""

from __future__ import annotations

import numpy as np


class LinearProbabilities:
    """`probabilities(X)` equals `classifier.predict_proba(X)` for a fitted `LogisticRegression`."""

    def __init__(self, classifier):
        self.classes_ = classifier.classes_
        self.coef_t = np.ascontiguousarray(np.asarray(classifier.coef_, dtype=np.float64).T)
        self.intercept = np.asarray(classifier.intercept_, dtype=np.float64)
        multi_class = getattr(classifier, "multi_class", "auto")
        # scikit-learn's own rule (LogisticRegression.predict_proba).
        self.one_vs_rest = multi_class in ("ovr", "warn") or (
            multi_class == "auto" and (len(self.classes_) <= 2 or getattr(classifier, "solver", "lbfgs") == "liblinear"))

    def scores(self, features) -> np.ndarray:
        """The decision values (samples x coefficient rows) of dense or sparse `features`."""
        product = features @ self.coef_t
        return np.asarray(product, dtype=np.float64) + self.intercept

    def probabilities(self, features) -> np.ndarray:
        scores = self.scores(features)
        if self.one_vs_rest:
            positive = 1.0 / (1.0 + np.exp(-scores))
            if positive.shape[1] == 1:
                return np.hstack([1.0 - positive, positive])
            return positive / positive.sum(axis=1, keepdims=True)
        if scores.shape[1] == 1:  # a two-class multinomial model keeps one row of coefficients
            scores = np.hstack([-scores, scores])
        scores = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def log_probabilities(self, features) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.probabilities(features))
