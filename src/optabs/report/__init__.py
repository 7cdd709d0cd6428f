"""The static HTML report: overview, one page per cluster, the model and every stage's failures.

:func:`build_report` writes a self-contained static site: ``index.html``, one
``cluster_<n>.html`` per cluster, and the figures (:mod:`optabs.plots`) as PNG files in ``img/``
beside them, linked relatively, so the folder opens from ``file://``, can be copied or zipped as
it is, and needs no server and no network (no scripts, no web fonts, CSS inline). It is built in a
temporary folder beside ``outdir`` and renamed into place (:func:`optabs.io.atomic_directory`),
so a crash never leaves a half-written report. :func:`report_stage` is the workflow's entry
point: it reads the earlier stages' files, including every ``failures.csv`` and, where the
workflow screens, the screen stage's folder.

Modules: :mod:`~optabs.report.pages` (HTML helpers and sections, ``style.css``),
:mod:`~optabs.report.build` (:func:`build_report`), :mod:`~optabs.report.stage` (:func:`report_stage`),
:mod:`~optabs.report.screening` (``screening.html``: the screen stage's ranking, shortlist and rounds).
"""

from __future__ import annotations

from optabs.report.build import build_report
from optabs.report.pages import cluster_page_name
from optabs.report.stage import report_stage

__all__ = ["build_report", "cluster_page_name", "report_stage"]
