"""Embed configs from strangers in a worker process with a time and a memory budget.

Checks on a config (:mod:`archi2vec._config_checks`) refuse what is implausible on its face;
what is left can still be costly to build and trace (a 500-layer model, a quadratic buffer in
some ``__init__``), or crash the interpreter. :class:`Sandbox` therefore builds, traces and
embeds each config in a long-lived worker process (a fresh interpreter running
:func:`_main`, talking over a socket pair; POSIX systems only):

* **memory**: the worker lowers its own ``RLIMIT_AS`` to the address space it holds after
  importing torch, transformers and timm plus ``memory_budget`` bytes, so an allocation past
  the budget fails inside the worker instead of swapping the machine (Linux/Unix; elsewhere
  there is no memory bound and a warning says so);
* **time**: the worker builds and traces under :func:`archi2vec.graph`'s wall-clock limit
  (``time_budget`` seconds, :mod:`archi2vec._timeout`); the parent waits
  ``time_budget + KILL_GRACE`` seconds for the answer and then kills the worker, which also
  stops a build stuck in C code where no signal handler runs;
* **data only**: requests and answers cross the pipe as JSON (the config in, the vector as a
  list of floats or an error's class name and reason out), never as pickles, so nothing built
  from a config reaches the parent.

A worker that ran out of memory, was killed or died is replaced on the next request; its
startup (about 3 s of imports) is not counted in the time budget. One worker serves every
request of a :class:`Sandbox`, so the cost per model is the work itself plus a pipe round trip.

Example (no worker starts before the first :meth:`Sandbox.embed`):
    >>> Sandbox(time_budget=60, memory_budget=2 * 2**30)
    Sandbox(time_budget=60 s, memory_budget=2 GiB)
    >>> with Sandbox(time_budget=60) as sandbox:  # doctest: +SKIP
    ...     vector = sandbox.embed(json.load(open("config.json")), model_id="org/model")
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from archi2vec._config_checks import check_sizes
from archi2vec.errors import (
    BudgetExceededError,
    ImplausibleConfigError,
    InvalidArgumentError,
    RemoteCodeRefusedError,
    SandboxError,
    TraceTimeoutError,
    UnsupportedArchitectureError,
)

__all__ = ["Sandbox", "DEFAULT_TIME_BUDGET", "DEFAULT_MEMORY_BUDGET", "KILL_GRACE"]

LOG = logging.getLogger(__name__)

DEFAULT_TIME_BUDGET = 120.0  # seconds to build, trace and embed one model
DEFAULT_MEMORY_BUDGET = 4 * 2**30  # bytes of address space above the worker's after imports
KILL_GRACE = 10.0  # seconds the parent waits beyond the time budget before killing the worker
START_TIMEOUT = 600.0  # seconds a new worker may take to import torch, transformers and timm

# The worker's command line: put this archi2vec first on sys.path, then serve on the socket.
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from archi2vec._sandbox import _main; _main(sys.argv[2:])")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Built once by a new worker before its memory is limited, so that the lazy imports of
# model building (transformers' modeling code, scipy, networkx) are not charged to a model.
_WARM_UP = {"model_type": "vit", "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32, "image_size": 32, "patch_size": 16}

# Errors the worker may report, by class name; anything else is the worker's own failure.
_ERRORS: dict[str, type[UnsupportedArchitectureError]] = {
    cls.__name__: cls for cls in (UnsupportedArchitectureError, RemoteCodeRefusedError,
                                  ImplausibleConfigError)
}


class Sandbox:
    """Build, trace and embed configs in a worker process under a time and memory budget.

    Args:
        time_budget: seconds for one model (building, tracing and embedding it).
        memory_budget: bytes of address space one model may add to the worker's, or None
            for no memory bound.

    Raises:
        InvalidArgumentError: a budget is not positive (a ``ValueError``).
    """

    def __init__(self, *, time_budget: float = DEFAULT_TIME_BUDGET,
                 memory_budget: int | None = DEFAULT_MEMORY_BUDGET):
        if not time_budget > 0:
            raise InvalidArgumentError(f"time_budget must be a positive number of seconds, "
                                       f"got {time_budget!r}")
        if memory_budget is not None and not memory_budget > 0:
            raise InvalidArgumentError(f"memory_budget must be a positive number of bytes or None, "
                                       f"got {memory_budget!r}")
        self.time_budget = float(time_budget)
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._ready = False
        self._finalizer: weakref.finalize | None = None
        self.restarts = 0  # workers replaced after a budget was exceeded or a crash

    def __repr__(self) -> str:
        return (f"Sandbox(time_budget={self.time_budget:g} s, "
                f"memory_budget={_gib(self.memory_budget)})")

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker's life ----------------------------------------------------------------

    def start(self) -> None:
        """Start the worker now (it imports in the background); :meth:`embed` waits for it."""
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        if self._process is not None:
            return
        if os.name != "posix":
            raise SandboxError("the archi2vec sandbox needs a POSIX system (it passes a socket "
                               "to its worker and bounds memory with RLIMIT_AS)")
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])  # the folder holding this archi2vec
        # meta tensors need no compute threads; BLAS pools that fail to grow under the memory
        # limit would spin instead of raising
        env = {**os.environ, **dict.fromkeys(_THREAD_VARS, "1")}
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, root, str(theirs.fileno()),
                 str(self.memory_budget or 0)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
                stdout=subprocess.DEVNULL)  # model code may print; the protocol has its socket
        except OSError as exc:
            ours.close()
            raise SandboxError(f"cannot start the archi2vec worker: {exc}") from exc
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        self._process, self._conn, self._ready = process, conn, False
        self._finalizer = weakref.finalize(self, _stop, process, conn)

    def _wait_ready(self) -> None:
        if self._ready:
            return
        assert self._conn is not None and self._process is not None
        if not self._conn.poll(START_TIMEOUT):
            self._kill()
            raise SandboxError(f"the archi2vec worker did not start within {START_TIMEOUT:g} s")
        try:
            hello = json.loads(self._conn.recv_bytes())
        except (EOFError, OSError, ValueError) as exc:
            code = self._kill()
            raise SandboxError(f"the archi2vec worker exited while starting (exit code {code}); "
                               "run `python -c 'import archi2vec'` to see why") from exc
        if hello.get("error"):
            self._kill()
            raise SandboxError(f"the archi2vec worker could not start: {hello['error']}")
        self._ready = True

    def _kill(self) -> int | None:
        """Stop the worker (whatever it is doing); returns its exit code."""
        process, conn = self._process, self._conn
        self._process, self._conn, self._ready = None, None, False
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return _stop(process, conn)

    def close(self) -> None:
        """Stop the worker. The sandbox starts a new one if it is used again."""
        with self._lock:
            self._kill()

    # -- requests -------------------------------------------------------------------------

    def embed(self, config: Mapping, *, model_id: str, dim: int = 256, method: str = "record",
              library: str | None = None, input_size: int | None = None) -> np.ndarray:
        """:func:`archi2vec.embed` of a config dict, in the worker, under the budgets.

        Args:
            config: a config dict as read from ``config.json`` (transformers or timm).
            model_id: names the model in errors.
            dim, method, library, input_size: as for :func:`archi2vec.embed`.

        Returns:
            The float32 vector of shape ``(dim,)``, identical to :func:`archi2vec.embed`'s.

        Raises:
            ImplausibleConfigError: refused before building (checked here, and again in the worker).
            BudgetExceededError: the model needed more time or memory than its budget, or
                the worker died while building it; the worker is replaced.
            UnsupportedArchitectureError: archi2vec cannot build or trace it (as in-process).
            SandboxError: the worker cannot be started.
        """
        if not isinstance(config, Mapping):
            raise UnsupportedArchitectureError(model_id, f"a config must be a JSON object, got a "
                                               f"{type(config).__name__}")
        check_sizes(config, model_id)  # cheap; refused before anything crosses the pipe
        try:
            request = json.dumps({"config": config, "model_id": model_id, "dim": dim,
                                  "method": method, "library": library,
                                  "input_size": input_size, "timeout": self.time_budget}).encode()
        except (TypeError, ValueError) as exc:
            raise UnsupportedArchitectureError(model_id, f"the config is not plain JSON data: {exc}") from exc
        with self._lock:
            self._spawn()
            self._wait_ready()
            assert self._conn is not None
            try:
                self._conn.send_bytes(request)
                answered = self._conn.poll(self.time_budget + KILL_GRACE)
                raw = self._conn.recv_bytes() if answered else None
            except (EOFError, OSError):  # the worker died on this model
                code = self._kill()
                self.restarts += 1
                raise BudgetExceededError(
                    model_id, f"the worker process died while building or tracing it (exit code "
                              f"{code}; memory budget {_gib(self.memory_budget)})",
                    budget="memory") from None
            if raw is None:
                self._kill()
                self.restarts += 1
                raise BudgetExceededError(
                    model_id, f"building, tracing and embedding it did not finish within "
                              f"{self.time_budget:g} s; the worker was stopped", budget="time")
            answer = json.loads(raw)
            if answer.get("exit"):
                self._kill()
                self.restarts += 1
        return _result(answer, model_id, self)


def _gib(budget: int | None) -> str:
    if budget is None:
        return "none"
    return f"{budget / 2**30:g} GiB" if budget >= 2**30 else f"{budget / 2**20:g} MiB"


def _result(answer: dict, model_id: str, sandbox: Sandbox) -> np.ndarray:
    """The vector of a worker's answer, or the error it reports, raised."""
    if "vector" in answer:
        return np.asarray(answer["vector"], dtype=np.float32)
    kind, reason = answer.get("error"), str(answer.get("reason", ""))
    if kind == "memory":
        raise BudgetExceededError(model_id, f"building or tracing it needed more than the memory "
                                            f"budget ({_gib(sandbox.memory_budget)}): {reason}",
                                  budget="memory")
    if kind == "TraceTimeoutError":
        raise BudgetExceededError(model_id, f"building, tracing and embedding it did not finish "
                                            f"within {sandbox.time_budget:g} s", budget="time")
    if kind in _ERRORS:
        raise _ERRORS[kind](model_id, reason)
    raise SandboxError(f"{model_id}: the archi2vec worker failed: {reason}")


def _stop(process: subprocess.Popen | None, conn: Connection | None) -> int | None:
    if conn is not None:
        conn.close()
    if process is None:
        return None
    if process.poll() is None:
        process.kill()
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # unkillable (uninterruptible sleep): leave it
        return None


# ---------------------------------------------------------------------------------------
# the worker process
# ---------------------------------------------------------------------------------------


def _address_space() -> int | None:
    """Bytes of address space this process holds now (Linux), or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _limit_memory(budget: int | None) -> None:
    if budget is None:
        return
    try:
        import resource  # Unix only
    except ImportError:
        LOG.warning("no memory budget for the archi2vec worker on this platform")
        return
    held = _address_space()
    if held is None:
        LOG.warning("cannot read the worker's address space; no memory budget")
        return
    limit = held + budget
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# how an allocation failure reads once wrapped (archi2vec reports a constructor's error by text)
_OOM_TEXTS = ("MemoryError", "can't allocate memory", "std::bad_alloc")


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is an allocation failure."""
    seen = 0
    node: BaseException | None = exc
    while node is not None and seen < 20:
        text = str(node)
        if isinstance(node, MemoryError) or any(s in text for s in _OOM_TEXTS):
            return True
        node = node.__cause__ or node.__context__
        seen += 1
    return False


def _handle(request: dict) -> dict:
    """Embed one request; the answer as plain data (``exit``: the worker should be replaced)."""
    import archi2vec  # imported once at startup, before the memory limit

    try:
        vector = archi2vec.embed(request["config"], dim=int(request["dim"]),
                                 method=request["method"], library=request["library"],
                                 input_size=request["input_size"],
                                 timeout=float(request["timeout"]))
    except TraceTimeoutError as exc:
        return {"error": "TraceTimeoutError", "reason": exc.reason}
    except UnsupportedArchitectureError as exc:
        if _out_of_memory(exc):
            return {"error": "memory", "reason": exc.reason, "exit": True}
        name = type(exc).__name__ if type(exc).__name__ in _ERRORS else "UnsupportedArchitectureError"
        return {"error": name, "reason": exc.reason}
    except Exception as exc:  # reported to the parent, never raised here
        if _out_of_memory(exc):
            return {"error": "memory", "reason": f"{type(exc).__name__}: {exc}"[:500], "exit": True}
        return {"error": "internal", "reason": f"{type(exc).__name__}: {exc}"[:500]}
    return {"vector": [float(x) for x in vector]}


def _main(argv: Sequence[str]) -> None:
    """The worker's entry point: ``<socket fd> <memory budget in bytes, 0 for none>``."""
    fd, budget = int(argv[0]), int(argv[1])
    _serve(Connection(fd), budget or None)


def _serve(conn: Connection, memory_budget: int | None) -> None:
    """The worker's main loop: import, limit memory, then answer requests until EOF."""
    try:
        import archi2vec
        from archi2vec._compat import import_timm, import_transformers, timm_available

        import_transformers()
        if timm_available():
            try:
                import_timm()
            except ImportError as exc:  # timm models are then unsupported, as in-process
                LOG.warning("timm does not import in the archi2vec worker: %s", exc)
        archi2vec.embed(_WARM_UP, dim=64, method="record")
        _limit_memory(memory_budget)
    except Exception as exc:  # reported to the parent
        conn.send_bytes(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}).encode())
        return
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        answer = _handle(request)
        conn.send_bytes(json.dumps(answer).encode())
        if answer.get("exit"):
            return
