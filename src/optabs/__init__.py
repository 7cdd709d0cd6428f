"""optabs: crystal structures -> optical absorption spectra -> chemical insight.

The science package behind the Snakemake workflow. Stages (one module each):
structures -> dft -> spectra -> dataset -> model -> interpret -> report.
No module here imports snakemake; scripts/ are the only glue.
"""

__version__ = "0.1.0"
