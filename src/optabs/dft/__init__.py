"""The DFT stage: one engine interface, one engine-neutral result.

Every engine (:mod:`optabs.dft.gpaw`, :mod:`optabs.dft.vasp`) turns one structure into a
:class:`DielectricResult` or raises :class:`CalculationError`; :mod:`optabs.dft.result` defines
both and how a result file is written and read; :mod:`optabs.dft.stage` runs one material.
"""

from optabs.dft.result import (
    RESULT_SCHEMA_VERSION,
    CalculationError,
    DielectricResult,
    Engine,
    FailureRecord,
    read_result,
    write_result,
)

__all__ = [
    "RESULT_SCHEMA_VERSION",
    "CalculationError",
    "DielectricResult",
    "Engine",
    "FailureRecord",
    "read_result",
    "write_result",
]
