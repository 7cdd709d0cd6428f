"""Active-learning simulations on a database whose answers are known (the replay engine's use).

A simulation starts from a seeded random share of the database's materials as "computed",
then, for a number of rounds, trains an ensemble on what is computed, ranks the rest with an
acquisition rule and "computes" the top batch: it takes their spectra from the database, which
is what ``dft.engine: replay`` does in the workflow (the replay engine reproduces the database's
log10 alpha through the spectra stage; its tests show it). After every round it records the
recall of the true top materials by the figure of merit of the known spectra. Strategies share
what they can: every strategy of one seed starts from the same set, and ``greedy`` and ``ucb``
share round 1's ensemble, which is trained on that same set.

Members train in parallel worker processes (one torch thread each; fork, so the graphs are shared).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from optabs.grid import Grid
from optabs.model.graphs import Graph
from optabs.model.metrics import clip_to_floor
from optabs.model.settings import ModelSettings
from optabs.screen.acquisition import acquisition_scores, rank_order

log = logging.getLogger(__name__)

_SHARED: dict[str, Any] = {}


@dataclass(frozen=True)
class Simulation:
    """One simulation's design: ``rounds`` rounds of ``batch`` materials after an ``initial_fraction``
    start, ranked on figure of merit values ``merit`` (one per material, from the known spectra;
    ``direction`` max or min), recall of the true ``top_n``; ``ensemble`` members; ``kappa`` for ucb."""

    initial_fraction: float = 0.1
    rounds: int = 4
    batch: int = 28
    top_n: int = 50
    ensemble: int = 3
    kappa: float = 1.0
    direction: str = "max"
    workers: int = 2


def _train_member(args: tuple[list[str], list[str], ModelSettings]) -> np.ndarray:
    """Worker: train one member on ``train_ids`` and predict ``predict_ids`` ((N, G) log10 alpha)."""
    import tempfile

    from optabs.model.predict import predict
    from optabs.model.train import train

    train_ids, predict_ids, settings = args
    dataset, graphs, grid = _SHARED["dataset"], _SHARED["graphs"], _SHARED["grid"]
    data = dataset[dataset.material_id.isin(set(train_ids))].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(data, {m: graphs[m] for m in train_ids}, settings, tmp, grid)
    return clip_to_floor(predict(result.model, graphs, predict_ids, batch_size=64), grid.log10_alpha_floor).astype(np.float32)


def ensemble_predictions(
    pool: Any, train_ids: Sequence[str], predict_ids: Sequence[str], settings: ModelSettings, members: int
) -> np.ndarray:
    """(M, N, G) predictions of ``predict_ids`` by ``members`` members trained on ``train_ids`` (no test split)."""
    base = replace(settings, threads=1, train_fraction=0.9, val_fraction=0.1, test_fraction=0.0)
    jobs = [(list(train_ids), list(predict_ids), replace(base, member=k)) for k in range(members)]
    return np.stack(pool.map(_train_member, jobs) if pool is not None else [_train_member(j) for j in jobs])


def simulate(
    dataset: pd.DataFrame, graphs: Mapping[str, Graph], merit: np.ndarray, merit_of_spectra: Any,
    settings: ModelSettings, design: Simulation, strategies: Sequence[str], seeds: Sequence[int], grid: Grid,
) -> pd.DataFrame:
    """Recall of the true top ``design.top_n`` after every round, for every strategy and seed.

    ``dataset``: the database (material_id, log10_alpha, structure); ``merit``: (N,) the figure of
    merit of its known spectra, in the dataset's row order; ``merit_of_spectra``: (M, N, G) -> (M, N)
    the same figure of merit of predicted spectra. Rows: strategy, seed, round (0 = the start),
    n_computed, found (of the top), recall, seconds.
    """
    ids = np.asarray(dataset.material_id, dtype=object)
    n = len(ids)
    order = rank_order(list(ids), merit if design.direction == "max" else -np.asarray(merit))
    top = set(ids[order[: design.top_n]])
    _SHARED.update(dataset=dataset, graphs=graphs, grid=grid)
    ctx = multiprocessing.get_context("fork")
    rows = []
    with ctx.Pool(design.workers) as pool:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            start = list(ids[rng.permutation(n)[: max(1, round(design.initial_fraction * n))]])
            shared_first: dict[str, np.ndarray] = {}
            for strategy in strategies:
                t0 = time.perf_counter()
                computed = list(start)
                rows.append(_row(strategy, seed, 0, computed, top, t0))
                for r in range(1, design.rounds + 1):
                    rest = [m for m in ids if m not in set(computed)]
                    if strategy == "random":
                        scores = acquisition_scores("random", np.zeros(len(rest)), np.zeros(len(rest)),
                                                    seed=seed * 1000 + r)
                    else:
                        key = "first" if r == 1 else ""
                        if key and key in shared_first:
                            values = shared_first[key]
                        else:
                            members = ensemble_predictions(pool, computed, rest, settings, design.ensemble)
                            values = merit_of_spectra(members)
                            if key:
                                shared_first[key] = values
                        scores = acquisition_scores(strategy, values.mean(0), values.std(0), design.direction,
                                                    design.kappa)
                    picks = [rest[i] for i in rank_order(rest, scores)[: design.batch]]
                    computed += picks
                    rows.append(_row(strategy, seed, r, computed, top, t0))
                    log.info("seed %d %s round %d: %d computed, %d of the top %d", seed, strategy, r, len(computed),
                             rows[-1]["found"], design.top_n)
    return pd.DataFrame(rows)


def _row(strategy: str, seed: int, round_no: int, computed: Sequence[str], top: set[str], t0: float) -> dict[str, Any]:
    found = len(top & set(computed))
    return {"strategy": strategy, "seed": seed, "round": round_no, "n_computed": len(computed), "found": found,
            "recall": found / len(top), "seconds": time.perf_counter() - t0}
