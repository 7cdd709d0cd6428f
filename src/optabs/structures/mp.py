"""The Materials Project structure source (``source: mp``).

Three steps, each at its own edge:

1. :func:`fetch_documents` asks the Materials Project summary API (through ``mp-api``) for every
   material with one of the query's anions, none of its excluded elements and at most
   ``max_sites`` sites, and returns the raw summary documents as plain, JSON-ready dicts.
2. :func:`save_documents` / :func:`load_documents` keep those documents on disk, so that a rerun
   of the workflow never queries again.
3. :func:`documents_to_candidates` turns documents into :class:`~optabs.structures.Candidate`.

The API key is read from the argument or the environment variable ``MP_API_KEY`` only, and is
never written to a log, an exception or a file.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from pymatgen.core import Element, Structure

from optabs.config import Settings
from optabs.errors import ConfigError, InputError, SourceError
from optabs.io import atomic_path
from optabs.structures import Candidate

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable the API key is read from (and the only place besides the argument).
API_KEY_ENV = "MP_API_KEY"
API_KEY_URL = "https://next-gen.materialsproject.org/api"

_LANTHANIDES_AFTER_CE = ("Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")
_ACTINIDES = ("Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr")

#: The published study's exclusions: hydrogen, halogens and noble gases; magnetic 3d metals and
#: the heavy platinum-group / radioactive elements; f-elements except La and Ce.
DEFAULT_EXCLUDE_ELEMENTS: tuple[str, ...] = (
    ("H", "F", "Cl", "Br", "I", "At", "Ts")
    + ("He", "Ne", "Ar", "Kr", "Xe", "Rn", "Og")
    + ("Mn", "Fe", "Co", "Ni", "Tc", "Ru", "Rh", "Os", "Ir", "Po")
    + _LANTHANIDES_AFTER_CE
    + _ACTINIDES
)

DEFAULT_FIELDS: tuple[str, ...] = (
    "material_id",
    "formula_pretty",
    "structure",
    "ordering",
    "total_magnetization",
    "is_magnetic",
    "energy_above_hull",
    "band_gap",
    "formation_energy_per_atom",
    "symmetry",
    "energy_per_atom",
    "uncorrected_energy_per_atom",
)

# Fields the source itself relies on: merging needs the id, candidates need the structure.
_REQUIRED_FIELDS = ("material_id", "structure")

# HTTP statuses worth another try. mp-api's own urllib3 retry already covers 429/502/504 (three
# tries, 0.1 s backoff) but fails at once on 500/503; when its retries run out it raises too.
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_STATUS_RE = re.compile(r"error status code (\d{3})")
_URL_QUERY_RE = re.compile(r"((?:https?://[^\s?]*)?/[^\s?]*)\?[^\s)'\"]*")
# The longest single wait between two attempts, whatever backoff_s and the attempt number say.
_MAX_BACKOFF_S = 120.0


@dataclass(frozen=True)
class MPQuery(Settings):
    """What to ask the Materials Project for; defaults are the published study's criteria.

    ``max_retries`` counts retries after the first attempt (so at most ``max_retries + 1``
    attempts per request); waits grow as ``backoff_s * 2**(retry - 1)`` seconds.
    ``endpoint=None`` uses mp-api's default (``MP_API_ENDPOINT`` if set when mp-api was
    imported, else the public API).
    """

    NAME = "mp"

    anions: tuple[str, ...] = ("O", "S", "Se")
    exclude_elements: tuple[str, ...] = DEFAULT_EXCLUDE_ELEMENTS
    max_sites: int = 40
    fields: tuple[str, ...] = DEFAULT_FIELDS
    chunk_size: int = 1000
    max_retries: int = 5
    backoff_s: float = 1.0
    endpoint: str | None = None

    def __post_init__(self) -> None:
        # Config files give lists; keep tuples so the query is hashable and comparable.
        for name in ("anions", "exclude_elements", "fields"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ConfigError(f"mp.{name} must be a list, not the single string {value!r}")
            object.__setattr__(self, name, tuple(value))
        if not self.anions:
            raise ConfigError("mp.anions is empty: give at least one anion element, e.g. [O, S, Se]")
        for name in ("anions", "exclude_elements"):
            bad = [el for el in getattr(self, name) if not Element.is_valid_symbol(el)]
            if bad:
                raise ConfigError(f"mp.{name} has unknown element symbols {bad}")
        clash = sorted(set(self.anions) & set(self.exclude_elements))
        if clash:
            raise ConfigError(f"mp.anions {clash} are also in mp.exclude_elements: nothing could match")
        missing = [f for f in _REQUIRED_FIELDS if f not in self.fields]
        if missing:
            raise ConfigError(f"mp.fields must include {missing}: the source needs them")
        self.check_numbers("max_sites", "chunk_size", integer=True, minimum=1, inclusive=True)
        self.check_numbers("max_retries", integer=True, inclusive=True)
        self.check_numbers("backoff_s", inclusive=True)

    def search_params(self, anion: str) -> dict[str, Any]:
        """Keyword arguments of ``mpr.materials.summary.search`` for one anion."""
        return {
            "elements": [anion],
            "exclude_elements": list(self.exclude_elements),
            # The server filters on the site count of MP's stored cell (``nsites``). The study's
            # limit applies to the conventional cell, which is never smaller than the primitive
            # cell (it is 1, 2, 3 or 4 primitive cells), and MP stores primitive cells: on all
            # 1,116 MP structures of the oxide benchmark, stored == primitive <= conventional.
            # So this pre-filter only drops materials the local filter would drop too. (A cell that
            # MP stores larger than primitive, e.g. for antiferromagnetic order, could be dropped
            # while its conventional cell fits; such materials are magnetic and filtered out anyway.)
            "num_sites": (1, self.max_sites),
            "fields": list(self.fields),
            "chunk_size": self.chunk_size,
        }


def fetch_documents(
    query: MPQuery,
    api_key: str | None = None,
    *,
    partial_dir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Query the Materials Project summary API; return the documents as JSON-ready dicts.

    One search per anion (``elements=[anion]``), filtered on the server by excluded elements
    and site count, paged by ``query.chunk_size``; results are merged by ``material_id`` in the
    order first seen. Transient failures (HTTP 429/500/502/503/504, connection errors, time-outs)
    are retried with exponential backoff, up to ``query.max_retries`` times per request.

    The key is ``api_key`` if given, else the environment variable ``MP_API_KEY`` (never
    pymatgen's settings file). With ``partial_dir``, each anion's documents are kept there as
    soon as they arrive, and a rerun after a failure reuses them instead of asking again.

    Each document gains ``database_version``: the Materials Project database release it came
    from (as the API reports it; "" if it does not), so that its ``energy_above_hull`` can be
    cited with the hull it was measured on.

    Raises :class:`SourceError` (never showing the key) when no key is set, the key is refused,
    or the server keeps failing.
    """
    key = _resolve_api_key(api_key)
    try:
        return _fetch(query, key, Path(partial_dir) if partial_dir is not None else None)
    except SourceError as exc:
        # The messages are built from server and library text: scrub them once more.
        scrubbed = _scrub(str(exc), key)
        if scrubbed != str(exc):
            raise SourceError(scrubbed) from None
        raise


def _fetch(query: MPQuery, key: str, partial_dir: Path | None) -> list[dict[str, Any]]:
    from mp_api.client import MPRester

    resume = (
        f"the documents already fetched are kept in {partial_dir}, so a rerun resumes from there"
        if partial_dir is not None
        else "rerun the workflow to try again"
    )

    def connect() -> Any:
        return MPRester(
            key,
            endpoint=query.endpoint,
            use_document_model=False,  # raw JSON dicts, as the server sent them
            mute_progress_bars=True,
            notify_db_version=False,  # would write ~/.mprester.log.yaml
        )

    mpr = _with_retries(connect, "connecting to the Materials Project API", query, key, resume)
    merged: dict[str, dict[str, Any]] = {}
    without_id: list[dict[str, Any]] = []
    with mpr:
        db_version = str(getattr(mpr, "db_version", "") or "")
        for anion in query.anions:
            params = query.search_params(anion)
            origin = {"search": params, "db_version": db_version, "endpoint": query.endpoint}
            docs = _load_partial(partial_dir, anion, origin)
            if docs is None:

                def search(p: dict[str, Any] = params) -> list[dict[str, Any]]:
                    return _as_dicts(mpr.materials.summary.search(**p))

                docs = _with_retries(
                    search,
                    f"the Materials Project search for {anion}-containing materials",
                    query,
                    key,
                    resume,
                )
                _save_partial(partial_dir, anion, origin, docs)
            new = 0
            for doc in docs:
                # Which release of the database the document's values (energy above hull) belong to.
                doc.setdefault("database_version", db_version)
                mid = doc.get("material_id")
                if not mid:
                    without_id.append(doc)
                elif mid not in merged:
                    merged[mid] = doc
                    new += 1
            log.info("Materials Project (database %s): %d documents with %s, %d new", db_version, len(docs), anion, new)
    out = list(merged.values()) + without_id
    log.info("Materials Project: %d documents in all for anions %s", len(out), ", ".join(query.anions))
    return out


def save_documents(docs: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write raw documents as a JSON list, atomically; gzip-compressed if ``path`` ends in ``.gz``."""
    _write_json(Path(path), docs)


def load_documents(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read documents written by :func:`save_documents`."""
    path = Path(path)
    try:
        docs = _read_json(path)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read Materials Project documents from {path}: {exc}") from exc
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise InputError(f"{path} is not a list of Materials Project documents; delete it and rerun to fetch again")
    return docs


def documents_to_candidates(docs: Iterable[Mapping[str, Any]]) -> list[Candidate]:
    """Turn summary documents into candidates (``source="mp"``, id and ``source_ref`` = MP id).

    A document without an id or a usable structure is skipped with a warning naming it.
    ``properties`` holds energy above hull, band gap, formation and total energies (eV/atom,
    band gap in eV), ``spacegroup_symbol``, ``spacegroup_number``, ``is_magnetic`` and the
    ``database_version`` the values came from (None for documents saved without one).
    """
    out = []
    for i, doc in enumerate(docs):
        mid = doc.get("material_id")
        name = mid or f"document #{i} ({doc.get('formula_pretty') or 'no formula'})"
        if not mid:
            log.warning("skipping Materials Project %s: it has no material_id", name)
            continue
        if not doc.get("structure"):
            log.warning("skipping Materials Project document %s: it has no structure", name)
            continue
        try:
            structure = Structure.from_dict(doc["structure"])
            candidate = Candidate(
                material_id=str(mid),
                structure=structure,
                source="mp",
                source_ref=str(mid),
                magnetization=_float_or_none(doc.get("total_magnetization")),
                magnetic_ordering=_ordering(doc.get("ordering")),
                properties=_properties(doc),
            )
        except (InputError, KeyError, TypeError, ValueError) as exc:
            log.warning("skipping Materials Project document %s: %s", name, exc)
            continue
        out.append(candidate)
    return out


# --- key handling ---------------------------------------------------------------------------


def _resolve_api_key(api_key: str | None) -> str:
    key = (api_key or os.environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise SourceError(
            f"source 'mp' needs a Materials Project API key in the environment variable {API_KEY_ENV} "
            f"(get one at {API_KEY_URL}); nothing was queried"
        )
    return key


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "***") if key else text


# --- retries --------------------------------------------------------------------------------


def _with_retries(action: Callable[[], T], what: str, query: MPQuery, key: str, resume: str) -> T:
    """Run ``action``; retry transient failures with exponential backoff; else raise SourceError."""
    attempts = query.max_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # mp-api raises MPRestError, requests errors or plain ones
            message = _describe(exc, key)
            if not _is_transient(exc):
                hint = f"; check the key in {API_KEY_ENV}" if _status(exc) in (401, 403) else ""
                raise SourceError(f"{what} failed: {message}{hint}") from None
            if attempt == attempts:
                raise SourceError(
                    f"{what} failed after {attempts} attempt{'s' if attempts > 1 else ''} "
                    f"(last: {message}); {resume}"
                ) from None
            wait = min(query.backoff_s * 2 ** (attempt - 1), _MAX_BACKOFF_S)
            log.warning("%s failed (attempt %d of %d): %s; retrying in %.2f s", what, attempt, attempts, message, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _is_transient(exc: BaseException) -> bool:
    """Whether another try may succeed: a server hiccup, not a bad request or a refused key."""
    status = _status(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS
    # mp-api re-raises requests' errors as MPRestError(str(error)) inside the except block, so
    # the original error is the context; the heartbeat at construction raises them directly.
    seen = exc
    for _ in range(5):
        if isinstance(
            seen,
            requests.ConnectionError | requests.Timeout | requests.exceptions.RetryError
            | requests.exceptions.ChunkedEncodingError,
        ):
            return True
        if isinstance(seen, requests.exceptions.JSONDecodeError):
            return True  # an error page instead of JSON (e.g. a 503 on the heartbeat)
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            break
        seen = nxt
    return False


def _status(exc: BaseException) -> int | None:
    """The HTTP status in an mp-api error message ("... error status code 503 on URL ...")."""
    match = _STATUS_RE.search(str(exc))
    return int(match.group(1)) if match else None


def _describe(exc: BaseException, key: str) -> str:
    """The error on one line, without the key and without the (very long) query strings."""
    text = _URL_QUERY_RE.sub(r"\1", _scrub(str(exc), key))
    text = " ".join(re.sub(r"\s*with message:\s*", ": ", text).split())
    return text or type(exc).__name__


# --- documents ------------------------------------------------------------------------------


def _as_dicts(docs: Iterable[Any]) -> list[dict[str, Any]]:
    """Documents as plain JSON-ready dicts (the structure as ``Structure.as_dict()``)."""
    out = []
    for doc in docs:
        if hasattr(doc, "model_dump"):  # a document model, should a caller turn those on
            doc = doc.model_dump()
        doc = dict(doc)
        if isinstance(doc.get("structure"), Structure):
            doc["structure"] = doc["structure"].as_dict()
        out.append(json.loads(json.dumps(doc, default=_json_default)))
    return out


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    if hasattr(obj, "value"):  # enums
        return obj.value
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _ordering(value: Any) -> str | None:
    value = getattr(value, "value", value)
    if not value or str(value).lower() == "unknown":
        return None
    return str(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _properties(doc: Mapping[str, Any]) -> dict[str, Any]:
    symmetry = doc.get("symmetry") or {}
    return {
        "energy_above_hull": doc.get("energy_above_hull"),
        "band_gap": doc.get("band_gap"),
        "formation_energy_per_atom": doc.get("formation_energy_per_atom"),
        "energy_per_atom": doc.get("energy_per_atom"),
        "uncorrected_energy_per_atom": doc.get("uncorrected_energy_per_atom"),
        "spacegroup_symbol": symmetry.get("symbol"),
        "spacegroup_number": symmetry.get("number"),
        "is_magnetic": doc.get("is_magnetic"),
        "database_version": doc.get("database_version"),
    }


# --- files ----------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            with gzip.open(tmp, "wt", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))
        else:
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    return json.loads(path.read_text(encoding="utf-8"))


def _partial_path(partial_dir: Path, anion: str) -> Path:
    return partial_dir / f"mp_{anion}.json.gz"


def _load_partial(partial_dir: Path | None, anion: str, origin: dict[str, Any]) -> list[dict[str, Any]] | None:
    """An earlier run's documents for this anion, if fetched with the same search, server and database."""
    if partial_dir is None:
        return None
    path = _partial_path(partial_dir, anion)
    if not path.exists():
        return None
    try:
        saved = _read_json(path)
        # Compare as JSON: the saved search has lists where ``origin`` has tuples.
        same = saved["origin"] == json.loads(json.dumps(origin))
        docs = saved["documents"]
    except (OSError, ValueError, EOFError, KeyError, TypeError):
        log.warning("ignoring unreadable partial Materials Project result %s", path)
        return None
    if not same:
        log.info("not reusing %s: it was fetched with other settings, from another server or database", path)
        return None
    log.info("reusing %d %s documents from %s", len(docs), anion, path)
    return docs


def _save_partial(
    partial_dir: Path | None, anion: str, origin: dict[str, Any], docs: list[dict[str, Any]]
) -> None:
    if partial_dir is not None:
        _write_json(_partial_path(partial_dir, anion), {"origin": origin, "documents": docs})


__all__ = [
    "API_KEY_ENV",
    "DEFAULT_EXCLUDE_ELEMENTS",
    "DEFAULT_FIELDS",
    "MPQuery",
    "documents_to_candidates",
    "fetch_documents",
    "load_documents",
    "save_documents",
]
