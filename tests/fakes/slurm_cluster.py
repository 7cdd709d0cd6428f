"""A private single-node SLURM (munge, slurmctld, slurmd) on loopback, for tests of the slurm profile.

Everything lives in one temporary directory: slurm.conf, gres.conf, a munge key and socket, state,
spool, logs, pid files and ``bin/`` (the slurm clients pinned to this config, see start()). Every
slurm command finds the cluster through ``SLURM_CONF`` and ``PATH`` in the environment this module
hands out (``cluster.env``), so /etc/slurm and the system munge are never touched. Two
partitions: ``cpu`` (default) and ``gpu``. The node has no GPU: it declares one GPU that the
scheduler only counts (gres.conf), so a job's honest ``--gpus=1`` request can be scheduled.

The daemons run in the foreground as children of the test process, each in its own process group.
Stopping kills what was started, by pid: the jobs' processes (found by the private ``SLURM_CONF``
in their environment), then slurmd, slurmctld and munged (each with its process group).
Nothing outside the temporary directory is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("munge", "unmunge", "sbatch", "squeue", "scontrol", "sinfo", "scancel", "srun")


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be run on this machine (the message says why); tests skip on it."""


class SlurmStartError(RuntimeError):
    """The daemons were started but the cluster did not come up (the message holds their logs)."""


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in SBIN:
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def ensure_installed() -> dict[str, str]:
    """Paths of the SLURM and munge programs; installs them with tools/install-system.sh if missing.

    Raises SlurmUnavailable when not root: slurmd must run as root to start jobs, and the
    installation needs root too.
    """
    if os.geteuid() != 0:
        raise SlurmUnavailable("a private SLURM needs root (slurmd starts the jobs); run the SLURM tests as root")
    names = DAEMONS + CLIENTS
    paths = {n: find_binary(n) for n in names}
    if not all(paths.values()):
        missing = sorted(n for n, p in paths.items() if not p)
        proc = subprocess.run(["bash", str(REPO / "tools/install-system.sh")], capture_output=True, text=True)
        paths = {n: find_binary(n) for n in names}
        if not all(paths.values()):
            raise SlurmUnavailable(
                f"missing {', '.join(missing)} and tools/install-system.sh did not install them "
                f"(exit {proc.returncode}): {proc.stderr[-2000:]}"
            )
    return paths


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: What the node declares at least: the size of a cluster node that the rules' own requests fit
#: (VASP: 32 tasks and 64 GB; training: 4 CPUs and 32 GB), so the workflow runs on it as it would
#: on a site's nodes, with nothing capped. slurmd takes the declared size as it is
#: (SlurmdParameters=config_overrides); nothing enforces memory (no cgroups), and the processes
#: share this machine's real cores.
NODE_CPUS, NODE_MEM_MB = 32, 128000


def node_size() -> tuple[int, int]:
    """CPUs and memory (MB) the node declares: this machine's, or :data:`NODE_CPUS` and
    :data:`NODE_MEM_MB` where those are more."""
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return max(os.cpu_count() or 1, NODE_CPUS), max(int(mem_kb / 1024 * 0.8), NODE_MEM_MB)


SLURM_CONF = """\
ClusterName=optabs-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={root}/plugstack.conf
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# finished jobs stay visible to squeue/scontrol for an hour (the executor polls with squeue)
MinJobAge=3600
ReturnToService=2
SchedulerParameters=sched_interval=2
# the node's size is what NodeName says, not what slurmd finds (see NODE_CPUS)
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={host} Default=NO MaxTime=INFINITE State=UP
"""

# One GPU for the scheduler to count. slurmd 22.05 drops a GPU without a File ("Removing
# file-less GPU") and wants a character device; with task/none nothing is confined to it, so
# /dev/null stands in for the device and the GPU is only counted.
GRES_CONF = "NodeName={host} Name=gpu Count=1 File=/dev/null\n"


@dataclass
class SlurmCluster:
    """A running private cluster: ``env`` points slurm commands at it."""

    root: Path
    host: str
    cpus: int
    mem_mb: int
    paths: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)
    daemon_logs: list = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def command(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        """Run a slurm client (``sbatch``, ``squeue``, ...) against this cluster."""
        proc = subprocess.run([self.paths.get(args[0], args[0]), *args[1:]], capture_output=True, text=True,
                              timeout=timeout, env=self.env)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, args, proc.stdout, proc.stderr)
        return proc

    def jobs(self, workdir: Path | None = None) -> list[dict[str, str]]:
        """Every job the controller knows (finished ones too, MinJobAge): ``scontrol show job -o``
        as dicts (JobId, JobName, Partition, JobState, WorkDir, Comment, TresPerJob, ...),
        only those submitted from ``workdir`` if given."""
        out = self.command("scontrol", "show", "job", "-o").stdout
        jobs = []
        for line in out.splitlines():
            if not line.startswith("JobId="):
                continue
            fields = {}
            for token in line.split():
                key, sep, value = token.partition("=")
                if sep:
                    fields[key] = value
            jobs.append(fields)
        if workdir is not None:
            jobs = [j for j in jobs if Path(j.get("WorkDir", "")).resolve() == Path(workdir).resolve()]
        return jobs

    def logs(self) -> str:
        parts = []
        for name in ("munge/munged.log", "log/munged.out", "log/slurmctld.log", "log/slurmctld.out",
                     "log/slurmd.log", "log/slurmd.out"):
            path = self.root / name
            text = path.read_text(errors="replace") if path.exists() else "(absent)"
            parts.append(f"--- {path} (last 3000 characters)\n{text[-3000:]}")
        return "\n".join(parts)


def _wait_for(predicate, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise SlurmStartError(f"{what} within {timeout:.0f} s\n{cluster.logs()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _kill(pid: int, timeout: float = 10) -> None:
    """SIGTERM the process (it reaps its own children), SIGKILL after ``timeout``; then SIGKILL
    what is left of its process group if it led one."""
    try:
        group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            break
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def processes_using(conf: Path) -> list[int]:
    """Pids of processes whose environment holds ``SLURM_CONF=<conf>``: the daemons' children,
    slurmstepd and the jobs they run (all started for this cluster)."""
    marker = f"SLURM_CONF={conf}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
    return pids


def _daemon(cluster: SlurmCluster, name: str, args: list[str]) -> None:
    """Start a daemon in the foreground as a child of this process, in its own process group."""
    out = open(cluster.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 - closed in stop()
    cluster.daemons[name] = subprocess.Popen(
        [cluster.paths[name], *args], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        env=cluster.env, start_new_session=True,
    )
    cluster.daemon_logs.append(out)


def start(paths: dict[str, str], timeout: float = 60) -> SlurmCluster:
    """Start munged, slurmctld and slurmd in a new temporary directory; wait until the node is idle."""
    root = Path(tempfile.mkdtemp(prefix="optabs-slurm-", dir="/tmp"))
    # munged refuses a socket in a directory that others cannot traverse
    root.chmod(0o755)
    for sub in ("munge", "state", "spool", "run", "log"):
        (root / sub).mkdir(mode=0o755)
    host = socket.gethostname().split(".")[0]
    cpus, mem_mb = node_size()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = str(root / "slurm.conf")
    # The executor's job step (snakemake-executor-plugin-slurm-jobstep) runs the rule with a
    # nested `srun` whose environment it strips of every SLURM_* variable, SLURM_CONF included; a
    # real cluster's srun then reads /etc/slurm/slurm.conf. Rather than write there, the jobs find
    # on PATH a `srun` (and the other clients) that sets SLURM_CONF and runs the real one.
    (root / "bin").mkdir(mode=0o755)
    for name in CLIENTS:
        wrapper = root / "bin" / name
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={root}/slurm.conf exec {paths[name]} "$@"\n')
        wrapper.chmod(0o755)
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    cluster = SlurmCluster(root=root, host=host, cpus=cpus, mem_mb=mem_mb, paths=paths, env=env)

    conf = dict(host=host, root=root, cpus=cpus, mem_mb=mem_mb, ctld_port=free_port(), slurmd_port=free_port())
    (root / "slurm.conf").write_text(SLURM_CONF.format(**conf))
    (root / "gres.conf").write_text(GRES_CONF.format(host=host))
    (root / "plugstack.conf").write_text("")
    munge = root / "munge"
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)

    def munge_answers() -> bool:
        sock = munge / "munge.socket"
        return subprocess.run(f"{paths['munge']} -S {sock} -n | {paths['unmunge']} -S {sock}",
                              shell=True, capture_output=True, env=env).returncode == 0

    def controller_up() -> bool:
        return "UP" in cluster.command("scontrol", "ping", check=False).stdout

    def node_idle() -> bool:
        states = cluster.command("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.split()
        return bool(states) and all(s == "idle" for s in states)

    try:
        _daemon(cluster, "munged", ["--foreground", f"--socket={munge}/munge.socket", f"--key-file={key}",
                                    f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
                                    f"--seed-file={munge}/munged.seed"])
        _wait_for(munge_answers, 20, "munged did not answer `munge -n | unmunge`", cluster)
        # -c: start from a clean state (there is none yet)
        _daemon(cluster, "slurmctld", ["-D", "-c", "-i"])
        _wait_for(controller_up, timeout, "slurmctld did not answer `scontrol ping`", cluster)
        _daemon(cluster, "slurmd", ["-D", "-N", host])
        _wait_for(node_idle, timeout, f"node {host} did not become idle in sinfo", cluster)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def stop(cluster: SlurmCluster, remove: bool = True) -> None:
    """Cancel the jobs; kill the jobs' processes, then slurmd, slurmctld and munged, by pid.

    Removes the temporary directory unless ``remove`` is false (to read the logs).
    """
    if "slurmctld" in cluster.daemons and cluster.daemons["slurmctld"].poll() is None:
        with contextlib.suppress(Exception):
            cluster.command("scancel", "--user", "root", timeout=15, check=False)
    # jobs first; the daemons' own helpers (slurmscriptd, in slurmctld's group) go with them
    daemon_groups = {d.pid for d in cluster.daemons.values()}
    for pid in processes_using(cluster.conf):
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) not in daemon_groups:
                _kill(pid, timeout=5)
    for name in ("slurmd", "slurmctld", "munged"):
        daemon = cluster.daemons.get(name)
        if daemon is not None:
            _kill(daemon.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.wait(timeout=10)
    # anything slurmd started while it was shutting down
    for pid in processes_using(cluster.conf):
        _kill(pid, timeout=5)
    for out in cluster.daemon_logs:
        out.close()
    if remove:
        shutil.rmtree(cluster.root, ignore_errors=True)


@contextlib.contextmanager
def slurm_cluster(timeout: float = 60, remove: bool = True):
    """Install (if missing, as root) and start a private SLURM; stop it on exit."""
    paths = ensure_installed()
    cluster = start(paths, timeout=timeout)
    try:
        yield cluster
    finally:
        stop(cluster, remove=remove)
