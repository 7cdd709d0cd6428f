"""The Materials Project source against a loopback fake of the API (tests/fakes/mp_server.py).

Nothing here may reach the internet: an autouse fixture refuses every connection that is not to
127.0.0.1 and fails the test that tried.
"""

from __future__ import annotations

import gzip
import logging
import socket

import pytest
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from fakes.mp_server import SUMMARY_PATH, FakeMPServer, default_documents, extra_oxides
from optabs.errors import ConfigError, InputError, SourceError
from optabs.structures import candidates_to_frame
from optabs.structures.mp import (
    DEFAULT_EXCLUDE_ELEMENTS,
    DEFAULT_FIELDS,
    MPQuery,
    documents_to_candidates,
    fetch_documents,
    load_documents,
    save_documents,
)

# mp-api refuses keys that are not 32 characters; this one is easy to spot anywhere.
FAKE_KEY = "optabsFAKEkeyXq7Zr2Lw9Kd4Vn8Tm3Y"
assert len(FAKE_KEY) == 32

# What the default query should bring back from default_documents().
KEPT = {"mp-1265", "mp-2133", "mp-10695", "mp-1500", "mp-1070", "mp-1190", "mp-4511"}


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Refuse (and report) any connection or name lookup that is not the loopback server."""
    blocked: list[object] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            blocked.append(address)
            raise ConnectionRefusedError(f"test blocked a connection to {address}")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            blocked.append(host)
            raise socket.gaierror(f"test blocked a name lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield blocked
    assert not blocked, f"something tried to reach the outside: {blocked}"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment: no key, a home of its own (mp-api may write there)."""
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delenv("PMG_MAPI_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


@pytest.fixture(scope="module")
def documents():
    return default_documents()


@pytest.fixture
def server(env, tmp_path, documents):
    with FakeMPServer(list(documents), access_log=tmp_path / "mp_access.log") as srv:
        # mp-api reads MP_API_ENDPOINT only when it is imported, so the query's endpoint is what
        # counts; set it anyway so that nothing falls back to the public API.
        env.setenv("MP_API_ENDPOINT", srv.url)
        yield srv


def make_query(server: FakeMPServer, **kwargs) -> MPQuery:
    return MPQuery(endpoint=server.url, backoff_s=0.01, **kwargs)


def summary_requests(server: FakeMPServer, anion: str | None = None):
    return [
        r for r in server.data_requests if r.path == SUMMARY_PATH and (anion is None or r.query["elements"] == anion)
    ]


# --- settings ---------------------------------------------------------------------------------


def test_query_defaults_are_the_study_criteria():
    q = MPQuery()
    assert q.anions == ("O", "S", "Se")
    assert q.max_sites == 40
    excluded = set(q.exclude_elements)
    assert {"H", "F", "Cl", "Br", "I", "He", "Xe", "Mn", "Fe", "Co", "Ni", "Ru", "Os", "Po"} <= excluded
    assert {"Pr", "Nd", "Eu", "Gd", "Lu", "Ac", "Th", "U", "Pu", "Lr"} <= excluded
    assert not {"La", "Ce", "O", "S", "Se", "Zn", "Cu", "Ti", "V", "Cr"} & excluded
    assert "material_id" in q.fields and "structure" in q.fields
    assert (q.chunk_size, q.max_retries, q.backoff_s, q.endpoint) == (1000, 5, 1.0, None)


def test_query_validates_and_takes_config_lists():
    q = MPQuery.from_config("mp", {"anions": ["O"], "exclude_elements": ["H"], "max_sites": 20})
    assert q.anions == ("O",) and q.exclude_elements == ("H",)
    with pytest.raises(ConfigError, match="at least one anion"):
        MPQuery(anions=())
    with pytest.raises(ConfigError, match="unknown mp setting"):
        MPQuery.from_config("mp", {"anion": ["O"]})
    with pytest.raises(ConfigError, match="Xx"):
        MPQuery(anions=("O", "Xx"))
    with pytest.raises(ConfigError, match="exclude_elements"):
        MPQuery(anions=("O",), exclude_elements=("O",))
    with pytest.raises(ConfigError, match="max_sites"):
        MPQuery(max_sites=0)
    with pytest.raises(ConfigError, match="material_id"):
        MPQuery(fields=("structure",))


def test_site_prefilter_never_drops_a_conventional_cell_within_the_limit(documents):
    # The server filters on MP's stored (primitive) cell; the conventional cell is never smaller.
    for doc in documents:
        s = Structure.from_dict(doc["structure"])
        conventional = SpacegroupAnalyzer(s, symprec=0.1).get_conventional_standard_structure()
        assert len(conventional) >= len(s.get_primitive_structure()), doc["material_id"]


# --- fetching ---------------------------------------------------------------------------------


def test_fetch_sends_the_filters_to_the_server(server, env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    docs = fetch_documents(make_query(server))

    assert {d["material_id"] for d in docs} == KEPT
    requests = summary_requests(server)
    assert {r.query["elements"] for r in requests} == {"O", "S", "Se"}
    for r in requests:
        assert r.query["exclude_elements"].split(",") == list(DEFAULT_EXCLUDE_ELEMENTS)
        assert (r.query["nsites_min"], r.query["nsites_max"]) == ("1", "40")
        assert r.query["_fields"].split(",") == list(DEFAULT_FIELDS)
        assert r.query["_limit"] == "1000"
    # Only the heartbeat and the summary route are contacted.
    assert {r.path for r in server.requests} == {"/heartbeat", SUMMARY_PATH}


def test_documents_are_plain_json_with_the_fields_asked_for(server, env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    docs = fetch_documents(make_query(server, anions=("O",)))
    mgo = next(d for d in docs if d["material_id"] == "mp-1265")
    # the fields asked for, and the database release they came from (the heartbeat's db_version)
    assert set(mgo) == set(DEFAULT_FIELDS) | {"database_version"}
    assert mgo["database_version"] == "2025.09.25"
    assert isinstance(mgo["structure"], dict)
    assert Structure.from_dict(mgo["structure"]).composition.reduced_formula == "MgO"


def test_pagination_fetches_every_page(server, env):
    server.documents.extend(extra_oxides(7))
    env.setenv("MP_API_KEY", FAKE_KEY)
    docs = fetch_documents(make_query(server, anions=("O",), chunk_size=2))

    expected = {"mp-1265", "mp-2133", "mp-4511"} | {f"mp-{900001 + i}" for i in range(7)}
    assert sorted(d["material_id"] for d in docs) == sorted(expected)
    pages = summary_requests(server, "O")
    assert len(pages) == 5  # 10 documents, 2 per page
    assert [r.query.get("_skip") for r in pages] == [None, "2", "4", "6", "8"]
    assert all(int(r.query["_limit"]) <= 2 for r in pages)


def test_documents_found_by_several_anions_are_merged(server, env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    docs = fetch_documents(make_query(server))
    ids = [d["material_id"] for d in docs]
    assert len(ids) == len(set(ids))
    assert ids.count("mp-4511") == 1  # La2O2S: found by the O and the S search
    seen_by = {
        r.query["elements"]
        for r in summary_requests(server)
        if r.status == 200
    }
    assert seen_by == {"O", "S", "Se"}


def test_retries_after_503_then_succeeds(server, env, caplog):
    env.setenv("MP_API_KEY", FAKE_KEY)
    server.fail_next(2, status=503)
    with caplog.at_level(logging.WARNING, logger="optabs"):
        docs = fetch_documents(make_query(server, anions=("O",)))

    assert {d["material_id"] for d in docs} == {"mp-1265", "mp-2133", "mp-4511"}
    attempts = summary_requests(server, "O")
    assert [r.status for r in attempts] == [503, 503, 200]
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert "attempt 1 of 6" in retries[0].getMessage()


def test_retries_a_500(server, env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    server.fail_next(1, status=500)
    assert fetch_documents(make_query(server, anions=("Se",)))
    assert [r.status for r in summary_requests(server, "Se")] == [500, 200]


def test_retries_a_dropped_connection(server, env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    # urllib3 inside mp-api retries a dropped connection 3 times itself, then gives up;
    # the fourth drop reaches our retry, which asks again.
    server.fail_next(4, status=0)
    assert fetch_documents(make_query(server, anions=("Se",)))
    assert [r.status for r in summary_requests(server, "Se")] == [0, 0, 0, 0, 200]


def test_gives_up_after_max_retries(server, env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    server.fail_next(100, status=503)
    with pytest.raises(SourceError) as err:
        fetch_documents(make_query(server, anions=("O",), max_retries=2))

    message = str(err.value)
    assert "failed after 3 attempts" in message and "503" in message and "rerun" in message
    assert "\n" not in message
    assert len(summary_requests(server, "O")) == 3


def test_unreachable_server_gives_up(env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    with FakeMPServer([]) as srv:
        url = srv.url
    # The port is closed now: connection refused, retried, then a clear error.
    with pytest.raises(SourceError, match="connecting to the Materials Project API failed after 2 attempts"):
        fetch_documents(MPQuery(endpoint=url, max_retries=1, backoff_s=0.01))


def test_a_refused_key_is_not_retried(server, env):
    env.setenv("MP_API_KEY", FAKE_KEY)
    server.fail_next(1, status=403)
    with pytest.raises(SourceError, match="403.*check the key in MP_API_KEY"):
        fetch_documents(make_query(server, anions=("O",)))
    assert len(summary_requests(server)) == 1


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_key_is_one_clear_line_and_queries_nothing(server, env, value):
    if value is not None:
        env.setenv("MP_API_KEY", value)
    with pytest.raises(SourceError) as err:
        fetch_documents(make_query(server))

    message = str(err.value)
    assert "\n" not in message
    assert "MP_API_KEY" in message and "nothing was queried" in message
    assert server.requests == []


def test_a_rerun_resumes_from_the_anions_already_fetched(server, env, tmp_path):
    env.setenv("MP_API_KEY", FAKE_KEY)
    partial = tmp_path / "partial"
    query = make_query(server, max_retries=1)
    server.fail_next(100, status=503, elements="S")
    with pytest.raises(SourceError, match="rerun resumes"):
        fetch_documents(query, partial_dir=partial)
    asked_for_o = len(summary_requests(server, "O"))
    assert asked_for_o == 1

    server.clear_failures()  # the outage is over
    docs = fetch_documents(query, partial_dir=partial)
    assert {d["material_id"] for d in docs} == KEPT
    assert len(summary_requests(server, "O")) == asked_for_o  # O came from the partial file

    # Another query (other settings) does not reuse it.
    fetch_documents(make_query(server, max_sites=30), partial_dir=partial)
    assert len(summary_requests(server, "O")) == asked_for_o + 1


def test_the_network_guard_stops_the_public_api(env, no_internet):
    # Named explicitly: mp-api's default endpoint is fixed when it is first imported, and in a
    # test session that may have happened under a fixture's MP_API_ENDPOINT.
    env.setenv("MP_API_KEY", FAKE_KEY)
    with pytest.raises(SourceError, match="connecting to the Materials Project API failed"):
        fetch_documents(MPQuery(endpoint="https://api.materialsproject.org/", max_retries=0))
    assert no_internet, "the guard saw no attempt to reach the public API"
    no_internet.clear()


# --- the key never leaks ----------------------------------------------------------------------


def test_the_key_appears_in_no_log_output_or_file(server, env, tmp_path, caplog, capfd):
    env.setenv("MP_API_KEY", FAKE_KEY)
    caplog.set_level(logging.DEBUG)  # everything: optabs, mp-api, requests, urllib3
    server.fail_next(1, status=503, echo_key=True)
    docs = fetch_documents(make_query(server), partial_dir=tmp_path / "partial")
    save_documents(docs, tmp_path / "mp_documents.json")
    save_documents(docs, tmp_path / "mp_documents.json.gz")

    # A server that echoes the key into its error text: the error we raise must not carry it.
    server.fail_next(100, status=503, echo_key=True)
    with pytest.raises(SourceError) as err:
        fetch_documents(make_query(server, anions=("S",), max_retries=1))
    assert "***" in str(err.value)
    print(str(err.value))
    logging.getLogger("optabs.test").error("fetch failed: %s", err.value)

    # The server did get it, as the x-api-key header of every data request.
    assert all(r.headers.get("x-api-key") == FAKE_KEY for r in server.data_requests)

    out, errout = capfd.readouterr()
    texts = {
        "stdout": out,
        "stderr": errout,
        "caplog": caplog.text,
        "log records": "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records),
        "exception": str(err.value) + repr(err.value),
    }
    assert len(caplog.records) > 5  # DEBUG logging really was on (urllib3 at least)
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        texts[str(path)] = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace")
    access_log = texts[str(tmp_path / "mp_access.log")]
    assert "GET /materials/summary/" in access_log and "x-api-key" not in access_log
    leaks = [name for name, text in texts.items() if FAKE_KEY in text]
    assert not leaks, f"the API key leaked into {leaks}"


# --- files and candidates ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mp_documents.json", "mp_documents.json.gz"])
def test_save_and_load_round_trip(documents, tmp_path, name):
    path = tmp_path / "deep" / name
    save_documents(documents, path)
    assert load_documents(path) == documents
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left behind


def test_load_rejects_a_broken_file(tmp_path):
    path = tmp_path / "mp_documents.json"
    path.write_text('{"not": "a list"}')
    with pytest.raises(InputError, match="delete it and rerun"):
        load_documents(path)
    path.write_text("[{")
    with pytest.raises(InputError, match="cannot read"):
        load_documents(path)


def test_documents_to_candidates(documents, caplog):
    docs = [dict(d) for d in documents]
    docs.append({"material_id": "mp-404", "formula_pretty": "ZnO"})  # no structure
    docs.append({"formula_pretty": "CdS", "structure": documents[0]["structure"]})  # no id
    unknown = dict(documents[0], material_id="mp-77", ordering="Unknown", total_magnetization=None)
    docs.append(unknown)
    with caplog.at_level(logging.WARNING, logger="optabs"):
        candidates = documents_to_candidates(docs)

    by_id = {c.material_id: c for c in candidates}
    assert set(by_id) == {d["material_id"] for d in documents} | {"mp-77"}
    warnings = [r.getMessage() for r in caplog.records]
    assert any("mp-404" in w and "no structure" in w for w in warnings)
    assert any("CdS" in w and "no material_id" in w for w in warnings)

    mgo = by_id["mp-1265"]
    assert (mgo.source, mgo.source_ref, mgo.formula) == ("mp", "mp-1265", "MgO")
    assert mgo.magnetic_ordering == "NM" and mgo.magnetization == 0.0
    assert mgo.properties == {
        "energy_above_hull": 0.0,
        "band_gap": 4.45,
        "formation_energy_per_atom": -3.05,
        "energy_per_atom": -5.0,
        "uncorrected_energy_per_atom": -4.9,
        "spacegroup_symbol": "Fm-3m",
        "spacegroup_number": 225,
        "is_magnetic": False,
        "database_version": None,  # a document not fetched by fetch_documents has none
    }
    nio = by_id["mp-19009"]
    assert nio.magnetic_ordering == "AFM" and nio.magnetic_data == "AFM"
    assert by_id["mp-77"].magnetic_ordering is None and by_id["mp-77"].magnetization is None

    frame = candidates_to_frame(candidates)
    assert len(frame) == len(candidates) and set(frame["source"]) == {"mp"}


def test_fetched_documents_become_candidates(server, env, tmp_path):
    env.setenv("MP_API_KEY", FAKE_KEY)
    path = tmp_path / "mp_documents.json.gz"
    save_documents(fetch_documents(make_query(server)), path)
    candidates = documents_to_candidates(load_documents(path))
    assert {c.material_id for c in candidates} == KEPT
    # the database release the server's heartbeat reported travels with every document's values
    assert {c.properties["database_version"] for c in candidates} == {"2025.09.25"}
