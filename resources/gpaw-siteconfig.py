"""GPAW build configuration for optabs (serial build, system libxc + OpenBLAS).

Used at ``pip install gpaw`` time through ``GPAW_CONFIG=resources/gpaw-siteconfig.py``; needs
``apt-get install -y libxc-dev libopenblas-dev`` (Debian 12). GPAW 26.7.0 rejects the old key
``parallel_python_interpreter``, so only the keys below are set.
"""

mpi = False
compiler = 'gcc'
libraries = ['xc', 'openblas']
