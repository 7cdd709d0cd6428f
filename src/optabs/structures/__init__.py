"""Structure sources and the candidates table they all produce.

Every source (``catalog``, ``mp``, ``files``, later ``dataset``) returns a list of
:class:`Candidate`; :func:`candidates_to_frame` turns them into the one table the
``structures`` stage writes (``results/structures/candidates.parquet``), with columns:

=================  ======  ==========================================================
material_id        str     unique, safe as a file name and a Snakemake wildcard
formula            str     reduced formula (pymatgen)
structure          str     pymatgen ``Structure`` as JSON
source             str     ``catalog`` | ``mp`` | ``files`` | ``dataset``
source_ref         str     where it came from (ICSD/MP id, file name)
magnetization      float   total magnetization (Bohr magnetons per cell); NaN if unknown
magnetic_ordering  str     ``NM``/``FM``/``AFM``/``FiM`` if the source says; "" if unknown
properties         str     JSON object of source-specific values (energy above hull, gap, ...)
=================  ======  ==========================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from optabs.errors import InputError
from optabs.ids import check_material_id

CANDIDATE_COLUMNS = [
    "material_id",
    "formula",
    "structure",
    "source",
    "source_ref",
    "magnetization",
    "magnetic_ordering",
    "properties",
]


@dataclass
class Candidate:
    """One candidate material from a structure source."""

    material_id: str
    structure: Structure
    source: str
    source_ref: str = ""
    magnetization: float | None = None
    magnetic_ordering: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_material_id(self.material_id, where=self.source_ref or self.source)

    @property
    def formula(self) -> str:
        """Reduced formula of the structure."""
        return self.structure.composition.reduced_formula

    @property
    def magnetic_data(self) -> float | str | None:
        """What the filter uses: the ordering if the source gives it, else the magnetization."""
        if self.magnetic_ordering:
            return self.magnetic_ordering
        return self.magnetization


def check_unique_ids(candidates: list[Candidate]) -> None:
    """Raise :class:`InputError` naming every duplicated material id and where each came from."""
    seen: dict[str, list[str]] = {}
    for c in candidates:
        seen.setdefault(c.material_id, []).append(c.source_ref or c.source)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    if dups:
        lines = "; ".join(f"{k} ({', '.join(v)})" for k, v in sorted(dups.items()))
        raise InputError(f"duplicate material ids: {lines}. Every material needs its own id.")


def candidates_to_frame(candidates: list[Candidate]) -> pd.DataFrame:
    """The candidates table (columns in :data:`CANDIDATE_COLUMNS`)."""
    check_unique_ids(candidates)
    rows = [
        {
            "material_id": c.material_id,
            "formula": c.formula,
            "structure": c.structure.to_json(),
            "source": c.source,
            "source_ref": c.source_ref,
            "magnetization": math.nan if c.magnetization is None else float(c.magnetization),
            "magnetic_ordering": c.magnetic_ordering or "",
            "properties": json.dumps(c.properties, sort_keys=True),
        }
        for c in candidates
    ]
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)


def frame_to_candidates(frame: pd.DataFrame) -> list[Candidate]:
    """Inverse of :func:`candidates_to_frame`."""
    out = []
    for row in frame.itertuples(index=False):
        mag = None if row.magnetization is None or math.isnan(row.magnetization) else float(row.magnetization)
        out.append(
            Candidate(
                material_id=row.material_id,
                structure=Structure.from_str(row.structure, fmt="json"),
                source=row.source,
                source_ref=row.source_ref,
                magnetization=mag,
                magnetic_ordering=row.magnetic_ordering or None,
                properties=json.loads(row.properties),
            )
        )
    return out
