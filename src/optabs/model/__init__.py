"""The model stage: crystal graphs, ALIGNN training and prediction, baselines, metrics, embeddings.

The network is alignn's pure-PyTorch ``ALIGNNAtomWisePure`` (DGL cannot be installed next to
current torch), set up as the study's multi-output spectrum model: cgcnn atom features (92),
one linear head with ``output_features`` = the grid length (1,501 log10 alpha values), MSE
loss, AdamW and a one-cycle learning-rate schedule. Everything here is plain functions on
tables, graphs and arrays; the workflow scripts only read and write files.

Units and shapes used throughout: spectra are log10 alpha (alpha in cm^-1) on the dataset's
energy grid, arrays ``(materials, n_grid)``; energies in eV; cutoffs in angstrom.

One concern per module (import them directly; this package itself imports no torch, so the
workflow can read :class:`ModelSettings` without it):

``settings``    :class:`ModelSettings` and the graph cache's format tag (no torch)
``crystal_graph`` the study's graph of one structure (numpy): k-nearest neighbour shells, undirected,
                and its line graph; ``torch_graph`` makes the alignn ``TorchGraph`` pair (g, lg)
``graphs``      ``build_graphs`` -> ``{material_id: (g, lg)}`` for many structures in worker
                processes, cached on disk by ``cached_graphs`` / ``save_graphs`` / ``load_graphs``
                under a key made of the builder's name and version and the graph settings
``split``       ``split_ids``: the seeded train/val/test split (no torch)
``network``     the alignn configuration, building the network, batching graphs, the forward pass
``train``       ``train(dataset, graphs, settings, outdir, grid)`` writes ``checkpoint.pt`` (the
                best epoch by validation loss) and ``history.csv``, and resumes a killed run
``resume``      the resume state ``resume.pt`` written every epoch, so that a killed training
                continues after its last epoch: fingerprint, random states, saving and loading
``checkpoint``  writing and reading checkpoints (weights, settings, split, grid); ``load_model``
``predict``     ``predict``: spectra of graphs from a trained network; the predictions table
``ensemble``    members of an ensemble (same split, seeds ``seed + member``): loading them, their
                (M, N, G) predictions, mean and sigma, and the calibration of the sigma bands
``baselines``   the mean-spectrum and composition baselines (no torch)
``metrics``     ``evaluate``: ALIGNN and both baselines (fitted on the same training split) side
                by side on the test split (``metrics.json``) (no torch)
``embeddings``  per-layer, per-material mean atom features (the study clustered these)
``stage``       the workflow's entry points: read the stage's files, call the above, write atomically
"""

from optabs.model.settings import GRAPH_CACHE_FORMAT, ModelSettings

__all__ = ["GRAPH_CACHE_FORMAT", "ModelSettings"]
