"""Material ids: one pattern for file names, Snakemake wildcards and table keys."""

from __future__ import annotations

import re

from optabs.errors import InputError

#: A material id is safe as a file name and as a Snakemake wildcard value.
MATERIAL_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
_ID_RE = re.compile(rf"^{MATERIAL_ID_PATTERN}$")


def safe_material_id(name: str) -> str:
    """Turn an arbitrary name (a file stem, a formula with parentheses) into a safe material id.

    Characters outside ``[A-Za-z0-9_.+-]`` become ``_``; runs of ``_`` collapse.
    ``Ba3Si2(B3O8)2_mp-1019526`` -> ``Ba3Si2_B3O8_2_mp-1019526``.
    """
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name.strip())
    safe = re.sub(r"_+", "_", safe).strip("_.")
    if not safe or not _ID_RE.match(safe):
        raise InputError(f"cannot derive a material id from {name!r}: give it a name with letters or digits")
    return safe


def check_material_id(material_id: str, where: str = "") -> None:
    """Raise :class:`InputError` if ``material_id`` is not safe; ``where`` names its origin."""
    if not isinstance(material_id, str) or not _ID_RE.match(material_id):
        at = f" (from {where})" if where else ""
        raise InputError(
            f"material id {material_id!r}{at} is not safe as a file name: use letters, digits and _ . + - only"
        )
