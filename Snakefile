# optabs: crystal structures -> optical absorption spectra -> chemical insight.
# Stages: structures -> dft -> spectra -> dataset -> model -> interpret -> screen -> report.
# This file is the table of contents; the rules live in rules/*.smk, the science in optabs.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# The description at the top of `snakemake --report report.zip`.
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/structures.smk"
include: "rules/dft.smk"
include: "rules/spectra.smk"
include: "rules/dataset.smk"
include: "rules/model.smk"
include: "rules/interpret.smk"
include: "rules/screen.smk"
include: "rules/report.smk"


# The default target; each stage also has its own, `all_<stage>`, at the end of its rules file
# (all_structures, all_dft, all_spectra, all_dataset, all_model, all_interpret).
rule all:
    input:
        final_targets(),
    default_target: True
