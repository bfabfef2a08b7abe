"""Deprecated alias of :mod:`fennec.bench.report` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved(
    "fennec._bench_report", ("fennec.bench.report",),
    renamed={"_markdown": "markdown_report", "_plots": "plot_report"},
)
