"""The ranking of candidates: ensemble spectra -> figures of merit with sigma -> acquisition -> shortlist."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from optabs.grid import Grid
from optabs.model.ensemble import mean_and_std
from optabs.screen.acquisition import acquisition_scores, rank_order
from optabs.screen.settings import ScreenSettings

#: The columns of ``shortlist.csv`` (``why``: one sentence a user can act on).
SHORTLIST_COLUMNS = ["rank", "material_id", "formula", "merit", "merit_mean", "merit_std", "score", "cluster",
                     "cluster_distance", "out_of_distribution", "why"]


def ranking_table(
    ids: Sequence[str], formulas: Sequence[str], members: np.ndarray, grid: Grid, settings: ScreenSettings,
    cluster: np.ndarray, distance: np.ndarray, ood: np.ndarray,
) -> pd.DataFrame:
    """``ranking.parquet``: one row per candidate, best first.

    ``members``: (M, N, G) log10 alpha of the N candidates by the M ensemble members (clipped at
    the floor). Columns: ``rank``, ``material_id``, ``formula``, ``score`` (the acquisition's),
    ``<merit>_mean`` / ``<merit>_std`` for every figure of merit, ``cluster`` (the nearest learned
    cluster), ``cluster_distance``, ``out_of_distribution``, and the spectrum with its band:
    ``log10_alpha_mean`` and ``log10_alpha_std`` (lists on the grid).
    """
    from optabs.screen.merit import ensemble_merits, merits_from_config

    merits = merits_from_config({"merit": settings.merit, "merits": dict(settings.merits)})
    values = ensemble_merits(merits, grid.energy_ev, members, grid.onset_threshold, grid.log10_alpha_floor)
    ranked_on = next(m for m in merits if m.name == settings.merit)
    mean, std = mean_and_std(members)
    scores = acquisition_scores(settings.acquisition, values[f"{settings.merit}_mean"].to_numpy(),
                                values[f"{settings.merit}_std"].to_numpy(), ranked_on.direction, settings.kappa,
                                settings.seed)
    table = pd.DataFrame({"material_id": list(ids), "formula": list(formulas), "score": scores})
    table = pd.concat([table, values.reset_index(drop=True)], axis=1)
    table["cluster"] = np.asarray(cluster)
    table["cluster_distance"] = np.asarray(distance, dtype=float)
    table["out_of_distribution"] = np.asarray(ood, dtype=bool)
    table["log10_alpha_mean"] = [list(map(float, r)) for r in mean]
    table["log10_alpha_std"] = [list(map(float, r)) for r in std]
    order = rank_order(list(ids), scores)
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.attrs["merit"] = settings.merit
    return table


def shortlist(ranking: pd.DataFrame, settings: ScreenSettings, n_members: int) -> pd.DataFrame:
    """The top ``settings.batch`` of a ranking, each with why it was picked (``SHORTLIST_COLUMNS``)."""
    merit = settings.merit
    top = ranking.head(settings.batch)
    rule = {
        "greedy": f"highest predicted {merit}",
        "ucb": f"highest {merit} mean + {settings.kappa:g} sigma",
        "uncertainty": f"least certain {merit} (largest sigma over {n_members} members)",
        "random": f"random draw (seed {settings.seed})",
    }[settings.acquisition]
    why = []
    for row in top.itertuples():
        ood = ("; outside every learned cluster (farther from cluster "
               f"{row.cluster}'s centre than any of its computed materials)") if row.out_of_distribution else ""
        why.append(f"{settings.acquisition}: {rule}; {merit} {getattr(row, merit + '_mean'):.3g} "
                   f"± {getattr(row, merit + '_std'):.2g}; nearest cluster {row.cluster}{ood}")
    return pd.DataFrame({
        "rank": top["rank"].to_numpy(), "material_id": top.material_id.to_numpy(), "formula": top.formula.to_numpy(),
        "merit": merit, "merit_mean": top[f"{merit}_mean"].to_numpy(), "merit_std": top[f"{merit}_std"].to_numpy(),
        "score": top.score.to_numpy(), "cluster": top.cluster.to_numpy(),
        "cluster_distance": top.cluster_distance.to_numpy(), "out_of_distribution": top.out_of_distribution.to_numpy(),
        "why": why,
    })[SHORTLIST_COLUMNS]
