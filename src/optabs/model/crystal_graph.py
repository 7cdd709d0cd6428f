"""The study's crystal graph: k-nearest neighbour shells, undirected, and its line graph (numpy).

Definition (alignn's DGL builder ``nearest_neighbor_edges`` + ``build_undirected_edgedata`` in
``alignn/graphs.py`` of usnistgov/alignn, unchanged up to alignn 2026.8.11: the builder behind the
published models, here made exact for ties and symmetric):

1. Neighbours: every periodic image ``j + n`` (``n`` an integer lattice translation) of every
   atom within the search radius ``r`` of atom ``i``, the atom itself excluded (its own other
   images included). ``r`` starts at ``cutoff``. If any atom has fewer than ``k`` neighbours
   within ``r``, the radius grows as in alignn's ``nearest_neighbor_edges``: to the longest
   lattice vector length ``max(a, b, c)`` if ``r`` is shorter than it, else to ``2 r``; repeated
   until every atom has ``k``. (alignn grows it for the whole structure and recurses; since the
   kept shells below depend only on each atom's k-th distance, the graph is the same whatever
   radius the search ends at, as long as every atom has ``k`` neighbours within it.)
2. Shells: ``d_k(i)`` is the distance of atom ``i``'s k-th nearest neighbour; the bond
   ``i -> j + n`` is kept if its length is at most ``d_k(i) + shell_tolerance``. Every
   neighbour of an equidistant shell is kept, so cubic BaZrO3's Ba keeps all 12 O (alignn's
   pure-PyTorch ``build_pure_torch_graph(max_neighbors=k)`` keeps exactly ``k`` per atom and
   breaks ties arbitrarily). The tolerance absorbs rounding between equivalent bonds.
3. Undirected: the kept set is the union of the bonds kept from either end: ``i -> j`` with
   image ``n`` is present exactly when ``j -> i`` with image ``-n`` is, once per direction and
   per image (alignn's DGL builder adds both directions too, but may store a bond twice and
   gives the reverse edge the forward edge's image).
4. Line graph: its nodes are the atom graph's edges; edge ``a -> b`` for every pair of bonds
   ``a = (u -> v)``, ``b = (v -> w)`` (the reverse of ``a`` included, as DGL's
   ``line_graph(shared=True)`` does), over the bonds no longer than ``three_body_cutoff`` (all
   kept bonds when it is not below ``cutoff``, which is the study's setting).

Because the graph depends only on the geometry, the same crystal given as primitive cell,
conventional cell, supercell or with its sites permuted yields the same graph around every atom.

Units: lengths in angstrom. Shapes: ``N`` atoms, ``E`` directed bonds, ``T`` line-graph edges
(triplets). Bond vectors point from the source atom to the image of the destination atom:
``r = x[dst] + images @ lattice - x[src]`` (alignn's convention), with ``lattice`` rows the
lattice vectors. Bond-angle cosines follow alignn's ``torch_bond_cosines``: for ``a = u -> v``,
``b = v -> w``, ``cos = -(r_a . r_b) / (|r_a| |r_b|)``, the angle at ``v``.

:func:`graph_arrays` computes a graph as plain numpy arrays (cheap to send between processes);
:func:`torch_graph` turns them into the ``(g, lg)`` ``TorchGraph`` pair that alignn's
``alignn_atomwise_pure`` consumes, with the data keys and dtypes of ``build_pure_torch_graph``.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The builder's name and version, part of the graph cache key: change the version whenever the
#: graph a given structure and settings produce changes.
BUILDER = "optabs-knn-shells"
BUILDER_VERSION = "1"

#: A grown neighbour search estimated to exceed this many pairs is refused (an isolated atom in a
#: cell of many atoms); ~50 bytes a pair, so about 1 GB.
MAX_NEIGHBOR_PAIRS = 20_000_000

#: Two distinct atoms closer than this (angstrom) are the same point: the structure is broken.
COINCIDENT_A = 1e-6

#: Length of the cgcnn atom feature vectors.
CGCNN_FEATURES = 92


@dataclass(frozen=True)
class GraphArrays:
    """One crystal graph as numpy arrays (see the module docstring for the definition).

    ``atomic_numbers`` (N,) int64; ``atom_features`` (N, 92) float32 cgcnn features;
    ``frac_coords`` (N, 3) as given; ``volume`` cell volume (angstrom^3); ``src``, ``dst`` (E,)
    int64 atom indices; ``images`` (E, 3) int64 lattice translations of ``dst``; ``r`` (E, 3)
    bond vectors (angstrom, float64); ``lg_src``, ``lg_dst`` (T,) int64 indices into the bonds;
    ``cos`` (T,) bond-angle cosines; ``search_radius``: the radius the neighbour search ended
    at (angstrom; ``cutoff`` unless it had to grow).
    """

    atomic_numbers: np.ndarray
    atom_features: np.ndarray
    frac_coords: np.ndarray
    volume: float
    src: np.ndarray
    dst: np.ndarray
    images: np.ndarray
    r: np.ndarray
    lg_src: np.ndarray
    lg_dst: np.ndarray
    cos: np.ndarray
    search_radius: float

    @property
    def num_atoms(self) -> int:
        """N, the number of atoms (nodes)."""
        return int(self.atomic_numbers.shape[0])


def _neighbors(cart: np.ndarray, lattice: np.ndarray, radius: float) -> tuple[np.ndarray, ...]:
    """All pairs within ``radius``: (i, j, images (P, 3) int64, distance), self pairs removed."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    i, j, images, d = find_points_in_spheres(
        cart, cart, r=float(radius), pbc=np.ones(3, dtype=np.int64), lattice=lattice, tol=1e-8
    )
    close = d < COINCIDENT_A
    same = close & (i == j)
    if (close & ~same).any():
        a, b = i[close & ~same][0], j[close & ~same][0]
        raise ValueError(f"sites {a} and {b} coincide (closer than {COINCIDENT_A} A)")
    keep = ~same
    return i[keep], j[keep], np.rint(images[keep]).astype(np.int64), d[keep]


def _check_search_size(n_atoms: int, volume: float, radius: float) -> None:
    pairs = n_atoms * n_atoms * (4.0 / 3.0) * math.pi * radius**3 / volume
    if pairs > MAX_NEIGHBOR_PAIRS:
        raise ValueError(
            f"the neighbour search would need a {radius:.1f} A radius (~{pairs:.2g} pairs) to give every atom "
            "its k neighbours: the structure is too sparse for a k-nearest graph"
        )


def shell_edges(
    lattice: np.ndarray, cart_coords: np.ndarray, k: int, cutoff: float, shell_tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Undirected k-nearest-shell bonds of a periodic structure.

    ``lattice`` (3, 3) rows are the lattice vectors, ``cart_coords`` (N, 3) angstrom. Returns
    ``(src, dst, images, search_radius)``: (E,) int64, (E,) int64, (E, 3) int64, sorted by
    (src, dst, images), each bond once per direction; see the module docstring.
    """
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    cart = np.ascontiguousarray(cart_coords, dtype=np.float64)
    n = cart.shape[0]
    if n == 0:
        raise ValueError("the structure has no atoms")
    volume = abs(float(np.linalg.det(lattice)))
    longest = float(np.linalg.norm(lattice, axis=1).max())
    radius = float(cutoff)
    # A cheaper first search, over the radius that holds ~2k neighbours at the cell's mean density
    # (x1.5): where every atom has k neighbours within it, it holds every bond the full search would
    # keep (all are within d_k + shell_tolerance), so the graph is the same, at ~1/10 of the pairs.
    first = min(radius, 1.5 * (3.0 * 2 * k * volume / n / (4.0 * math.pi)) ** (1.0 / 3.0))
    i, j, images, d = _neighbors(cart, lattice, first + shell_tolerance)
    while np.bincount(i[d <= first], minlength=n).min() < k:
        if first < radius:
            first = radius
        else:
            radius = longest if radius < longest else 2.0 * radius  # alignn's nearest_neighbor_edges
            _check_search_size(n, volume, radius + shell_tolerance)
            first = radius
        i, j, images, d = _neighbors(cart, lattice, first + shell_tolerance)
    # k-th smallest distance per atom: sort by (atom, distance); every atom has >= k entries.
    order = np.argsort(i * (first + shell_tolerance + 1.0) + d)
    counts = np.bincount(i, minlength=n)
    d_k = d[order[np.cumsum(counts) - counts + (k - 1)]]
    kept = d <= d_k[i] + shell_tolerance
    src = np.concatenate((i[kept], j[kept]))
    dst = np.concatenate((j[kept], i[kept]))
    img = np.concatenate((images[kept], -images[kept]))
    # A bond kept from both ends is now there twice: keep one of each (src, dst, image).
    first = _unique_rows(n, src, dst, img)
    return src[first], dst[first], img[first], radius


def _unique_rows(n: int, src: np.ndarray, dst: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Indices of the distinct (src, dst, images) rows, sorted by them."""
    lo = images.min(axis=0)
    width = images.max(axis=0) - lo + 1
    if float(n) * n * float(np.prod(width, dtype=np.float64)) < 2.0**62:
        shifted = images - lo
        key = ((src * n + dst) * width[0] + shifted[:, 0]) * width[1] + shifted[:, 1]
        key = key * width[2] + shifted[:, 2]
        return np.unique(key, return_index=True)[1]
    return np.unique(np.column_stack((src, dst, images)), axis=0, return_index=True)[1]


def line_graph_edges(
    src: np.ndarray, dst: np.ndarray, n_atoms: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Line-graph edges ``(a, b)`` for every bond ``a = u -> v`` and ``b = v -> w``, both allowed.

    ``src``, ``dst`` (E,) bond ends; ``allowed`` (E,) bool or None (all). Returns ``(lg_src,
    lg_dst)``, (T,) int64 indices into the bonds, grouped by ``a`` in bond order.
    """
    ids = np.arange(src.shape[0]) if allowed is None else np.flatnonzero(allowed)
    # The allowed bonds grouped by their source atom (shell_edges returns them so already).
    outgoing = ids if (np.diff(src[ids]) >= 0).all() else ids[np.argsort(src[ids], kind="stable")]
    n_out = np.bincount(src[ids], minlength=n_atoms)
    out_start = np.cumsum(n_out) - n_out
    count = n_out[dst[ids]]
    total = int(count.sum())
    lg_src = np.repeat(ids, count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    lg_dst = outgoing[np.repeat(out_start[dst[ids]], count) + within]
    return lg_src.astype(np.int64), lg_dst.astype(np.int64)


def bond_cosines(r: np.ndarray, lg_src: np.ndarray, lg_dst: np.ndarray) -> np.ndarray:
    """(T,) cosine of the angle at the shared atom ``v`` of bonds ``a = u -> v``, ``b = v -> w``."""
    unit = r / np.maximum(np.linalg.norm(r, axis=1), 1e-12)[:, None]
    return np.clip(-np.einsum("ij,ij->i", unit[lg_src], unit[lg_dst]), -1.0, 1.0)


@functools.lru_cache(maxsize=1)
def _cgcnn_table() -> tuple[np.ndarray, np.ndarray]:
    """(table (Z_max + 1, 92) float32, known (Z_max + 1,) bool) from jarvis's atom_init.json."""
    from jarvis.core.specie import cgcnn_feature_json

    with open(cgcnn_feature_json) as f:
        rows = {int(z): v for z, v in json.load(f).items()}
    table = np.zeros((max(rows) + 1, CGCNN_FEATURES), dtype=np.float32)
    known = np.zeros(max(rows) + 1, dtype=bool)
    for z, v in rows.items():
        table[z], known[z] = v, True
    return table, known


def cgcnn_features(atomic_numbers: np.ndarray) -> np.ndarray:
    """(N, 92) float32 cgcnn atom features (alignn's ``atom_features="cgcnn"``, from jarvis).

    Raises ``ValueError`` for an element without features (alignn silently uses Z = 100's).
    """
    table, known = _cgcnn_table()
    z = np.asarray(atomic_numbers, dtype=np.int64)
    inside = (z >= 0) & (z < len(known))
    missing = sorted({int(x) for x in z[~inside]} | {int(x) for x in z[inside][~known[z[inside]]]})
    if missing:
        raise ValueError(f"no cgcnn atom features for atomic number(s) {missing}")
    return table[z]


def graph_arrays(
    lattice: np.ndarray,
    frac_coords: np.ndarray,
    atomic_numbers: np.ndarray,
    *,
    max_neighbors: int,
    cutoff: float,
    shell_tolerance: float,
    three_body_cutoff: float,
) -> GraphArrays:
    """The crystal graph of one periodic structure (see the module docstring).

    ``lattice`` (3, 3) angstrom, rows the lattice vectors; ``frac_coords`` (N, 3);
    ``atomic_numbers`` (N,). ``max_neighbors`` is k; ``cutoff``, ``shell_tolerance`` and
    ``three_body_cutoff`` are in angstrom.
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    frac = np.asarray(frac_coords, dtype=np.float64).reshape(-1, 3)
    z = np.asarray(atomic_numbers, dtype=np.int64)
    features = cgcnn_features(z)
    cart = frac @ lattice
    src, dst, images, radius = shell_edges(lattice, cart, max_neighbors, cutoff, shell_tolerance)
    r = cart[dst] + images @ lattice - cart[src]
    allowed = None if three_body_cutoff >= cutoff else np.linalg.norm(r, axis=1) <= three_body_cutoff
    lg_src, lg_dst = line_graph_edges(src, dst, len(z), allowed)
    return GraphArrays(
        atomic_numbers=z,
        atom_features=features,
        frac_coords=frac,
        volume=abs(float(np.linalg.det(lattice))),
        src=src,
        dst=dst,
        images=images,
        r=r,
        lg_src=lg_src,
        lg_dst=lg_dst,
        cos=bond_cosines(r, lg_src, lg_dst),
        search_radius=radius,
    )


def torch_graph(arrays: GraphArrays) -> tuple[Any, Any]:
    """The ``(g, lg)`` alignn ``TorchGraph`` pair of ``arrays``, as ``build_pure_torch_graph`` makes it.

    ``g``: ``num_nodes`` N, ``src``/``dst`` (E,) long; ``ndata`` "atom_features" (N, 92),
    "frac_coords" (N, 3), "V" (N,) cell volume, "Z" (N,) long; ``edata`` "r" (E, 3) bond vectors,
    "images" (E, 3) lattice translations. ``lg``: ``num_nodes`` E, ``src``/``dst`` (T,) long;
    ``ndata`` the same "r" and "images" tensors; ``edata`` "h" (T,) bond-angle cosines. Floats
    are torch's default dtype (float32), as alignn's builder makes them; indices are long whatever
    integer type ``arrays`` holds.
    """
    import torch
    from alignn.torch_graph_builder import TorchGraph

    dtype = torch.get_default_dtype()
    n = arrays.num_atoms
    r = torch.from_numpy(arrays.r).to(dtype)
    images = torch.from_numpy(arrays.images).to(dtype)
    g = TorchGraph(
        num_nodes=n,
        src=torch.from_numpy(arrays.src).long(),
        dst=torch.from_numpy(arrays.dst).long(),
        ndata={
            "atom_features": torch.from_numpy(arrays.atom_features).to(dtype),
            "frac_coords": torch.from_numpy(arrays.frac_coords).to(dtype),
            "V": torch.full((n,), arrays.volume, dtype=dtype),
            "Z": torch.from_numpy(arrays.atomic_numbers).long(),
        },
        edata={"r": r, "images": images},
    )
    lg = TorchGraph(
        num_nodes=g.num_edges,
        src=torch.from_numpy(arrays.lg_src).long(),
        dst=torch.from_numpy(arrays.lg_dst).long(),
        ndata={"r": r, "images": images},
        edata={"h": torch.from_numpy(arrays.cos).to(dtype)},
    )
    return g, lg
