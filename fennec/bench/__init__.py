"""``fennec bench``: the end-to-end leave-one-task-out benchmark on the embedded zoo.

- :mod:`fennec.bench.runner`: the benchmark (:func:`run_benchmark`), its data and its methods;
- :mod:`fennec.bench.report`: its markdown tables and plots.
"""

from fennec._deprecated import forwarded
from fennec.bench.runner import (
    ZooData,
    default_out,
    history_curve,
    load_zoo_data,
    run_benchmark,
    score_zoo,
    summarise_curve,
)

__all__ = ["ZooData", "default_out", "history_curve", "load_zoo_data", "run_benchmark", "score_zoo",
           "summarise_curve"]

# What the flat module fennec.bench held beyond the names above, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.bench", (
    "fennec.bench.runner",
    "fennec.bench.report",
), renamed={
    "_markdown": "markdown_report",
    "_plots": "plot_report",
})
