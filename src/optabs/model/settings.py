"""Settings of the model stage (graphs, network, training) and their presets.

Kept free of torch so that reading and checking them (the workflow does it for every
``snakemake`` call, before any job) does not import torch, which alone costs ~2 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from optabs.config import Settings
from optabs.errors import ConfigError

if TYPE_CHECKING:
    import torch

GRAPH_CACHE_FORMAT = "optabs-graphs-1"


@dataclass(frozen=True)
class ModelSettings(Settings):
    """Graph, network and training settings. Defaults are the study's (the ``paper`` preset).

    Graph (the cache key; the definition is in :mod:`optabs.model.crystal_graph`): each atom
    keeps every neighbour up to the distance of its ``max_neighbors``-th nearest one plus
    ``shell_tolerance`` (angstrom; whole shells of equidistant neighbours), and the bonds are
    made undirected (the study: k-nearest, k = 10). ``cutoff`` (angstrom) is where the
    neighbour search starts; it grows, as in alignn's builder, for an atom with fewer than k
    neighbours within it. ``three_body_cutoff`` (angstrom): only bonds no longer than this form
    line-graph triplets. The study's DGL k-nearest builder makes the line graph of *all* kept
    bonds, so the default is the full ``cutoff`` (10 angstrom; at or above ``cutoff`` every
    bond takes part); alignn's ``atom_dgl_multigraph`` would silently use 3.5 angstrom.

    Network: ``alignn_layers`` ALIGNN (atom graph + line graph) layers, then ``gcn_layers``
    edge-gated graph convolutions, ``hidden_features`` wide; ``embedding_features`` is the width
    of the bond/angle embedding MLPs; ``edge_input_features`` / ``triplet_input_features`` the
    RBF expansions of bond lengths and angle cosines.

    Training: ``epochs``, ``batch_size`` (graphs), AdamW ``learning_rate`` and ``weight_decay``
    (no decay on biases and norms, as alignn's ``group_decay``), ``scheduler`` "onecycle"
    (torch ``OneCycleLR`` stepped every batch, peaking at ``learning_rate``) or "none".
    ``warmup_steps``: the one-cycle warm-up length in optimiser steps (at most half the
    run); None (default) warms up over 30 % of all steps, which is what the study's run did:
    its log lists ``warmup_steps: 2000``, but alignn's one-cycle scheduler ignores that key
    and uses ``pct_start=0.3``. ``output_bias_from_mean``: start the head's bias at the
    training mean spectrum (not the study's zero bias; it spares a short run the first
    epochs of learning the offset). ``seed`` fixes the split, the initial weights and the
    batch order. ``train_fraction`` / ``val_fraction`` / ``test_fraction`` split the
    materials (see :func:`optabs.model.split.split_ids`). ``threads``: torch CPU threads during
    training (default 1: on a shared 2-core machine two threads beside another busy process made
    steps 10-20x slower, while on an idle one they gain ~20 %). The workflow's ``model_train``
    rule declares 4 threads and passes what Snakemake grants (capped at ``--cores`` locally; not a
    config key): Snakemake then runs no other job on those cores, which is when more threads pay.
    Several threads are not bitwise reproducible run to run (CPU sums add in varying order); one is.
    ``device``: "auto" (CUDA when visible, else CPU), "cpu", "cuda" or "cuda:N".
    ``ensemble``: how many members the workflow trains (rules ``model_train`` and
    ``model_train_member``); they share the split (seeded by ``seed``) and differ in initial
    weights and batch order, seeded by ``seed + member``. ``member`` is the index of the member a
    training run is (0 for the single model; set by the rule, not a config key). A training job
    knows only its ``member`` (the workflow leaves ``ensemble`` out of its settings, so that adding
    members never retrains the others); evaluation and screening read ``ensemble``.
    ``max_train_minutes``: optional wall-clock budget; training stops after the epoch that
    crosses it (the best checkpoint so far is kept and the stop is logged). The training time of
    a killed run that this one resumes counts too.

    Resuming (:mod:`optabs.model.resume`): a killed training continues after its last epoch
    when every setting but ``threads``, ``device`` and ``max_train_minutes`` is the same (and
    the data, split and grid); otherwise it starts afresh.
    """

    alignn_layers: int = 4
    gcn_layers: int = 4
    hidden_features: int = 64
    embedding_features: int = 64
    edge_input_features: int = 80
    triplet_input_features: int = 40
    cutoff: float = 10.0
    three_body_cutoff: float = 10.0
    max_neighbors: int = 10
    shell_tolerance: float = 1e-3
    epochs: int = 500
    batch_size: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    warmup_steps: int | None = None
    scheduler: str = "onecycle"
    output_bias_from_mean: bool = False
    seed: int = 123
    train_fraction: float = 0.8
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    threads: int = 1
    device: str = "auto"
    max_train_minutes: float | None = None
    ensemble: int = 1
    member: int = 0

    #: name -> overrides of the defaults. ``paper``: the study's run (GPU: ~6 h for 500 epochs
    #: on 2,144 graphs on an A100). ``cpu``: the study's architecture and graphs with 30 epochs,
    #: sized for ~10 minutes on ~900 training graphs: one thread trains 52-54 graphs/s on an idle
    #: core (17-18 s per epoch of 894 graphs; 30 epochs of the 1,116 shared oxides took 11.6 min
    #: on a shared, busy 2-core machine, test MAE 0.13 vs 0.38 for the mean spectrum).
    #: ``demo``: 2+2 layers, hidden 32 (~150 graphs/s) for the ~35-material embedded demo
    #: (graphs + 40 epochs + evaluation: ~15 s). Both cap the wall time as a safety net.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "paper": {},
        "cpu": {"epochs": 30, "output_bias_from_mean": True, "max_train_minutes": 20.0},
        "demo": {
            "alignn_layers": 2,
            "gcn_layers": 2,
            "hidden_features": 32,
            "embedding_features": 32,
            "epochs": 40,
            "batch_size": 4,
            "output_bias_from_mean": True,
            "max_train_minutes": 10.0,
        },
    }
    DEFAULT_PRESET: ClassVar[str | None] = "paper"
    NAME: ClassVar[str] = "model"

    def __post_init__(self) -> None:
        self.check_numbers("alignn_layers", "gcn_layers", integer=True, inclusive=True)
        self.check_numbers("hidden_features", "embedding_features", "edge_input_features", "triplet_input_features",
                           "max_neighbors", "epochs", "batch_size", "threads", "ensemble", integer=True, minimum=1,
                           inclusive=True)
        self.check_numbers("member", integer=True, inclusive=True)
        self.check_numbers("cutoff", "three_body_cutoff", "shell_tolerance", "learning_rate")
        if self.three_body_cutoff > self.cutoff:
            raise self.invalid("three_body_cutoff", f"at most 'cutoff' ({self.cutoff} A)")
        self.check_numbers("weight_decay", inclusive=True)
        self.check_choice("scheduler", ("onecycle", "none"))
        self.check_numbers("warmup_steps", integer=True, minimum=1, inclusive=True, optional=True)
        self.check_numbers("max_train_minutes", optional=True)
        fractions = (self.train_fraction, self.val_fraction, self.test_fraction)
        if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6 or self.train_fraction <= 0:
            raise ConfigError(
                "model settings 'train_fraction', 'val_fraction', 'test_fraction' must be >= 0 (train > 0) "
                f"and add up to 1, got {fractions}"
            )
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            raise self.invalid("device", "auto, cpu, cuda or cuda:N")

    @property
    def member_seed(self) -> int:
        """The seed of this member's initial weights and batch order (the split uses ``seed``)."""
        return self.seed + self.member

    def graph_key(self) -> dict[str, Any]:
        """What a graph depends on (the graph cache's key): the cache format, the builder's
        name and version (:data:`optabs.model.crystal_graph.BUILDER`) and the graph settings."""
        from optabs.model.crystal_graph import BUILDER, BUILDER_VERSION

        return {
            "format": GRAPH_CACHE_FORMAT,
            "builder": BUILDER,
            "builder_version": BUILDER_VERSION,
            "cutoff": float(self.cutoff),
            "three_body_cutoff": float(self.three_body_cutoff),
            "max_neighbors": int(self.max_neighbors),
            "shell_tolerance": float(self.shell_tolerance),
            "atom_features": "cgcnn",
        }

    def torch_device(self) -> torch.device:
        """The torch device of ``device`` ("auto": CUDA when visible, else CPU); imports torch."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)
