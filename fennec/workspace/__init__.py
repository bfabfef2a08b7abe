"""Workspaces: the catalog and the fitted transfer space that ``fennec.recommend()`` ranks with.

A *workspace* is a folder holding the catalog (``catalog.sqlite``: the models with their
archi2vec vectors, written by ``fennec reindex``, and ``fennec import-results``' results) and
the fitted space (``space/``, written by :func:`fit` / ``fennec fit``: the transfer space, the FAISS index of
model vectors, the task index of historical descriptors and ``fit.json``). Two kinds exist:

- ``FENNEC_HOME`` (default ``$HF_HOME/fennec``): your catalog of Hub models;
- the **embedded zoo** (``FENNEC_HOME/zoo``): built on first use, with no network, from the
  zoo that ships with fennec (its models, their ground truth and the targets' training
  splits: package data in a wheel, ``zoo/`` in a source checkout), and refitted
  when either changes (:func:`zoo_workspace`). It is what ``recommend()`` uses when no space
  has been fitted in ``FENNEC_HOME``.

Each fit is written to a new folder ``.space.v<N>`` and published by atomically replacing
the symbolic link ``space`` with one to it. A reader holds a shared lock on the version it
loads (its ``.readers`` file), so a fit never deletes a version being read: older versions
are removed by the fit that replaces them, or by a later one when a reader still held them.
A killed fit leaves only ``.space.*.tmp`` folders, removed by the next fit of that home
(which holds the home's fit lock, so no live fit owns them). A read-only home that is
fitted can still be read (``recommend``).

- :mod:`fennec.workspace.layout`: where things are (file names: :mod:`fennec.constants`);
- :mod:`fennec.workspace.history`: the fitted versions, their publication and their readers' locks;
- :mod:`fennec.workspace.fitting`: :func:`fit`;
- :mod:`fennec.workspace.zoo`: the embedded zoo's workspace (:func:`zoo_workspace`);
- :mod:`fennec.workspace.load`: :class:`Workspace`, and which workspace ``recommend()`` uses.

Example:
    >>> from fennec.workspace import zoo_workspace, Workspace
    >>> ws = Workspace.load(zoo_workspace())   # doctest: +SKIP
    >>> len(ws.index)                          # doctest: +SKIP
    36
"""

from fennec._deprecated import forwarded
from fennec.workspace.fitting import (
    DEFAULT_DIM,
    DEFAULT_MAX_SAMPLES,
    FitSummary,
    describe_tasks,
    fit,
    model_sides,
    results_table,
)
from fennec.workspace.layout import ZOO_HUB, zoo_dir
from fennec.workspace.load import Workspace
from fennec.workspace.zoo import zoo_workspace

__all__ = [
    "DEFAULT_DIM",
    "DEFAULT_MAX_SAMPLES",
    "ZOO_HUB",
    "FitSummary",
    "Workspace",
    "describe_tasks",
    "fit",
    "model_sides",
    "results_table",
    "zoo_dir",
    "zoo_workspace",
]

# What the flat module fennec.workspace held beyond the names above, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.workspace", (
    "fennec.workspace.fitting",
    "fennec.workspace.layout",
    "fennec.workspace.history",
    "fennec.workspace.zoo",
    "fennec.workspace.load",
), renamed={
    "_zoo_ground_truth": "zoo_ground_truth",
    "_resolve_task_dataset": "resolve_task_dataset",
    "_fit_lock": "fit_lock",
    "_versions": "versions",
    "_space_dir": "space_dir",
    "_reading": "reading",
    "_publish": "publish",
    "_remove_leftovers": "remove_leftovers",
    "_read_manifest": "read_manifest",
    "_load_manifest": "load_manifest",
    "_fit": "fit_locked",
    "_check_device": "check_device",
    "_read_catalog": "read_catalog",
    "_workspace_for": "workspace_for",
    "_ZOO_TASK_PREFIX": "ZOO_TASK_PREFIX",
})
