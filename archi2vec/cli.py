"""The ``archi2vec`` command: embed, compare and export architectures from the shell.

Usage::

    archi2vec embed SOURCE [--out FILE] [--dim 256]     # JSON (or .npz) with the version
    archi2vec similar A B [--dim 256]                    # cosine similarity, one float
    archi2vec graph SOURCE --out FILE.graphml           # the captured computation graph

SOURCE is a timm model name, a Hub model id, or a ``config.json`` path / model folder.
Known errors (unsupported model, remote code refused, trace timeout, bad arguments) print
one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from archi2vec.build import LIBRARIES
from archi2vec.embed import EMBEDDER_VERSION, MIN_DIM, embed_graph, similarity
from archi2vec.errors import Archi2VecError
from archi2vec.graph import DEFAULT_TIMEOUT, METHODS, graph, write_graphml

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archi2vec", description="A vision architecture as a vector, from its config alone.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--library", choices=LIBRARIES, help="how to read a name (default: guess)")
        p.add_argument("--input-size", type=int, nargs="+", metavar="N",
                       help="H (square), H W or C H W; default from the config")
        p.add_argument("--method", choices=METHODS, default="export",
                       help="graph capture (default export, with the recorder as fallback)")
        p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                       help=f"seconds for graph capture (default {DEFAULT_TIMEOUT:g})")
        p.add_argument("--trust-remote-code", action="store_true",
                       help="allow configs that name Hub code (auto_map)")

    p_embed = sub.add_parser("embed", help="print or save the vector of SOURCE")
    p_embed.add_argument("source")
    p_embed.add_argument("--out", type=Path, help="write JSON here (.npz: numpy archive)")
    p_embed.add_argument("--dim", type=int, default=256, help=f"vector length (>= {MIN_DIM})")
    common(p_embed)

    p_sim = sub.add_parser("similar", help="cosine similarity of two architectures")
    p_sim.add_argument("a")
    p_sim.add_argument("b")
    p_sim.add_argument("--dim", type=int, default=256)
    common(p_sim)

    p_graph = sub.add_parser("graph", help="write the computation graph as GraphML")
    p_graph.add_argument("source")
    p_graph.add_argument("--out", type=Path, required=True)
    common(p_graph)
    return parser


def _graph(source: str, args: argparse.Namespace):
    size = args.input_size
    input_size = None if not size else size[0] if len(size) == 1 else tuple(size)
    return graph(source, input_size=input_size, method=args.method,
                 timeout=args.timeout, library=args.library,
                 trust_remote_code=args.trust_remote_code)


def _run(args: argparse.Namespace) -> int:
    if args.command == "embed":
        g = _graph(args.source, args)
        vector = embed_graph(g, dim=args.dim)
        record = {"source": args.source, "embedder_version": EMBEDDER_VERSION, "dim": args.dim,
                  "graph_method": g.graph["method"], "num_params": g.graph["num_params"],
                  "vector": [float(x) for x in vector]}
        if args.out is None:
            sys.stdout.write(json.dumps(record) + "\n")
        elif args.out.suffix == ".npz":
            np.savez(args.out, vector=vector, embedder_version=EMBEDDER_VERSION,
                     source=args.source)
        else:
            args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        return 0
    if args.command == "similar":
        va = embed_graph(_graph(args.a, args), dim=args.dim)
        vb = embed_graph(_graph(args.b, args), dim=args.dim)
        sys.stdout.write(f"{similarity(va, vb):.6f}\n")
        return 0
    g = _graph(args.source, args)
    write_graphml(g, args.out)
    sys.stdout.write(f"{args.out}: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges "
                     f"({g.graph['method']})\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``archi2vec`` script; returns the exit status.

    Example (two model folders of the repository's zoo; the similarity, then the status):
        >>> main(["similar", "zoo/hub/photolab/vit-tiny-photos", "zoo/hub/photolab/resnet-tiny-photos"])
        0.37...
        0
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except (Archi2VecError, ValueError, OSError) as exc:
        sys.stderr.write(f"archi2vec: error: {exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
