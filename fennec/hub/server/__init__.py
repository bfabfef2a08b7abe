"""A local HTTP server that speaks the Hugging Face Hub's interface over folders of repositories.

:class:`HubServer` (:mod:`fennec.hub.server.app`) serves what :mod:`fennec.hub.repo_store`
reads, through the routes of :mod:`fennec.hub.server.routes`, with the faults of
:mod:`fennec.hub.server.faults` injected on demand. From a shell:
``python -m fennec.hub.server --models zoo/hub --datasets zoo/datasets``.
"""

from fennec.hub.repo_store import Repo, RepoStore
from fennec.hub.server.app import HubServer, is_loopback, main
from fennec.hub.server.faults import Fault

__all__ = ["Fault", "HubServer", "Repo", "RepoStore", "is_loopback", "main"]
