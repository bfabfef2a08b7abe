"""What fennec knows about models and tasks, in one SQLite file (the catalog).

- :mod:`fennec.catalog.store`: :class:`Catalog` (reading and writing its tables),
  :func:`check_catalog` and :func:`repair_catalog`;
- :mod:`fennec.catalog.importers`: the file importers, one per table kind, chosen by a file's
  content (:func:`~fennec.catalog.importers.import_file`);
- :mod:`fennec.catalog.schema`: the schema, as the migrations that build it.
"""

from fennec._deprecated import forwarded
from fennec.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from fennec.catalog.store import (
    ArchitectureEntry,
    Catalog,
    CatalogCheck,
    CatalogModel,
    ImportSummary,
    RepairSummary,
    TransferResult,
    check_catalog,
    iter_batches,
    repair_catalog,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ArchitectureEntry",
    "Catalog",
    "CatalogCheck",
    "CatalogModel",
    "ImportSummary",
    "RepairSummary",
    "TransferResult",
    "check_catalog",
    "iter_batches",
    "repair_catalog",
]

# What the flat module fennec.catalog held beyond the names above, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.catalog", (
    "fennec.catalog.store",
    "fennec.catalog.schema",
))
