"""The study's crystal graph (k-nearest shells, undirected, grown cutoff): its definition, its
interface to alignn's network, and its invariance to the choice of cell and site order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from optabs.errors import ConfigError
from optabs.model import crystal_graph
from optabs.model import graphs as G
from optabs.model.crystal_graph import BUILDER, BUILDER_VERSION, graph_arrays, shell_edges
from optabs.model.embeddings import embeddings
from optabs.model.graphs import build_graphs
from optabs.model.network import model_config, new_model
from optabs.model.predict import predict
from optabs.model.settings import ModelSettings

SETTINGS = ModelSettings.preset("paper", device="cpu")  # the study's graph: k = 10, 10 A
N_GRID = 51
LOW_SYMMETRY = "POSCAR_Sc2Si2O7_mp-5594.vasp"  # C2/m: 11 atoms primitive, 22 conventional


def mgo() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def bazro3() -> Structure:
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.19), ["Ba", "Zr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])


def arrays(structure: Structure, **overrides):
    settings = {"max_neighbors": 10, "cutoff": 10.0, "shell_tolerance": 1e-3, "three_body_cutoff": 10.0, **overrides}
    return graph_arrays(structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure], **settings)


def edge_set(a) -> set[tuple[int, ...]]:
    return {(int(i), int(j), *map(int, n)) for i, j, n in zip(a.src, a.dst, a.images)}


def cells(structure: Structure, seed: int = 0) -> dict[str, Structure]:
    """The same crystal as primitive cell, conventional cell, 2x1x1 supercell and with its sites shuffled."""
    sga = SpacegroupAnalyzer(structure, symprec=1e-3)
    primitive = sga.get_primitive_standard_structure()
    conventional = sga.get_conventional_standard_structure()
    order = np.random.default_rng(seed).permutation(len(conventional))
    return {
        "primitive": primitive,
        "conventional": conventional,
        "supercell_2x1x1": primitive * (2, 1, 1),
        "permuted": Structure.from_sites([conventional[int(i)] for i in order]),
    }


@pytest.fixture(scope="module")
def network():
    settings = ModelSettings.preset("demo", alignn_layers=2, gcn_layers=2, hidden_features=16, embedding_features=16,
                                    device="cpu")
    torch.manual_seed(7)
    return new_model(model_config(settings, N_GRID))


@pytest.fixture(params=["mgo", "bazro3", "low_symmetry"])
def crystal(request) -> Structure:
    if request.param == "mgo":
        return mgo()
    if request.param == "bazro3":
        return bazro3()
    return Structure.from_file(request.getfixturevalue("shared_data") / LOW_SYMMETRY)


# ---------------------------------------------------------------- the definition


def test_bazro3_ba_keeps_all_twelve_oxygens_and_every_oxygen_is_alike():
    s = bazro3()
    g, _ = build_graphs({"bzo": s}, SETTINGS)[0]["bzo"]
    species = [site.specie.symbol for site in s]
    src, dst = g.src.numpy(), g.dst.numpy()
    ba = species.index("Ba")
    assert sorted(species[j] for j in dst[src == ba]).count("O") == 12  # alignn's pure builder keeps 10
    incoming = np.bincount(dst, minlength=len(s))
    oxygens = [i for i, e in enumerate(species) if e == "O"]
    assert len({int(incoming[i]) for i in oxygens}) == 1
    # Every shell is whole: the bonds of each atom are all its neighbours up to its 10th-nearest distance.
    for i, site in enumerate(s):
        distances = sorted(n.nn_distance for n in s.get_neighbors(site, 10.0))
        expected = sum(d <= distances[9] + 1e-3 for d in distances)
        assert (src == i).sum() >= expected


def test_the_graph_is_symmetric_with_opposite_images_and_bond_vectors(crystal):
    a = arrays(crystal)
    forward = {(int(i), int(j), *map(int, n)): k for k, (i, j, n) in enumerate(zip(a.src, a.dst, a.images))}
    assert len(forward) == len(a.src)  # each bond once per direction and image
    for (i, j, *n), k in forward.items():
        back = forward[(j, i, *(-x for x in n))]
        np.testing.assert_allclose(a.r[back], -a.r[k], atol=1e-12)
    np.testing.assert_array_equal(np.bincount(a.src, minlength=len(crystal)), np.bincount(a.dst, minlength=len(crystal)))


def test_an_isolated_atom_gets_the_grown_cutoff_and_k_neighbours():
    # One Mg in a 30 A cube: none within 10 A; alignn's rule grows the cutoff to max(a, b, c) = 30 A
    # (6 neighbours, still < 10), then doubles it to 60 A.
    lonely = Structure(Lattice.cubic(30.0), ["Mg"], [[0, 0, 0]])
    a = arrays(lonely)
    assert a.search_radius == 60.0
    lengths = np.sort(np.linalg.norm(a.r, axis=1))
    np.testing.assert_allclose(lengths, [30.0] * 6 + [30.0 * 2**0.5] * 12)  # the 10th lies in the shell of 12
    # A cluster of 12 O (2 A apart, 11 neighbours each) and one Mg more than 12 A from all of them in a
    # 20 A cube: the search grows to 20 A for the Mg; the O keep the bonds among them they have alone.
    grid = [[x, y, z] for x in (0.0, 2.0, 4.0, 6.0) for y in (0.0, 2.0) for z in (0.0, 2.0)][:12]
    cluster = Structure(Lattice.cubic(20.0), ["O"] * 12, grid, coords_are_cartesian=True)
    with_mg = Structure(Lattice.cubic(20.0), ["O"] * 12 + ["Mg"], [*grid, [13.0, 11.0, 11.0]], coords_are_cartesian=True)
    alone, b = arrays(cluster), arrays(with_mg)
    assert (alone.search_radius, b.search_radius) == (10.0, 20.0)
    mg_lengths = np.sort(np.linalg.norm(b.r[b.src == 12], axis=1))
    assert len(mg_lengths) >= 10 and mg_lengths[0] > 10.0
    among_o = {e for e in edge_set(b) if e[0] < 12 and e[1] < 12}
    assert among_o == edge_set(alone)


def test_the_cutoff_grows_as_alignn_grows_it():
    # 12 A cube, one atom: 10 A -> max(a, b, c) = 12 A (6 neighbours) -> 24 A.
    src, _, images, radius = shell_edges(np.eye(3) * 12.0, np.zeros((1, 3)), 10, 10.0, 1e-3)
    assert radius == 24.0
    assert len(src) == 18  # 6 at 12 A and the whole shell of 12 at 17 A
    # Enough neighbours within the start: it stays.
    assert shell_edges(np.eye(3) * 3.0, np.zeros((1, 3)), 10, 10.0, 1e-3)[3] == 10.0


def test_the_shells_are_alignn_dgl_builders_up_to_its_arbitrary_tie_breaking(crystal):
    """alignn's ``nearest_neighbor_edges`` keeps ``distance <= d_k`` exactly, so of neighbours equidistant up
    to rounding (1e-16 A) it keeps some; the bonds it keeps (made undirected) are all here, and every extra
    one lies within the tolerance of its atom's k-th distance."""
    from alignn.graphs import nearest_neighbor_edges
    from jarvis.core.atoms import pmg_to_atoms

    edges, _ = nearest_neighbor_edges(pmg_to_atoms(crystal), cutoff=10.0, max_neighbors=10, use_canonize=False)
    theirs = set()
    for (i, j), images in edges.items():
        for n in images:
            n = tuple(round(float(x)) for x in n)
            theirs |= {(int(i), int(j), *n), (int(j), int(i), *(-x for x in n))}
    a = arrays(crystal)
    ours = edge_set(a)
    assert theirs <= ours
    lengths = dict(zip([(int(i), int(j), *map(int, n)) for i, j, n in zip(a.src, a.dst, a.images)],
                       np.linalg.norm(a.r, axis=1)))
    kth = {i: np.sort([d for (s, *_), d in lengths.items() if s == i])[9] for i in range(len(crystal))}
    for edge in ours - theirs:
        i, j = edge[:2]
        assert min(abs(lengths[edge] - kth[i]), abs(lengths[edge] - kth[j])) < 1e-3


def test_the_line_graph_joins_consecutive_bonds_and_honours_the_three_body_cutoff():
    a = arrays(mgo())
    np.testing.assert_array_equal(a.dst[a.lg_src], a.src[a.lg_dst])
    n_out = np.bincount(a.src)
    assert len(a.lg_src) == n_out[a.dst].sum()  # every pair (u -> v, v -> w), the reverse bond included
    cos = -(a.r[a.lg_src] * a.r[a.lg_dst]).sum(1) / np.linalg.norm(a.r[a.lg_src], axis=1) / np.linalg.norm(a.r[a.lg_dst], axis=1)
    np.testing.assert_allclose(a.cos, cos, atol=1e-12)
    short = arrays(mgo(), three_body_cutoff=2.5)  # only the 6 Mg-O bonds (2.1 A) of each atom
    lengths = np.linalg.norm(short.r, axis=1)
    assert (lengths[short.lg_src] <= 2.5).all() and (lengths[short.lg_dst] <= 2.5).all()
    assert len(short.lg_src) == len(mgo()) * 6 * 6
    assert len(short.src) == len(a.src)  # the atom graph keeps every bond


def test_the_graph_has_the_keys_dtypes_and_conventions_of_alignns_builder():
    from alignn.torch_graph_builder import build_pure_torch_graph, torch_bond_cosines
    from jarvis.core.atoms import pmg_to_atoms

    s = bazro3()
    g, lg = build_graphs({"bzo": s}, SETTINGS)[0]["bzo"]
    g0, lg0 = build_pure_torch_graph(pmg_to_atoms(s), two_body_cutoff=10.0, three_body_cutoff=10.0, max_neighbors=10,
                                     atom_features="cgcnn")
    for ours, theirs in ((g, g0), (lg, lg0)):
        assert (ours.src.dtype, ours.dst.dtype) == (theirs.src.dtype, theirs.dst.dtype)
        for data, data0 in ((ours.ndata, theirs.ndata), (ours.edata, theirs.edata)):
            assert set(data) == set(data0)
            for key in data:
                assert data[key].dtype == data0[key].dtype and data[key].shape[1:] == data0[key].shape[1:], key
    for key in ("atom_features", "frac_coords", "V", "Z"):
        torch.testing.assert_close(g.ndata[key], g0.ndata[key])
    assert lg.num_nodes == g.num_edges and lg.ndata["r"] is g.edata["r"]
    # r points from src to the image of dst; h is the cosine at the shared atom, as alignn computes them.
    lattice = torch.tensor(s.lattice.matrix, dtype=torch.float32)
    x = g.ndata["frac_coords"] @ lattice
    torch.testing.assert_close(g.edata["r"], x[g.dst] + g.edata["images"] @ lattice - x[g.src], atol=1e-5, rtol=0)
    torch.testing.assert_close(lg.edata["h"], torch_bond_cosines(g.edata["r"][lg.src], g.edata["r"][lg.dst]), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- invariance of the network's view


def test_cell_choice_and_site_order_do_not_change_embeddings_or_spectra(crystal, network):
    variants = cells(crystal)
    graphs, failures = build_graphs(variants, SETTINGS)
    assert failures == []
    ids = list(variants)
    table = embeddings(network, graphs, ids, batch_size=2)
    assert set(table.layer) == {"alignn_0", "alignn_1", "gcn_0", "gcn_1", "readout"}
    for layer, rows in table.groupby("layer"):
        vectors = np.array(rows.set_index("material_id").loc[ids, "vector"].tolist())
        np.testing.assert_allclose(vectors, np.broadcast_to(vectors[0], vectors.shape), atol=1e-5, rtol=0, err_msg=layer)
    spectra = predict(network, graphs, ids, batch_size=2)
    np.testing.assert_allclose(spectra, np.broadcast_to(spectra[0], spectra.shape), atol=1e-5, rtol=0)
    # Edges per atom are the same in every cell.
    per_atom = {mid: graphs[mid][0].num_edges / graphs[mid][0].num_nodes for mid in ids}
    assert len(set(per_atom.values())) == 1, per_atom


# ---------------------------------------------------------------- many structures, settings, cache key


@pytest.mark.shared_data
def test_the_process_pool_builds_what_one_process_builds(shared_data, monkeypatch):
    files = sorted(shared_data.glob("POSCAR_*.vasp"))[:80]
    structures = {f.stem: Structure.from_file(f) for f in files}
    structures["mixed"] = Structure(Lattice.cubic(4.5), [{"Mg": 0.5, "Ca": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    serial, serial_failures = build_graphs(structures, SETTINGS, workers=1)
    monkeypatch.setattr(G, "MIN_PARALLEL", 1)
    pooled, pooled_failures = build_graphs(structures, SETTINGS, workers=2)
    assert [m for m, _ in serial_failures] == [m for m, _ in pooled_failures] == ["mixed"]
    assert list(serial) == list(pooled) == [f.stem for f in files]
    for mid in serial:
        (g, lg), (g2, lg2) = serial[mid], pooled[mid]
        assert torch.equal(g.src, g2.src) and torch.equal(lg.dst, lg2.dst) and torch.equal(g.edata["r"], g2.edata["r"])
        assert torch.equal(torch.bincount(g.src, minlength=g.num_nodes), torch.bincount(g.dst, minlength=g.num_nodes))
        assert torch.bincount(g.src, minlength=g.num_nodes).min() >= 10


def test_the_shell_tolerance_is_a_checked_setting_and_part_of_the_cache_key():
    key = ModelSettings().graph_key()
    assert (key["builder"], key["builder_version"]) == (BUILDER, BUILDER_VERSION)
    assert key["shell_tolerance"] == 1e-3 and key["max_neighbors"] == 10 and key["cutoff"] == 10.0
    assert ModelSettings(shell_tolerance=0.01).graph_key() != key
    for bad in (0.0, -1e-3, float("nan"), "1e-3"):
        with pytest.raises(ConfigError, match="shell_tolerance"):
            ModelSettings(shell_tolerance=bad)


def test_a_search_grown_too_far_is_refused_with_a_reason_not_a_memory_blow_up(monkeypatch):
    monkeypatch.setattr(crystal_graph, "MAX_NEIGHBOR_PAIRS", 10)  # the lonely atom needs a 60 A search (~34 pairs)
    lonely = Structure(Lattice.cubic(30.0), ["Mg"], [[0, 0, 0]])
    graphs, failures = build_graphs({"lonely": lonely, "mgo": mgo()}, SETTINGS)
    assert list(graphs) == ["mgo"]
    assert failures[0][0] == "lonely" and "too sparse" in failures[0][1]


def test_an_element_without_cgcnn_features_is_named():
    with pytest.raises(ValueError, match=r"atomic number\(s\) \[0, 101\]"):
        crystal_graph.cgcnn_features(np.array([8, 0, 101]))
