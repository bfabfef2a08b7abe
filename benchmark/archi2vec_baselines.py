"""Baselines the archi2vec benchmark compares against, and the retrieval metrics.

* ``op_histogram``: counts of each operator (the graph's ``op`` attribute) over a fixed
  vocabulary (every op seen in the corpus), compared by cosine similarity.
* ``param_count``: the parameter count alone; similarity = -|log10 p_a - log10 p_b|.
* ``fennec_graph2vec`` / ``fennec_cluster``: the Fennec paper's archi2vec as its code does it
  (``../shared/docs/metrics-reference.md`` §5): the autograd graph of one forward pass (nodes =
  ``grad_fn`` class names, ``None`` for parameter leaves, edges producer -> consumer),
  embedded with Graph2Vec (attributed, 2 WL iterations, 128 dims, 100 epochs, 1 worker),
  then KMeans (k=10, random_state=0) whose one-hot cluster id is the model feature.
  karateclub cannot be installed here (it pins numpy<1.23 and networkx<2.7), so Graph2Vec
  is re-implemented from karateclub 1.3.3's source: the same WL hashing (md5 of the node
  feature and its sorted out-neighbour features, self-loops added first, base features
  kept) and the same ``gensim`` Doc2Vec call (PV-DBOW: dm=0, window=0, min_count=5,
  sample=1e-4, alpha=0.025, seed=42). Differences: node features are the full grad_fn
  names rather than Fennec's fixed 37-name vocabulary (that list is not public; the full
  names are a superset, which can only help the baseline), and the forward pass runs on
  meta tensors without weights (the autograd graph does not depend on weight values).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

import networkx as nx
import numpy as np

LOG = logging.getLogger("archi2vec.bench.baselines")

FENNEC_KMEANS_K = 10
FENNEC_DIMS = 128


# ---------------------------------------------------------------------------------------
# simple baselines
# ---------------------------------------------------------------------------------------


def op_histograms(graphs: list[nx.DiGraph]) -> np.ndarray:
    """(N, V) operator-count matrix over the vocabulary of all ops in ``graphs``."""
    counts = [Counter(d["op"] for _, d in g.nodes(data=True)) for g in graphs]
    vocab = sorted(set().union(*counts))
    index = {op: i for i, op in enumerate(vocab)}
    out = np.zeros((len(graphs), len(vocab)))
    for row, c in enumerate(counts):
        for op, n in c.items():
            out[row, index[op]] = n
    return out


def cosine_matrix(x: np.ndarray) -> np.ndarray:
    """(N, N) cosine similarities of the rows of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


def param_similarity(num_params: np.ndarray) -> np.ndarray:
    """(N, N) similarity -|log10 p_i - log10 p_j|."""
    logp = np.log10(np.maximum(np.asarray(num_params, dtype=np.float64), 1.0))
    return -np.abs(logp[:, None] - logp[None, :])


# ---------------------------------------------------------------------------------------
# Fennec's Graph2Vec + KMeans
# ---------------------------------------------------------------------------------------


def _wl_document(g: nx.DiGraph, iterations: int = 2) -> list[str]:
    """karateclub's WeisfeilerLehmanHashing(attributed=True).get_graph_features()."""
    g = nx.convert_node_labels_to_integers(g, ordering="sorted")
    g.add_edges_from((n, n) for n in range(g.number_of_nodes()))  # _ensure_integrity
    features = {n: str(d["feature"]) for n, d in g.nodes(data=True)}
    extracted = {n: [features[n]] for n in g.nodes}
    for _ in range(iterations):
        new = {}
        for n in g.nodes:
            nebs = sorted(str(features[m]) for m in g.neighbors(n))
            text = "_".join([str(features[n])] + nebs)
            new[n] = hashlib.md5(text.encode()).hexdigest()
        for n in g.nodes:
            extracted[n].append(new[n])
        features = new
    return [f for n in g.nodes for f in extracted[n]]


def graph2vec(graphs: list[nx.DiGraph], *, dims: int = FENNEC_DIMS, epochs: int = 100,
              seed: int = 42) -> np.ndarray:
    """Graph2Vec embeddings (N, dims) with karateclub 1.3.3's settings as Fennec calls them."""
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    documents = [TaggedDocument(words=_wl_document(g), tags=[str(i)])
                 for i, g in enumerate(graphs)]
    # gensim seeds each vector with Python's salted hash() unless told otherwise; a stable
    # hash makes the baseline reproducible across runs (karateclub leaves the default)
    model = Doc2Vec(documents, vector_size=dims, window=0, min_count=5, dm=0, sample=0.0001,
                    workers=1, epochs=epochs, alpha=0.025, seed=seed, hashfxn=_stable_hash)
    return np.array([model.dv[str(i)] for i in range(len(graphs))])


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def fennec_clusters(embeddings: np.ndarray, k: int = FENNEC_KMEANS_K) -> np.ndarray:
    """KMeans(k, random_state=0) cluster id per row, as Fennec's archi_graph.py."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, random_state=0, n_init=10).fit_predict(embeddings)


def onehot_similarity(labels: np.ndarray) -> np.ndarray:
    """(N, N) 1 where two rows share a cluster, else 0 (the one-hot dot product)."""
    labels = np.asarray(labels)
    return (labels[:, None] == labels[None, :]).astype(np.float64)


# ---------------------------------------------------------------------------------------
# retrieval metrics (ties resolved in expectation / by seeded random permutations)
# ---------------------------------------------------------------------------------------


def loo_nn_accuracy(sim: np.ndarray, families: list[str]) -> tuple[float, int]:
    """Leave-one-out 1-NN family accuracy over queries whose family has >= 2 members.

    Ties for the nearest neighbour count fractionally (the expected accuracy when a tie is
    broken at random), so a similarity with many ties (the cluster one-hot) is not favoured
    or penalised by an arbitrary order. Returns (accuracy, number of queries).
    """
    fam = np.asarray(families)
    sizes = Counter(families)
    hits, queries = 0.0, 0
    for i in range(len(fam)):
        if sizes[fam[i]] < 2:
            continue
        row = np.delete(sim[i], i)
        others = np.delete(fam, i)
        best = row == row.max()
        hits += float(np.mean(others[best] == fam[i]))
        queries += 1
    return hits / queries, queries


def mean_average_precision(sim: np.ndarray, families: list[str], *, repeats: int = 10,
                           seed: int = 0) -> float:
    """mAP of retrieving a query's family among all other models (queries as above).

    Ties are broken by ``repeats`` seeded random permutations and the APs averaged.
    """
    fam = np.asarray(families)
    sizes = Counter(families)
    rng = np.random.default_rng(seed)
    aps = []
    for i in range(len(fam)):
        if sizes[fam[i]] < 2:
            continue
        row = np.delete(sim[i], i)
        rel = np.delete(fam, i) == fam[i]
        total = 0.0
        for _ in range(repeats):
            tiebreak = rng.random(len(row))
            order = np.lexsort((tiebreak, -row))
            hits = rel[order]
            ranks = np.flatnonzero(hits) + 1
            total += float(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        aps.append(total / repeats)
    return float(np.mean(aps))


def chance_nn_accuracy(families: list[str]) -> float:
    """Expected 1-NN accuracy of a random neighbour, over the same queries."""
    sizes = Counter(families)
    n = len(families)
    vals = [(sizes[f] - 1) / (n - 1) for f in families if sizes[f] >= 2]
    return float(np.mean(vals))
