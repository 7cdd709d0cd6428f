"""GPAW build configuration for optabs (serial build, system libxc + OpenBLAS + FFTW).

Used at ``pip install gpaw`` time through ``GPAW_CONFIG=resources/gpaw-siteconfig.py``; needs
``apt-get install -y libxc-dev libopenblas-dev libfftw3-dev`` (Debian 12). GPAW 26.7.0 rejects
the old key ``parallel_python_interpreter``, so only the keys below are set. Without FFTW, GPAW
runs its plane-wave FFTs through scipy: the optics step of anatase TiO2 took 42.0 s instead of
35.8 s (the engine records which in each result's ``settings.fft``).
"""

mpi = False
compiler = 'gcc'
fftw = True
libraries = ['xc', 'openblas', 'fftw3']
