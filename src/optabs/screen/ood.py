"""The nearest learned cluster of a candidate, and whether it lies outside what training saw.

The clusters are the interpret stage's: Ward clusters of the dataset materials' mean atom
features of one model layer (``interpret.layer``, optionally standardised as
``interpret.standardize`` says). A cluster's centroid is the mean feature vector of its
materials; its radius is the largest distance of one of its own materials to that centroid.
A candidate is out of distribution when its distance to the nearest centroid exceeds that
cluster's radius: no computed material of the group lies that far from it. A cluster of a
single material has radius 0, so it takes the median radius of the clusters with two or more
materials instead. Distances are Euclidean, in the (standardised) feature space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optabs.errors import InputError


@dataclass(frozen=True)
class Centroids:
    """Cluster ``labels`` (K,), ``centres`` (K, d), ``radii`` (K,), and the feature scaling
    (``shift``, ``scale``, (d,)) applied before any distance."""

    labels: np.ndarray
    centres: np.ndarray
    radii: np.ndarray
    shift: np.ndarray
    scale: np.ndarray


def learned_clusters(features: np.ndarray, labels: np.ndarray, standardize: bool = False) -> Centroids:
    """Centroids and radii of clusters ``labels`` (N,) of the (N, d) training ``features``."""
    x = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(labels) or len(x) == 0:
        raise InputError(f"learned_clusters: {x.shape} features for {labels.shape} labels")
    shift = x.mean(axis=0) if standardize else np.zeros(x.shape[1])
    scale = x.std(axis=0) if standardize else np.ones(x.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - shift) / scale
    names, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse)
    centres = np.zeros((len(names), z.shape[1]))
    np.add.at(centres, inverse, z)
    centres /= counts[:, None]
    dist = np.linalg.norm(z - centres[inverse], axis=1)
    radii = np.zeros(len(names))
    np.maximum.at(radii, inverse, dist)
    multi = counts >= 2
    if (~multi).any():
        radii[~multi] = np.median(radii[multi]) if multi.any() else 0.0
    return Centroids(names, centres, radii, shift, scale)


def nearest_cluster(centroids: Centroids, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For (N, d) candidate ``features``: the nearest cluster's label (N,), the distance to its
    centroid (N,) and the out-of-distribution flag (N,) (distance > that cluster's radius)."""
    z = (np.asarray(features, dtype=float) - centroids.shift) / centroids.scale
    c = centroids.centres
    # |z - c|^2 = |z|^2 + |c|^2 - 2 z.c: (N, K) without an (N, K, d) intermediate
    d = np.sqrt(np.maximum((z**2).sum(1)[:, None] + (c**2).sum(1)[None, :] - 2.0 * z @ c.T, 0.0))
    best = np.argmin(d, axis=1)
    distance = d[np.arange(len(z)), best]
    return centroids.labels[best], distance, distance > centroids.radii[best]
