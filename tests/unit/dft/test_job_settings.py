"""What a DFT job hands its engine: the threads Snakemake gave it (GPAW) and the MPI launch its
rule's resources describe (VASP: ``{mpi} -n {tasks} <command>``)."""

import pytest

from optabs.dft.stage import job_settings, make_engine
from optabs.errors import ConfigError


def test_vasp_runs_under_the_jobs_mpi_launcher_with_its_tasks():
    settings = job_settings("vasp", {"command": "vasp_std", "cshift": 0.1}, threads=1, mpi="srun", tasks=32)
    assert settings == {"command": ["srun", "-n", "32", "vasp_std"], "cshift": 0.1}
    assert make_engine("vasp", settings).settings.command == ["srun", "-n", "32", "vasp_std"]
    # a launcher with its own options, and a command given as a list (a full path with a space)
    settings = job_settings("vasp", {"command": ["/opt/vasp 6/vasp_std"]}, 1, mpi="mpirun --bind-to core", tasks=8)
    assert settings["command"] == ["mpirun", "--bind-to", "core", "-n", "8", "/opt/vasp 6/vasp_std"]
    # the default command when the config names none
    assert job_settings("vasp", None, 1, mpi="srun", tasks=4)["command"] == ["srun", "-n", "4", "vasp_std"]


@pytest.mark.parametrize("mpi", [None, "", "  "])
def test_vasp_without_a_launcher_runs_the_command_as_it_is(mpi):
    assert job_settings("vasp", {"command": "vasp_std"}, 1, mpi=mpi, tasks=32) == {"command": "vasp_std"}


@pytest.mark.parametrize("tasks", [None, 0, "32"])
def test_a_launcher_without_tasks_is_refused_naming_the_resource(tasks):
    with pytest.raises(ConfigError, match=r"rule dft_vasp: resource 'mpi' is 'srun' but 'tasks' is .*dft_vasp:tasks"):
        job_settings("vasp", {}, 1, mpi="srun", tasks=tasks)


def test_gpaw_gets_the_jobs_threads_and_no_launcher():
    settings = job_settings("gpaw", {"ecut": 400, "threads": 7}, threads=2, mpi="srun", tasks=32)
    assert settings == {"ecut": 400, "threads": 2}
    # the input section is not changed in place (Snakemake passes the config's own dict)
    section = {"threads": 1}
    job_settings("gpaw", section, threads=3)
    assert section == {"threads": 1}
