"""The interpret stage: Ward clusters of model features, and how good a clustering is.

The study (first-layer ALIGNN atom features averaged per material, Ward linkage on Euclidean
distances, cut with ``maxclust`` into 96 groups) is reproduced by :func:`ward_clusters`; the
same function clusters raw spectra for the comparison. :func:`compare_clusterings` measures a
clustering by three numbers, so "features group chemistry better than spectra" is a number:

- ``spectral_spread`` (log10 alpha units): mean over materials of the mean absolute difference
  between a material's spectrum and its cluster's mean spectrum (lower = tighter spectral shape);
- ``chemical_homogeneity`` (0..1): per cluster, the mean Jaccard similarity of the element sets
  over all pairs of members; averaged over clusters weighted by size (higher = more alike);
- ``coordination_agreement`` (0..1): fraction of members whose dominant cation environment
  (tetrahedral / octahedral / other, :mod:`optabs.chemistry`) is their cluster's most common one.

All three are computed over the members of clusters of two or more materials: a singleton is
trivially tight, pure and in agreement with itself, so counting singletons would reward a
clustering for isolating materials. The number of singletons is reported beside them. The
dataset-wide mean pairwise Jaccard similarity (``dataset_jaccard``) is reported as the chance
level of chemical homogeneity. When clusterings are compared (:func:`compare_clusterings`, the
sweep), all are scored on the same materials: those in clusters of two or more in every
clustering compared, counting only those materials (``common_members``; ``n_common`` in the
output). Cluster means, Jaccard pairs and majority environments are taken over each cluster's
members in that set.

Robustness (:mod:`optabs.interpret.sweep`): every model layer and the raw spectra are clustered
at several K (``interpret.sweep_k``) and scored the same way, so a conclusion can be read across
K and layers instead of at one. Chemistry per cluster (:mod:`optabs.interpret.chemistry`) includes
motif statistics (:mod:`optabs.interpret.motifs`): which cation-environment motifs ("V
tetrahedral") a cluster carries more often than the dataset, with hypergeometric p and
Benjamini-Hochberg q values.

Shapes: M materials, d feature dimensions, N energy points, C clusters. Nothing loops in Python
over materials or energy points; loops run over clusters (C, at most M) or linkage rows.
"""

from __future__ import annotations

from optabs.interpret.chemistry import ClusterChemistry, cluster_chemistry
from optabs.interpret.clustering import ClusterResult, feature_matrix, ward_clusters
from optabs.interpret.compare import adjusted_rand_index, clustering_stats, compare_clusterings, mean_pairwise_jaccard
from optabs.interpret.settings import InterpretSettings

__all__ = [
    "ClusterChemistry",
    "ClusterResult",
    "InterpretSettings",
    "adjusted_rand_index",
    "cluster_chemistry",
    "clustering_stats",
    "compare_clusterings",
    "feature_matrix",
    "mean_pairwise_jaccard",
    "ward_clusters",
]
