"""Toy data for the demo, without scikit-learn."""
import numpy as np

__all__ = ["make_moons"]


def make_moons(n_samples=100, noise=0.1, seed=None):
    """Two interleaving half circles, as scikit-learn's ``make_moons`` draws them.

    Returns ``X`` (n_samples, 2) and ``y`` (n_samples,) with labels -1 and +1 (micrograd's demo
    maps scikit-learn's 0/1 to -1/+1 the same way).
    """
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    X = np.vstack([
        np.append(np.cos(t_out), 1 - np.cos(t_in)),
        np.append(np.sin(t_out), 1 - np.sin(t_in) - 0.5),
    ]).T
    y = np.hstack([np.zeros(n_out, dtype=int), np.ones(n_in, dtype=int)])
    order = rng.permutation(n_samples)
    X, y = X[order], y[order]
    X = X + rng.normal(scale=noise, size=X.shape)
    return X, y * 2 - 1
