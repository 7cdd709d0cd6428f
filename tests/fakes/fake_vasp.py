#!/usr/bin/env python
"""A stand-in for the VASP executable, for tests of ``optabs.dft.vasp`` (never used in production).

Run in a directory holding INCAR, POSCAR, KPOINTS and POTCAR, it writes what VASP would write and
what pymatgen and custodian read: ``vasprun.xml`` (parameters, structures, electronic steps,
energies, eigenvalues with occupations, a total DOS, for LOPTICS runs the ``<dielectricfunction>``
block, for LEPSILON runs the static dielectric tensors), OUTCAR, OSZICAR, CONTCAR, stdout
(custodian's ``vasp.out``) and, when asked for, CHGCAR/WAVECAR stand-ins. Only the standard library and numpy are imported so one
run takes a fraction of a second.

Which kind of run it is comes from the INCAR, as it would for a person reading it:
LHFCALC -> "hybrid", LOPTICS -> "optics", LEPSILON -> "dfpt", NSW > 0 -> "relax", otherwise
"bandgap".

The model material (all energies in eV):
  * valence band maximum at 0 and conduction band minimum at ``gap_ev``, both at Gamma, so the
    PBEsol gap is ``gap_ev`` whenever the k-mesh contains Gamma;
  * a hybrid run (LHFCALC) opens the gap by ``hybrid_gap_per_aexx * AEXX``;
  * eps(E) = 1 + sum_j w_j / (E_j^2 - E^2 - i*CSHIFT*E), a continuum of Lorentz oscillators
    (one per interband transition energy E_j, from the direct gap up to the highest band the run
    has), weights w_j ~ sqrt(E_j - Eg) exp(-(E_j - Eg)/6 eV) scaled so that eps1(0) per axis is
    1 + (eps_inf - 1) * anisotropy[axis]. This is how LOPTICS builds eps (a sum over transitions
    with a complex shift), so eps2 has its onset at the gap and eps1/eps2 obey Kramers-Kronig;
  * a LEPSILON run (DFPT) writes the clamped-ion dielectric tensor, diagonal per axis
    1 + (e - 1) * anisotropy[axis]: without local fields e = ``eps_inf`` (what LOPTICS gives at
    omega = 0, as in VASP), with local fields in DFT (LRPA = .FALSE.) e = ``eps_inf_dfpt``, with
    Hartree-only local fields (LRPA = .TRUE.) e = 1 + (``eps_inf_dfpt`` - 1) * HARTREE_ONLY; in
    vasprun.xml as ``epsilon`` (with local fields) and ``epsilon_rpa`` (without), in OUTCAR as the
    "MACROSCOPIC STATIC DIELECTRIC TENSOR" blocks pymatgen's Outcar reads;
  * a relaxation scales the lattice by ``relax_scale``; total energy ``energy_per_atom_ev`` per atom.

The WAVECAR stand-in records what a real WAVECAR header holds (NBANDS, ISPIN, ENCUT, the cell, the
k-points) and whether symmetry reduced the mesh (ISYM); a run that reads it (ISTART >= 1 or
ALGO = Eigenval) with other values fails as VASP would ("plane wave coefficients changed"), and
its run-log entry gets ``wavecar_mismatch``: the hybrid must run on the band-gap run's inputs.

Control, for tests: the JSON file named by the environment variable OPTABS_FAKE_VASP_CONTROL::

    {"model": {"gap_ev": 4.5, "eps_inf": 3.0, ...},
     "errors": {"relax": {"kind": "subspace", "runs": 1}}}

``models: {"<folder name>": {"gap_ev": 3.0}}`` overrides the model in directories below a folder
of that name, so the materials of a workflow run get different spectra.
``"sleep": {"seconds": 60, "only_in": "<folder name>"}`` makes every run (below that folder, if
given) wait that long before it starts: a run slow enough to be cancelled from outside.
``errors[<kind of run>]`` makes the first ``runs`` runs of that kind in a directory fail
(``runs: -1``: every run); with ``"only_in": "<folder name>"`` only in directories below a folder
of that name (one material of a workflow run). Error kinds:
  subspace     "WARNING: Sub-Space-Matrix is not hermitian in DAV" in stdout, outputs complete
               (custodian's VaspErrorHandler sets LREAL = False, then PREC = Accurate)
  zbrent       "ZBRENT: fatal error in bracketing" in stdout, exit code 1
               (VaspErrorHandler copies CONTCAR to POSCAR and tightens EDIFF)
  rot_matrix   "Found some non-integer element in rotation matrix" in stdout, no outputs, exit
               code 1 (VaspErrorHandler sets ISYM = 0 for a Gamma-centred mesh)
  unconverged  the last ionic step uses all NELM electronic steps
               (UnconvergedErrorHandler moves ALGO up the ladder Fast -> Normal -> All)
  truncated    vasprun.xml cut off in the middle, as after a crash or a full disk
  crash        no outputs at all, exit code 1
Every run appends what it saw (INCAR, kind, error, MPI placement) to ``fake_vasp_runs.json`` in the
directory.

Under MPI (srun sets SLURM_PROCID and SLURM_NTASKS in every task of a step) rank 0 does the work,
as VASP's rank 0 writes the files; every other rank writes ``fake_vasp_rank<N>.json`` (what SLURM
told it) and exits. ``"require_mpi": {"ntasks": 32}`` makes a run fail, as a broken launch would,
unless it is one task of a SLURM job step (SLURM_STEP_ID set) of exactly that many tasks: rank 0
prints "ERROR: ..." and exits 1 without writing any output.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

CONTROL_ENV = "OPTABS_FAKE_VASP_CONTROL"
RUN_LOG = "fake_vasp_runs.json"
VERSION = "6.4.3"
MAX_KPOINTS = 40  # stands in for the irreducible wedge: keeps the files small

DEFAULT_MODEL = {
    "gap_ev": 4.5,
    "eps_inf": 3.0,
    "eps_inf_dfpt": 2.8,
    "anisotropy": [1.0, 1.0, 1.0],
    "hybrid_gap_per_aexx": 9.0,
    "energy_per_atom_ev": -6.0,
    "relax_scale": 0.99,
    "magnetization": 0.0,
}

ERROR_MESSAGES = {
    "subspace": "WARNING: Sub-Space-Matrix is not hermitian in DAV",
    "zbrent": (
        "ZBRENT: fatal error in bracketing\n     please rerun with smaller EDIFF, or copy CONTCAR\n"
        "     to POSCAR and continue"
    ),
    "rot_matrix": "Found some non-integer element in rotation matrix",
}
HARTREE_ONLY = 0.9  # (eps - 1) with Hartree-only local fields over that with Hartree + xc ones


class FakeVaspError(Exception):
    """An input problem real VASP would stop on: message goes to stdout, exit code 1."""


# ---------------------------------------------------------------- reading inputs


def read_incar(path: Path) -> dict[str, str]:
    tags: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = re.split(r"[!#]", raw, maxsplit=1)[0]
        for part in line.split(";"):
            if "=" in part:
                key, value = part.split("=", 1)
                tags[key.strip().upper()] = value.strip()
    return tags


def is_true(value: str | None) -> bool:
    return bool(value) and value.strip().lstrip(".").upper().startswith("T")


def incar_float(tags: dict[str, str], key: str, default: float) -> float:
    return float(tags[key]) if key in tags else default


def incar_int(tags: dict[str, str], key: str, default: int) -> int:
    return int(float(tags[key])) if key in tags else default


def expand_vector(value: str) -> list[float]:
    """VASP's ``3*0.6 1*5`` notation."""
    out: list[float] = []
    for token in value.split():
        if "*" in token:
            count, val = token.split("*")
            out += [float(val)] * int(count)
        else:
            out.append(float(token))
    return out


def read_poscar(path: Path) -> dict:
    lines = path.read_text().splitlines()
    scale = float(lines[1].split()[0])
    lattice = np.array([[float(x) for x in lines[i].split()[:3]] for i in (2, 3, 4)]) * scale
    species = lines[5].split()
    counts = [int(x) for x in lines[6].split()]
    idx = 7
    if lines[idx].strip()[0] in "sS":
        idx += 1
    cartesian = lines[idx].strip()[0] in "cCkK"
    n = sum(counts)
    coords = np.array([[float(x) for x in lines[idx + 1 + i].split()[:3]] for i in range(n)])
    if cartesian:
        coords = np.linalg.solve(lattice.T, (coords * scale).T).T
    symbols = [s for s, c in zip(species, counts) for _ in range(c)]
    return {"lattice": lattice, "species": species, "counts": counts, "frac": coords, "symbols": symbols}


def read_kpoints(path: Path) -> dict:
    lines = path.read_text().splitlines()
    if int(lines[1].split()[0]) != 0:
        raise FakeVaspError("fake VASP only understands automatic (Gamma / Monkhorst) KPOINTS")
    style = "Gamma" if lines[2].strip()[0] in "gG" else "Monkhorst-Pack"
    divisions = [int(x) for x in lines[3].split()[:3]]
    shift = [float(x) for x in lines[4].split()[:3]] if len(lines) > 4 and lines[4].strip() else [0.0] * 3
    return {"style": style, "divisions": divisions, "usershift": shift}


def read_potcar(path: Path) -> list[dict]:
    out = []
    for block in path.read_text().split("End of Dataset"):
        if not block.strip():
            continue
        header = block.strip().splitlines()[0].strip()
        zval = float(re.search(r"ZVAL\s*=\s*([-\d.]+)", block)[1])
        pomass = float(re.search(r"POMASS\s*=\s*([-\d.]+)", block)[1])
        element = re.search(r"VRHFIN\s*=\s*([A-Za-z]+)", block)[1]
        out.append({"header": header, "zval": zval, "pomass": pomass, "element": element})
    return out


def kpoint_list(kpts: dict) -> np.ndarray:
    """Fractional k-points of the mesh (Gamma first for Gamma-centred meshes), at most MAX_KPOINTS."""
    axes = []
    for n, s in zip(kpts["divisions"], kpts["usershift"]):
        offset = 0.0 if kpts["style"] == "Gamma" or n % 2 == 1 else 0.5
        axes.append(((np.arange(n) + offset + s) / n + 0.5) % 1.0 - 0.5)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    order = np.argsort(np.einsum("ij,ij->i", grid, grid), kind="stable")
    return grid[order][:MAX_KPOINTS]


# ---------------------------------------------------------------- the model


def default_nbands(nelect: float, nions: int, ispin: int, magmom: list[float]) -> int:
    """VASP's default NBANDS (main.F)."""
    nbands = max(int(nelect + 2.5) // 2 + max(nions // 2, 3), int(0.6 * nelect))
    if ispin == 2:
        nbands += max(int((sum(magmom) + 1) // 2), 0)
    return nbands


def band_energies(kfrac: np.ndarray, nbands: int, nocc: int, gap: float) -> np.ndarray:
    """(nk, nbands) eigenvalues: VBM at Gamma = 0, CBM at Gamma = gap."""
    k2 = np.einsum("ij,ij->i", kfrac, kfrac)[:, None]
    b = np.arange(nbands)[None, :]
    valence = -0.8 * (nocc - 1 - b) - 2.0 * k2
    conduction = gap + 0.6 * (b - nocc) + 3.0 * k2
    return np.where(b < nocc, valence, conduction)


def dielectric(energy: np.ndarray, eg: float, e_top: float, eps_inf: np.ndarray, cshift: float):
    """(N, 6) real and imaginary parts, VASP's column order xx yy zz xy yz zx."""
    e_j = np.arange(eg + 0.025, max(e_top, eg + 1.0), 0.05)
    w = np.sqrt(e_j - eg) * np.exp(-(e_j - eg) / 6.0)
    w /= np.sum(w / e_j**2)  # now sum w/E_j^2 = 1, i.e. eps1(0) - 1 = 1 per unit scale
    chi = np.zeros(energy.shape, dtype=complex)
    for start in range(0, e_j.size, 200):  # chunks keep the (N, M) temporaries small
        ej, wj = e_j[start : start + 200], w[start : start + 200]
        chi += np.sum(wj / (ej**2 - energy[:, None] ** 2 - 1j * cshift * energy[:, None]), axis=1)
    eps = np.zeros((energy.size, 6), dtype=complex)
    for axis in range(3):
        eps[:, axis] = 1.0 + (eps_inf[axis] - 1.0) * chi
    return eps.real, eps.imag


# ---------------------------------------------------------------- writing outputs


def fmt_vec(values) -> str:
    return " ".join(f"{v:16.8f}" for v in values)


def xml_param(name: str, value: str) -> str:
    tokens = value.split()
    if len(tokens) == 1 and re.fullmatch(r"\.?(T|F|TRUE|FALSE)\.?", value.upper()):
        return f'  <i type="logical" name="{name}"> {"T" if is_true(value) else "F"} </i>'
    if name in {"MAGMOM", "LDAUU", "LDAUJ"}:
        return f'  <v name="{name}"> {fmt_vec(expand_vector(value))} </v>'
    if all(re.fullmatch(r"-?\d+", t) for t in tokens):
        tag = "i" if len(tokens) == 1 else "v"
        return f'  <{tag} type="int" name="{name}"> {value} </{tag}>'
    try:
        floats = [float(t) for t in tokens]
    except ValueError:
        return f'  <i type="string" name="{name}">{value}</i>'
    tag = "i" if len(floats) == 1 else "v"
    return f'  <{tag} name="{name}"> {fmt_vec(floats)} </{tag}>'


def structure_xml(lattice: np.ndarray, frac: np.ndarray, name: str | None) -> str:
    attr = f' name="{name}"' if name else ""
    rec = np.linalg.inv(lattice).T
    basis = "\n".join(f"     <v>{fmt_vec(row)} </v>" for row in lattice)
    rec_basis = "\n".join(f"     <v>{fmt_vec(row)} </v>" for row in rec)
    pos = "\n".join(f"    <v>{fmt_vec(row)} </v>" for row in frac)
    return (
        f"  <structure{attr}>\n   <crystal>\n    <varray name=\"basis\">\n{basis}\n    </varray>\n"
        f"    <i name=\"volume\"> {abs(np.linalg.det(lattice)):16.8f} </i>\n"
        f"    <varray name=\"rec_basis\">\n{rec_basis}\n    </varray>\n   </crystal>\n"
        f"   <varray name=\"positions\">\n{pos}\n   </varray>\n  </structure>"
    )


def array_rows(rows: np.ndarray, fmt: str = "{:12.4f}") -> str:
    return "\n".join("       <r>" + " ".join(fmt.format(v) for v in row) + " </r>" for row in rows)


def poscar_text(comment: str, lattice: np.ndarray, species, counts, frac) -> str:
    lines = [comment, "1.0"] + [fmt_vec(row) for row in lattice]
    lines += ["  ".join(species), "  ".join(str(c) for c in counts), "Direct"]
    lines += [fmt_vec(row) for row in frac]
    return "\n".join(lines) + "\n"


def mpi_placement() -> dict:
    """Where SLURM put this process: job, step, rank and tasks of the step (None where unset)."""
    names = {"job_id": "SLURM_JOB_ID", "step_id": "SLURM_STEP_ID", "rank": "SLURM_PROCID", "ntasks": "SLURM_NTASKS"}
    return {key: os.environ.get(var) for key, var in names.items()}


def main() -> int:
    cwd = Path.cwd()
    control = {}
    if os.environ.get(CONTROL_ENV):
        control = json.loads(Path(os.environ[CONTROL_ENV]).read_text())
    mpi = mpi_placement()
    if mpi["rank"] not in (None, "0"):
        (cwd / f"fake_vasp_rank{mpi['rank']}.json").write_text(json.dumps(mpi))
        return 0
    model = {**DEFAULT_MODEL, **control.get("model", {})}
    sleep = control.get("sleep", {})
    if sleep and (not sleep.get("only_in") or sleep["only_in"] in cwd.resolve().parts):
        time.sleep(float(sleep["seconds"]))
    for folder, overrides in control.get("models", {}).items():
        if folder in cwd.resolve().parts:  # one material's own model in a workflow run
            model.update(overrides)

    log_path = cwd / RUN_LOG
    runs = json.loads(log_path.read_text()) if log_path.exists() else []

    print(f" vasp.{VERSION} 18Apr23 (build Jan 01 2024 00:00:00) complex  (fake VASP for tests)")
    print(f" running {int(mpi['ntasks'] or 1):4d} mpi-ranks, with    1 threads/rank")
    required = control.get("require_mpi")
    if required and (mpi["step_id"] is None or mpi["ntasks"] != str(required["ntasks"])):
        print(f" ERROR: launched as {mpi}, not as a SLURM job step of {required['ntasks']} tasks")
        return 1
    try:
        for name in ("INCAR", "POSCAR", "POTCAR", "KPOINTS"):
            if not (cwd / name).is_file():
                raise FakeVaspError(f"ERROR: file {name} not found")
        tags = read_incar(cwd / "INCAR")
        kind = (
            "hybrid" if is_true(tags.get("LHFCALC"))
            else "optics" if is_true(tags.get("LOPTICS"))
            else "dfpt" if is_true(tags.get("LEPSILON"))
            else "relax" if incar_int(tags, "NSW", 0) > 0
            else "bandgap"
        )
        spec = control.get("errors", {}).get(kind, {})
        if spec.get("only_in") and spec["only_in"] not in cwd.resolve().parts:
            spec = {}  # the error is meant for another material's folder
        n_previous = sum(1 for r in runs if r["kind"] == kind)
        error = spec.get("kind") if spec and (spec.get("runs", 1) < 0 or n_previous < spec.get("runs", 1)) else None
        runs.append({"run": len(runs) + 1, "kind": kind, "error": error, "incar": tags, "mpi": mpi})
        log_path.write_text(json.dumps(runs, indent=1))
        return run(cwd, tags, kind, error, model)
    except FakeVaspError as exc:
        print(f" {exc}")
        return 1


def run(cwd: Path, tags: dict[str, str], kind: str, error: str | None, model: dict) -> int:
    if error == "crash":
        print(" forrtl: severe (174): SIGSEGV, segmentation fault occurred")
        return 1
    if error == "rot_matrix":
        print(ERROR_MESSAGES[error])
        return 1
    poscar = read_poscar(cwd / "POSCAR")
    potcars = read_potcar(cwd / "POTCAR")
    kpts = read_kpoints(cwd / "KPOINTS")
    if len(potcars) != len(poscar["species"]):
        raise FakeVaspError("ERROR: number of POTCARs does not match the number of species in POSCAR")
    for psp, sp in zip(potcars, poscar["species"]):
        if psp["element"] != sp:
            raise FakeVaspError(f"ERROR: POTCAR {psp['header']} does not match POSCAR species {sp}")

    nions = len(poscar["symbols"])
    nelect = sum(p["zval"] * c for p, c in zip(potcars, poscar["counts"]))
    ispin = incar_int(tags, "ISPIN", 1)
    magmom = expand_vector(tags["MAGMOM"]) if "MAGMOM" in tags else [1.0] * nions
    nbands = incar_int(tags, "NBANDS", default_nbands(nelect, nions, ispin, magmom))
    mag = model["magnetization"] if ispin == 2 else 0.0
    nocc_spin = [int(round((nelect + mag) / 2)), int(round((nelect - mag) / 2))][:ispin]
    if ispin == 1:
        nocc_spin = [int(round(nelect / 2))]
    if nbands < max(nocc_spin) + 1:
        raise FakeVaspError(f"ERROR: TOO FEW BANDS (NBANDS = {nbands}, at least {max(nocc_spin) + 1} needed)")

    icharg = incar_int(tags, "ICHARG", 0 if incar_int(tags, "ISTART", 0) else 2)
    if icharg >= 10 and not (cwd / "CHGCAR").is_file():
        raise FakeVaspError("ERROR: charge density could not be read from file CHGCAR for ICHARG>10")

    kfrac = kpoint_list(kpts)
    nk = len(kfrac)
    if incar_int(tags, "ISTART", 0) >= 1 or tags.get("ALGO", "").upper().startswith("EIGENVAL"):
        wavecar = cwd / "WAVECAR"
        if not wavecar.is_file():
            raise FakeVaspError("ERROR: while reading WAVECAR, WAVECAR not found (ISTART = 1 / ALGO = Eigenval)")
        header = json.loads(wavecar.read_text())
        here = wavecar_header(tags, poscar["lattice"], kfrac, nbands, ispin)
        changed = {key: {"WAVECAR": header.get(key), "run": here[key]} for key in here if not same(header.get(key), here[key])}
        if changed:
            runs = json.loads((cwd / RUN_LOG).read_text())
            runs[-1]["wavecar_mismatch"] = changed
            (cwd / RUN_LOG).write_text(json.dumps(runs, indent=1))
            raise FakeVaspError(
                f"ERROR: while reading WAVECAR, plane wave coefficients changed ({', '.join(sorted(changed))} differ)"
            )

    gap = float(model["gap_ev"])
    if kind == "hybrid":
        gap += float(model["hybrid_gap_per_aexx"]) * incar_float(tags, "AEXX", 0.25)

    lattice0, frac = poscar["lattice"], poscar["frac"]
    lattice = lattice0 * float(model["relax_scale"]) if kind == "relax" else lattice0
    nelm = incar_int(tags, "NELM", 60)
    n_ionic = 3 if kind == "relax" else 1
    e_final = float(model["energy_per_atom_ev"]) * nions
    ionic_energies = [e_final + 0.02 * nions * (n_ionic - 1 - i) for i in range(n_ionic)]
    n_elec = {"relax": 8, "bandgap": 10, "optics": 12, "dfpt": 10, "hybrid": 1}[kind]
    elec_counts = [n_elec] * n_ionic
    if error == "unconverged":
        elec_counts[-1] = nelm

    eig = [band_energies(kfrac, nbands, nocc, gap) for nocc in nocc_spin]
    occ = [(np.arange(nbands)[None, :] < nocc).astype(float) * np.ones((nk, 1)) for nocc in nocc_spin]
    efermi = 0.0 + 1e-3

    if error in ERROR_MESSAGES:
        print(ERROR_MESSAGES[error])

    # OSZICAR and stdout
    osz = []
    for i, (energy, n_e) in enumerate(zip(ionic_energies, elec_counts), start=1):
        osz.append("       N       E                     dE             d eps       ncg     rms          rms(c)")
        for j in range(1, n_e + 1):
            e_j = energy + 10.0 * 0.3 ** j
            line = f"DAV: {j:3d}    {e_j:.12E}   {-0.3 ** j:.5E}   {-0.1 ** j:.5E}   {16 * nk:5d}   {0.1 ** j:.3E}"
            osz.append(line)
            print(line)
        ionic = f"{i:4d} F= {energy:.8E} E0= {energy:.8E}  d E ={energy - ionic_energies[0]:.6E}"
        if ispin == 2:
            ionic += f"  mag= {mag:10.4f}"
        osz.append(ionic)
        print(ionic)
    (cwd / "OSZICAR").write_text("\n".join(osz) + "\n")

    # CONTCAR, CHGCAR, WAVECAR
    (cwd / "CONTCAR").write_text(poscar_text("fake VASP CONTCAR", lattice, poscar["species"], poscar["counts"], frac))
    if is_true(tags.get("LCHARG", "T")):
        (cwd / "CHGCAR").write_text(json.dumps({"fake": "CHGCAR", "ispin": ispin}))
    if is_true(tags.get("LWAVE", "T")):
        (cwd / "WAVECAR").write_text(json.dumps(wavecar_header(tags, lattice, kfrac, nbands, ispin)))

    dfpt = dfpt_tensors(tags, model) if kind == "dfpt" else None
    write_outcar(cwd, tags, nions, nelect, nbands, nk, ionic_energies, mag, efermi, dfpt)

    # vasprun.xml
    nedos = incar_int(tags, "NEDOS", 301)
    xml = vasprun_xml(
        tags=tags, poscar=poscar, potcars=potcars, kpts=kpts, kfrac=kfrac, lattice0=lattice0, lattice=lattice,
        nelect=nelect, nbands=nbands, ispin=ispin, nelm=nelm, ionic_energies=ionic_energies,
        elec_counts=elec_counts, eig=eig, occ=occ, efermi=efermi, nedos=nedos, kind=kind, model=model, dfpt=dfpt,
    )
    if error == "truncated":
        xml = xml[: len(xml) // 2]
    (cwd / "vasprun.xml").write_text(xml)
    print(" writing wavefunctions" if is_true(tags.get("LWAVE", "T")) else " done")
    return 1 if error == "zbrent" else 0


def wavecar_header(tags: dict[str, str], lattice: np.ndarray, kfrac: np.ndarray, nbands: int, ispin: int) -> dict:
    """What a WAVECAR records of the run that wrote it (and whether symmetry reduced its k-points)."""
    return {
        "nbands": nbands, "ispin": ispin, "nkpts": len(kfrac), "encut": incar_float(tags, "ENCUT", 400.0),
        "lattice": np.round(lattice, 8).tolist(), "kpoints": np.round(kfrac, 8).tolist(),
        "symmetry": incar_int(tags, "ISYM", 2) != 0,
    }


def same(a, b) -> bool:
    if isinstance(a, (list, float)) or isinstance(b, (list, float)):
        try:
            return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, atol=1e-6))
        except (TypeError, ValueError):
            return False
    return a == b


def dfpt_tensors(tags: dict[str, str], model: dict) -> dict[str, np.ndarray]:
    """The LEPSILON run's 3x3 tensors: without local fields, and with them (DFT or Hartree only)."""
    anisotropy = np.asarray(model["anisotropy"], dtype=float)
    lrpa = is_true(tags.get("LRPA", "F"))
    with_lf = float(model["eps_inf_dfpt"]) - 1.0
    if lrpa:
        with_lf *= HARTREE_ONLY
    return {
        "no_local_fields": np.diag(1.0 + (float(model["eps_inf"]) - 1.0) * anisotropy),
        "local_fields": np.diag(1.0 + with_lf * anisotropy),
        "local_fields_label": "including local field effects in RPA (Hartree)" if lrpa
        else "including local field effects in DFT",
    }


def write_outcar(cwd, tags, nions, nelect, nbands, nk, ionic_energies, mag, efermi, dfpt=None) -> None:
    lines = [
        f" vasp.{VERSION} 18Apr23 (build Jan 01 2024 00:00:00) complex",
        " running on    1 total cores",
        " POSCAR = fake",
        f"   k-points           NKPTS = {nk:6d}   k-points in BZ     NKDIM = {nk:6d}"
        f"   number of bands    NBANDS= {nbands:6d}",
        f"   number of dos      NEDOS = {incar_int(tags, 'NEDOS', 301):6d}   number of ions     NIONS = {nions:6d}",
        "   total plane-waves  NPLWV =   8000",
        f"   ISPIN  = {incar_int(tags, 'ISPIN', 1):7d}    spin polarized calculation?",
        f"   IBRION = {incar_int(tags, 'IBRION', -1 if incar_int(tags, 'NSW', 0) == 0 else 0):7d}"
        "    ionic relax: 0-MD 1-quasi-New 2-CG",
        f"   NELECT = {nelect:12.4f}    total number of electrons",
        "",
    ]
    if dfpt is not None:
        lines.insert(-1, "   LEPSILON=     T    determine dielectric tensor")
    for energy in ionic_energies:
        lines += [
            f" E-fermi : {efermi:10.4f}     XC(G=0):  -6.0000     alpha+bet : -4.0000",
            "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)",
            "  ---------------------------------------------------",
            f"  free  energy   TOTEN  = {energy:18.8f} eV",
            "",
            f"  energy  without entropy= {energy:18.8f}  energy(sigma->0) = {energy:18.8f}",
            "",
        ]
    if dfpt is not None:
        for label, tensor in (("excluding local field effects", dfpt["no_local_fields"]),
                              (dfpt["local_fields_label"], dfpt["local_fields"])):
            lines += [f" MACROSCOPIC STATIC DIELECTRIC TENSOR ({label})",
                      " -------------------------------------"]
            lines += ["  " + " ".join(f"{v:12.6f}" for v in row) for row in tensor]
            lines += [" -------------------------------------", ""]
    lines += [
        f" number of electron {nelect:15.7f} magnetization {mag:15.7f}",
        "",
        " General timing and accounting informations for this job:",
        " ========================================================",
        "                  Total CPU time used (sec):        1.000",
        "                            User time (sec):        1.000",
        "                          System time (sec):        0.000",
        "                         Elapsed time (sec):        1.000",
        "                   Maximum memory used (kb):    10000.",
        "                   Average memory used (kb):          N/A",
    ]
    (cwd / "OUTCAR").write_text("\n".join(lines) + "\n")


def vasprun_xml(*, tags, poscar, potcars, kpts, kfrac, lattice0, lattice, nelect, nbands, ispin, nelm,
                ionic_energies, elec_counts, eig, occ, efermi, nedos, kind, model, dfpt=None) -> str:
    nions = len(poscar["symbols"])
    parameters = {
        "PREC": "accurate", "ENCUT": tags.get("ENCUT", "400"), "NELECT": f"{nelect:.8f}", "ISPIN": str(ispin),
        "NBANDS": str(nbands), "NELM": str(nelm), "NSW": tags.get("NSW", "0"),
        "IBRION": tags.get("IBRION", "-1" if int(float(tags.get("NSW", "0"))) == 0 else "0"),
        "ISMEAR": tags.get("ISMEAR", "1"), "SIGMA": tags.get("SIGMA", "0.2"), "NEDOS": str(nedos),
        "GGA": tags.get("GGA", "--"), "LHFCALC": tags.get("LHFCALC", "F"), "AEXX": tags.get("AEXX", "0.0"),
        "HFSCREEN": tags.get("HFSCREEN", "0.0"), "LOPTICS": tags.get("LOPTICS", "F"),
        "CSHIFT": tags.get("CSHIFT", "0.1"), "LDAU": tags.get("LDAU", "F"),
    }
    parameters.update({k: v for k, v in tags.items() if k not in parameters})
    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>', "<modeling>", " <generator>",
           '  <i name="program" type="string">vasp </i>', f'  <i name="version" type="string">{VERSION}  </i>',
           '  <i name="subversion" type="string">18Apr23 complex serial fake </i>',
           '  <i name="platform" type="string">LinuxGNU </i>', '  <i name="date" type="string">2025 01 01 </i>',
           '  <i name="time" type="string">12:00:00 </i>', " </generator>", " <incar>"]
    out += [xml_param(k, v) for k, v in tags.items()]
    out += [" </incar>", " <kpoints>", f'  <generation param="{kpts["style"]}">',
            f'   <v type="int" name="divisions"> {" ".join(str(d) for d in kpts["divisions"])} </v>',
            f'   <v name="usershift"> {fmt_vec(kpts["usershift"])} </v>', "  </generation>",
            '  <varray name="kpointlist">']
    out += [f"   <v>{fmt_vec(k)} </v>" for k in kfrac]
    out += ["  </varray>", '  <varray name="weights">']
    out += [f"   <v> {1.0 / len(kfrac):14.10f} </v>" for _ in kfrac]
    out += ["  </varray>", " </kpoints>", " <parameters>", ' <separator name="general">']
    out += [xml_param(k, v) for k, v in parameters.items()]
    out += [" </separator>", " </parameters>", " <atominfo>", f"  <atoms> {nions} </atoms>",
            f"  <types> {len(poscar['species'])} </types>", '  <array name="atoms">',
            '   <dimension dim="1">ion</dimension>', '   <field type="string">element</field>',
            '   <field type="int">atomtype</field>', "   <set>"]
    type_of = {sp: i + 1 for i, sp in enumerate(poscar["species"])}
    out += [f"    <rc><c>{s:2s}</c><c>{type_of[s]:4d}</c></rc>" for s in poscar["symbols"]]
    out += ["   </set>", "  </array>", '  <array name="atomtypes">', '   <dimension dim="1">type</dimension>',
            '   <field type="int">atomspertype</field>', '   <field type="string">element</field>',
            "   <field>mass</field>", "   <field>valence</field>",
            '   <field type="string">pseudopotential</field>', "   <set>"]
    out += [
        f"    <rc><c>{c:4d}</c><c>{sp:2s}</c><c>{p['pomass']:16.8f}</c><c>{p['zval']:16.8f}</c>"
        f"<c>  {p['header']}</c></rc>"
        for sp, c, p in zip(poscar["species"], poscar["counts"], potcars)
    ]
    out += ["   </set>", "  </array>", " </atominfo>", structure_xml(lattice0, poscar["frac"], "initialpos")]
    n_ionic = len(ionic_energies)
    for i, (energy, n_e) in enumerate(zip(ionic_energies, elec_counts)):
        step_lattice = lattice0 + (lattice - lattice0) * (i + 1) / n_ionic
        out.append(" <calculation>")
        for j in range(1, n_e + 1):
            e_j = energy + 10.0 * 0.3 ** j if j < n_e else energy
            # VASP itemises the energy in the last step of an SCF; pymatgen's converged_electronic
            # finds the end of a LEPSILON run's SCF by it
            parts = ([f'    <i name="{name}"> {value:16.8f} </i>' for name, value in
                      (("alphaZ", 0.1), ("ewald", -10.0), ("hartreedc", -5.0), ("eentropy", 0.0))]
                     if j == n_e and dfpt is not None else [])
            out += ["  <scstep>", "   <energy>", *parts, f'    <i name="e_fr_energy"> {e_j:16.8f} </i>',
                    f'    <i name="e_wo_entrp"> {e_j:16.8f} </i>', f'    <i name="e_0_energy"> {e_j:16.8f} </i>',
                    "   </energy>", "  </scstep>"]
        if dfpt is not None:  # the linear-response iterations follow the SCF as further <scstep>s
            for _ in range(4):
                out += ["  <scstep>", "   <energy>", f'    <i name="e_fr_energy"> {energy:16.8f} </i>',
                        f'    <i name="e_wo_entrp"> {energy:16.8f} </i>', f'    <i name="e_0_energy"> {energy:16.8f} </i>',
                        "   </energy>", "  </scstep>"]
        out.append(structure_xml(step_lattice, poscar["frac"], None))
        out += ['  <varray name="forces">'] + ["   <v>" + fmt_vec([0.0] * 3) + " </v>"] * nions + ["  </varray>"]
        out += ['  <varray name="stress">'] + ["   <v>" + fmt_vec([0.0] * 3) + " </v>"] * 3 + ["  </varray>"]
        out += ["  <energy>", f'   <i name="e_fr_energy"> {energy:16.8f} </i>',
                f'   <i name="e_wo_entrp"> {energy:16.8f} </i>', f'   <i name="e_0_energy"> {energy:16.8f} </i>',
                "  </energy>"]
        if i == n_ionic - 1:
            out += final_blocks(tags, kfrac, eig, occ, efermi, nedos, kind, model, ispin)
            if dfpt is not None:
                for name, key in (("epsilon", "local_fields"), ("epsilon_rpa", "no_local_fields")):
                    out += [f'  <varray name="{name}">'] + [f"   <v>{fmt_vec(row)} </v>" for row in dfpt[key]]
                    out += ["  </varray>"]
        out.append(" </calculation>")
    out += [structure_xml(lattice, poscar["frac"], "finalpos"), "</modeling>"]
    return "\n".join(out) + "\n"


def final_blocks(tags, kfrac, eig, occ, efermi, nedos, kind, model, ispin) -> list[str]:
    out = ["  <eigenvalues>", "   <array>", '    <dimension dim="1">band</dimension>',
           '    <dimension dim="2">kpoint</dimension>', '    <dimension dim="3">spin</dimension>',
           "    <field>eigene</field>", "    <field>occ</field>", "    <set>"]
    for s in range(ispin):
        out.append(f'     <set comment="spin {s + 1}">')
        for k in range(len(kfrac)):
            out.append(f'      <set comment="kpoint {k + 1}">')
            out.append(array_rows(np.column_stack([eig[s][k], occ[s][k]]), "{:12.4f}"))
            out.append("      </set>")
        out.append("     </set>")
    out += ["    </set>", "   </array>", "  </eigenvalues>"]

    # total DOS: Gaussian-broadened eigenvalues on NEDOS points
    all_e = np.concatenate([e.ravel() for e in eig])
    grid = np.linspace(all_e.min() - 2.0, all_e.max() + 2.0, nedos)
    out += ["  <dos>", f'   <i name="efermi"> {efermi:12.8f} </i>', "   <total>", "    <array>",
            '     <dimension dim="1">gridpoints</dimension>', '     <dimension dim="2">spin</dimension>',
            "     <field>energy</field>", "     <field>total</field>", "     <field>integrated</field>", "     <set>"]
    for s in range(ispin):
        e = eig[s].ravel()
        dos = np.exp(-(((grid[:, None] - e[None, :]) / 0.1) ** 2)).sum(axis=1) / (0.1 * np.sqrt(np.pi) * len(kfrac))
        idos = np.cumsum(dos) * (grid[1] - grid[0])
        out += [f'      <set comment="spin {s + 1}">', array_rows(np.column_stack([grid, dos, idos])), "      </set>"]
    out += ["     </set>", "    </array>", "   </total>", "  </dos>"]

    if kind == "optics":
        nocc = int(sum(1 for o in occ[0][0] if o > 0.5))
        direct_gap = float(np.min(eig[0][:, nocc] - eig[0][:, nocc - 1]))
        e_top = float(np.max(eig[0][:, -1]) - np.max(eig[0][:, nocc - 1]))
        energy = np.linspace(0.0, 1.2 * e_top, nedos)
        eps_inf = 1.0 + (float(model["eps_inf"]) - 1.0) * np.asarray(model["anisotropy"], dtype=float)
        real, imag = dielectric(energy, direct_gap, e_top, eps_inf, incar_float(tags, "CSHIFT", 0.1))
        for comment in ("density-density", "current-current"):
            out.append(f'  <dielectricfunction comment="{comment}">')
            for part, values in (("imag", imag), ("real", real)):
                out += [f"   <{part}>", "    <array>", '     <dimension dim="1">gridpoints</dimension>',
                        "     <field>energy</field>"]
                out += [f"     <field>{c}</field>" for c in ("xx", "yy", "zz", "xy", "yz", "zx")]
                out += ["     <set>", array_rows(np.column_stack([energy, values]), "{:14.6f}"), "     </set>",
                        "    </array>", f"   </{part}>"]
            out.append("  </dielectricfunction>")
    return out


if __name__ == "__main__":
    sys.exit(main())
