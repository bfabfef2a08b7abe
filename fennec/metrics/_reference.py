"""Slow reference forms of SFDA and LogME, written step by step from the published algorithms.

They exist for parity tests and for ``benchmark/metrics_speed.py``, which measures the fast
implementations against them. They are numpy/scipy, CPU only, do no input validation (pass
float64 features and labels 0..C-1) and are not registered as metrics.

* :func:`sfda_eigen`: SFDA as published, with the generalised symmetric eigensolve
  ``eigh(S_b, S̃_w)`` and the between scatter S_b built from the shrunk total covariance.
* :func:`logme_fixed_point`: LogME's fixed-point iteration as in the authors' code,
  including its determinant term over only the non-zero spectrum (wrong when N < D or the
  features are rank-deficient: thuml/LogME issue #23).
* :func:`logme_icml`: LogME's original (ICML 2021) iteration, whose determinant covers all
  D eigenvalues of FᵀF.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["sfda_eigen", "logme_fixed_point", "logme_icml"]


# ---------------------------------------------------------------------------------------
# SFDA
# ---------------------------------------------------------------------------------------


def _cov_bias(z: np.ndarray, shrinkage: float | None = None) -> np.ndarray:
    """Biased (divide by n) covariance; shrunk towards (tr/D)·I when ``shrinkage`` is given."""
    cov = np.atleast_2d(np.cov(z.T, bias=True))
    if shrinkage is not None:
        d = cov.shape[0]
        cov = (1.0 - shrinkage) * cov + shrinkage * (np.trace(cov) / d) * np.eye(d)
    return cov


def _power_iteration(a: np.ndarray, iterations: int = 3) -> float:
    x = a.sum(axis=1)
    for _ in range(iterations):
        t = a @ x
        v = t / np.linalg.norm(t)
        t = a @ v
        x = t / np.linalg.norm(t)
    return float(x @ a @ v)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _lda_eigen(x: np.ndarray, y: np.ndarray, n_classes: int, shrinkage: float | None):
    n, d = x.shape
    priors = np.bincount(y, minlength=n_classes) / n
    means = np.stack([x[y == c].mean(axis=0) for c in range(n_classes)])  # (C, D)
    s_w = sum(priors[c] * _cov_bias(x[y == c]) for c in range(n_classes))  # (D, D)
    if shrinkage is None:
        shrinkage = max(np.exp(-5.0 * _power_iteration(s_w)), 1e-10)
    s_t = _cov_bias(x, shrinkage)
    s_w_shrunk = (1.0 - shrinkage) * s_w + shrinkage * (np.trace(s_w) / d) * np.eye(d)
    s_b = s_t - s_w_shrunk
    evals, evecs = scipy.linalg.eigh(s_b, s_w_shrunk)
    w = evecs[:, np.argsort(evals)[::-1]]  # all D, sorted by descending eigenvalue
    coef = means @ w @ w.T  # (C, D)
    intercept = -0.5 * np.sum(means * coef, axis=1) + np.log(priors)
    return _softmax(x @ coef.T + intercept), means, shrinkage


def sfda_eigen(features: np.ndarray, labels: np.ndarray) -> float:
    """SFDA with the generalised eigensolver, as published (float64 throughout)."""
    x = np.array(features, dtype=np.float64)  # a copy: ConfMix writes into it
    y = np.asarray(labels)
    c = int(y.max()) + 1
    prob, means, shrinkage = _lda_eigen(x, y, c, None)
    prob = _softmax(prob)  # the double softmax of ConfMix
    outer = (means.sum(axis=0) - means) / (c - 1)
    for k in range(c):
        idx = np.flatnonzero(y == k)
        w = prob[idx, k][:, None]
        x[idx] = w * x[idx] + (1 - w) * outer[k]
    prob, _, _ = _lda_eigen(x, y, c, shrinkage)
    return float(prob[np.arange(len(y)), y].mean())


# ---------------------------------------------------------------------------------------
# LogME
# ---------------------------------------------------------------------------------------


def _evidence(alpha, beta, sigma, res2, m2, n, d):
    return (
        d / 2.0 * np.log(alpha)
        + n / 2.0 * np.log(beta)
        - 0.5 * np.sum(np.log(alpha + beta * sigma))
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - n / 2.0 * np.log(2 * np.pi)
    ) / n


def logme_fixed_point(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME by the fixed-point iteration of the authors' code (their default ``_fit``)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    if n > d:
        _, s2, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s2)
        k = int(np.sum(s > 1e-10))
        u = (f @ vh.T)[:, :k] / s[:k]
        s = s[:k]
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for c in range(int(y.max()) + 1):
        t_y = (y == c).astype(np.float64)
        x = u.T @ t_y
        x2 = x**2
        res_x2 = t_y @ t_y - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = np.sum(sigma / (sigma + t))
            m2 = np.sum(sigma * x2 / (t + sigma) ** 2)
            res2 = np.sum(x2 / (1 + sigma / t) ** 2) + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidences.append(_evidence(alpha, beta, sigma, res2, m2, n, d))
    return float(np.mean(evidences))


def logme_icml(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME by the original ICML 2021 iteration (determinant over all D eigenvalues)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    _, s, vh = np.linalg.svd(f.T @ f)  # s: (D,) eigenvalues of FᵀF, zeros included
    v = vh.T
    evidences = []
    for c in range(int(y.max()) + 1):
        t_y = (y == c).astype(np.float64)
        tmp = vh @ (f.T @ t_y)
        alpha, beta = 1.0, 1.0
        lam = alpha / beta
        for _ in range(11):
            gamma = np.sum(beta * s / (alpha + beta * s))
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = m @ m
            alpha = gamma / (alpha_de + 1e-5)
            beta_de = np.sum((t_y - f @ m) ** 2)
            beta = (n - gamma) / (beta_de + 1e-5)
            new_lam = alpha / beta
            if abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (
            d / 2.0 * np.log(alpha)
            + n / 2.0 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * s))
            - beta / 2.0 * (beta_de + 1e-5)
            - alpha / 2.0 * (alpha_de + 1e-5)
            - n / 2.0 * np.log(2 * np.pi)
        ) / n
        evidences.append(evidence)
    return float(np.mean(evidences))
