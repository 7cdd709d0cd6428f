"""A loopback stand-in for the Materials Project API, for tests: nothing here reaches the internet.

It answers the requests mp-api 0.46.5 sends for ``MPRester(key, endpoint=url)`` and
``mpr.materials.summary.search(elements=..., exclude_elements=..., num_sites=..., fields=...,
chunk_size=...)`` (checked against the client):

- ``GET /heartbeat`` twice on construction, without the key:
  ``{"db_version": ..., "access_controlled_batch_ids": [], "version": "0.87.3"}``.
- ``GET /materials/summary/?nsites_min=1&nsites_max=40&elements=O&exclude_elements=H,F,...
  &_limit=1000&_fields=material_id,...`` with header ``x-api-key``; then, while
  ``meta.total_doc`` says more are left, the same with ``_skip=<n>`` and ``_limit``.
  No ``_page``, no other routes.

The server filters like the real one (all of ``elements``, none of ``exclude_elements``,
``nsites`` range), pages with ``_skip``/``_limit`` and projects ``_fields``. It is stricter than
the real API on purpose: a query parameter it does not know gets a 400, so a test notices when
the client starts sending something new. Every request is recorded (method, path, query,
headers) for assertions; the access log file holds request lines and statuses, never headers.

The documents are fake but valid: real small structures (pymatgen), ids in MP's pattern,
made-up energies.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

HEARTBEAT = {"db_version": "2025.09.25", "access_controlled_batch_ids": [], "version": "0.87.3"}
SUMMARY_PATH = "/materials/summary/"
MAX_LIMIT = 1000
_SUMMARY_PARAMS = {
    "elements",
    "exclude_elements",
    "nsites_min",
    "nsites_max",
    "_skip",
    "_limit",
    "_fields",
    "_all_fields",
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]  # one value per name (mp-api never repeats a name)
    headers: dict[str, str]  # names lower-cased
    status: int = 0


@dataclass
class _Failure:
    remaining: int
    status: int
    match: dict[str, str]
    echo_key: bool


@dataclass
class FakeMPServer:
    """The fake API on 127.0.0.1 (a free port), in a background thread. Use as a context manager."""

    documents: list[dict[str, Any]]
    access_log: Path | None = None
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ---

    def start(self) -> FakeMPServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-mp-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeMPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    # --- test controls ---

    def fail_next(self, n: int, status: int = 503, *, echo_key: bool = False, **match: str) -> None:
        """Answer the next ``n`` data requests (those whose query has every ``match`` value) with ``status``.

        ``status=0`` closes the connection without any answer (a dropped connection).

        ``echo_key=True`` puts the received ``x-api-key`` into the error text, as a careless
        server might: the client side must scrub it.
        """
        with self._lock:
            self._failures.append(_Failure(n, status, dict(match), echo_key))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    @property
    def data_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path != "/heartbeat"]

    # --- answering ---

    def _injected_failure(self, query: dict[str, str]) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and all(query.get(k) == v for k, v in failure.match.items()):
                    failure.remaining -= 1
                    return failure
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _write_access_log(self, line: str) -> None:
        if self.access_log is not None:
            with self._lock, open(self.access_log, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def summary(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        unknown = sorted(set(query) - _SUMMARY_PARAMS)
        if unknown:
            return 400, {"detail": f"unknown query parameters {unknown}"}
        try:
            skip = int(query.get("_skip", 0))
            limit = int(query.get("_limit", 100))
            nmin = int(query.get("nsites_min", 0))
            nmax = int(query.get("nsites_max", 10**9))
        except ValueError as exc:
            return 400, {"detail": str(exc)}
        if limit > MAX_LIMIT or limit < 0 or skip < 0:
            return 400, {"detail": f"_limit must be 0..{MAX_LIMIT}, _skip >= 0"}
        need = _split(query.get("elements"))
        avoid = _split(query.get("exclude_elements"))
        hits = [
            d
            for d in self.documents
            if need <= set(d["elements"]) and not avoid & set(d["elements"]) and nmin <= d["nsites"] <= nmax
        ]
        page = hits[skip:][:limit]
        wanted = _split(query.get("_fields"))
        if wanted:
            page = [{k: d[k] for k in d if k in wanted} for d in page]
        meta = {
            "api_version": HEARTBEAT["version"],
            "time_stamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "total_doc": len(hits),
            "max_limit": MAX_LIMIT,
            "facet": {},
        }
        return 200, {"data": page, "meta": meta}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeMPServer
    server_version = "fake-mp-api/1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest("GET", parts.path, query, headers)
        self.owner._record(request)
        if parts.path == "/heartbeat":
            status, body = 200, dict(HEARTBEAT)
        elif parts.path == SUMMARY_PATH:
            failure = self.owner._injected_failure(query)
            if failure is not None and failure.status == 0:
                request.status = 0  # drop the connection without an answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if failure is not None:
                detail = f"{HTTPStatus(failure.status).phrase} (injected by the test)"
                if failure.echo_key:
                    detail += f"; key was {headers.get('x-api-key', '')}"
                status, body = failure.status, {"detail": detail}
            elif not headers.get("x-api-key"):
                status, body = 401, {"detail": "No API key found in request"}
            else:
                status, body = self.owner.summary(query)
        else:
            status, body = 404, {"detail": "Not Found"}
        request.status = status
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        # Request line and status only: headers (and so the key) never reach the log.
        self.owner._write_access_log(f"{self.address_string()} [{self.log_date_time_string()}] {format % args}")


def _split(value: str | None) -> set[str]:
    return {v for v in (value or "").split(",") if v}


# --- documents ----------------------------------------------------------------------------------


def summary_doc(
    material_id: str,
    structure: Structure,
    *,
    ordering: str = "NM",
    magmoms: list[float] | None = None,
    band_gap: float = 1.0,
    energy_above_hull: float = 0.0,
    formation_energy_per_atom: float = -1.0,
    energy_per_atom: float = -5.0,
) -> dict[str, Any]:
    """A summary document in the API's JSON shape, for a real structure and made-up numbers."""
    structure = structure.copy()
    magmoms = magmoms if magmoms is not None else [0.0] * len(structure)
    structure.add_site_property("magmom", magmoms)
    sga = SpacegroupAnalyzer(structure, symprec=0.1)
    elements = sorted({el.symbol for el in structure.composition.elements})
    total_mag = float(sum(magmoms))
    doc = {
        "material_id": material_id,
        "formula_pretty": structure.composition.reduced_formula,
        "elements": elements,
        "nelements": len(elements),
        "chemsys": "-".join(elements),
        "nsites": len(structure),
        "volume": structure.volume,
        "density": structure.density,
        "structure": structure.as_dict(),
        "symmetry": {
            "crystal_system": sga.get_crystal_system().capitalize(),
            "symbol": sga.get_space_group_symbol(),
            "number": sga.get_space_group_number(),
            "point_group": sga.get_point_group_symbol(),
            "symprec": 0.1,
            "angle_tolerance": 5.0,
            "version": "2.5.0",
        },
        "ordering": ordering,
        "total_magnetization": abs(total_mag),
        "is_magnetic": ordering != "NM",
        "energy_above_hull": energy_above_hull,
        "band_gap": band_gap,
        "formation_energy_per_atom": formation_energy_per_atom,
        "energy_per_atom": energy_per_atom,
        "uncorrected_energy_per_atom": energy_per_atom + 0.1,
        "deprecated": False,
    }
    return json.loads(json.dumps(doc))  # as it arrives over the wire: lists, not tuples


def _fcc(lattice_a: float) -> Lattice:
    """The primitive cell of a face-centred cubic lattice (conventional edge ``lattice_a``, Å)."""
    h = lattice_a / 2
    return Lattice([[0, h, h], [h, 0, h], [h, h, 0]])


def rocksalt(a: str, b: str, lattice_a: float) -> Structure:
    return Structure(_fcc(lattice_a), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def zincblende(a: str, b: str, lattice_a: float) -> Structure:
    return Structure(_fcc(lattice_a), [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]])


def wurtzite(a: str, b: str, lattice_a: float, lattice_c: float) -> Structure:
    return Structure(
        Lattice.hexagonal(lattice_a, lattice_c),
        [a, a, b, b],
        [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.375], [2 / 3, 1 / 3, 0.875]],
    )


def default_documents() -> list[dict[str, Any]]:
    """A small world: what the default query keeps, and what it must not.

    Kept: MgO, ZnO (oxides), ZnS, BaS (sulfides), CdSe, ZnSe (selenides), La2O2S (an
    oxysulfide found by both the O and the S search). Dropped on the server: NiO (Ni is
    excluded; AFM), Mg(OH)2 (H), a 45-site BaSnO3 supercell (over 40 sites).
    """
    la2o2s = Structure(
        Lattice.hexagonal(4.05, 6.94),
        ["La", "La", "O", "O", "S"],
        [[1 / 3, 2 / 3, 0.709], [2 / 3, 1 / 3, 0.291], [1 / 3, 2 / 3, 0.371], [2 / 3, 1 / 3, 0.629], [0, 0, 0]],
    )
    brucite = Structure(
        Lattice.hexagonal(3.15, 4.77),
        ["Mg", "O", "O", "H", "H"],
        [[0, 0, 0], [1 / 3, 2 / 3, 0.22], [2 / 3, 1 / 3, 0.78], [1 / 3, 2 / 3, 0.42], [2 / 3, 1 / 3, 0.58]],
    )
    perovskite = Structure(
        Lattice.cubic(4.12),
        ["Ba", "Sn", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    perovskite.make_supercell([3, 3, 1])  # 45 sites
    nio = rocksalt("Ni", "O", 4.17)
    nio.make_supercell([[1, 1, 0], [0, 1, 1], [1, 0, 1]])  # room for the antiferromagnetic order
    ni_sign = iter([1.7, -1.7])
    ni_magmoms = [next(ni_sign) if site.specie.symbol == "Ni" else 0.0 for site in nio]
    return [
        summary_doc("mp-1265", rocksalt("Mg", "O", 4.21), band_gap=4.45, formation_energy_per_atom=-3.05),
        summary_doc("mp-2133", wurtzite("Zn", "O", 3.29, 5.30), band_gap=0.73, formation_energy_per_atom=-1.80),
        summary_doc("mp-10695", zincblende("Zn", "S", 5.41), band_gap=2.02),
        summary_doc("mp-1500", rocksalt("Ba", "S", 6.39), band_gap=2.16),
        summary_doc("mp-1070", wurtzite("Cd", "Se", 4.30, 7.01), band_gap=0.51),
        summary_doc("mp-1190", zincblende("Zn", "Se", 5.67), band_gap=1.17),
        summary_doc("mp-4511", la2o2s, band_gap=2.95, formation_energy_per_atom=-3.20),
        summary_doc("mp-19009", nio, ordering="AFM", magmoms=ni_magmoms, band_gap=2.2, energy_above_hull=0.0),
        summary_doc("mp-26", brucite, band_gap=4.6),
        summary_doc("mp-3163", perovskite, band_gap=0.4),
    ]


def extra_oxides(n: int, start: int = 900001) -> list[dict[str, Any]]:
    """``n`` more MgO-like oxides with their own ids and lattice constants (for paging)."""
    return [
        summary_doc(f"mp-{start + i}", rocksalt("Mg", "O", 4.0 + 0.01 * i), band_gap=4.0 + 0.01 * i)
        for i in range(n)
    ]
