from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tests.helpers import tiny_random_model
from veilbench.evaluation.identification import EmbeddingCache, Gallery, msr, rank1, topk_search


def test_chunked_topk_equals_full_search():
    g = torch.Generator().manual_seed(0)
    gallery = F.normalize(torch.randn(1000, 32, generator=g), dim=1)
    queries = F.normalize(torch.randn(50, 32, generator=g), dim=1)
    s_full, i_full = (queries @ gallery.T).topk(5, dim=1)
    s, i = topk_search(queries, gallery, k=5, chunk=77)
    assert torch.equal(i, i_full) and torch.allclose(s, s_full)


def test_msr_and_rank1_on_a_hand_built_gallery():
    # Gallery: alice at e0, bob at e1, a distractor at e2.
    gallery = Gallery(torch.eye(3), ["alice", "bob", "carol"])
    original = torch.tensor([[1.0, 0.1, 0], [0.9, 0, 0.2], [0.1, 1.0, 0]])  # alice, alice, bob
    protected = torch.tensor([[1.0, 0, 0], [0.1, 0.2, 1.0], [0.2, 0.9, 0]])  # alice, carol, bob
    top_o, top_p = gallery.top1(original), gallery.top1(protected)
    assert list(top_o) == ["alice", "alice", "bob"]
    assert msr(top_p, top_o) == 2 / 3
    assert rank1(top_p, ["alice", "alice", "bob"]) == 2 / 3
    # MSR compares with the ORIGINAL's answer, not the truth: a wrong original answered the
    # same way still counts as a match.
    assert msr(["carol"], ["carol"]) == 1.0 and rank1(["carol"], ["alice"]) == 0.0


def test_embedding_cache_reuses_and_keys_by_model(tmp_path):
    model = tiny_random_model()  # random weights: plumbing only
    images = np.random.default_rng(0).integers(0, 255, (4, 144, 144, 3), dtype=np.uint8)
    keys = [f"h{i}" for i in range(4)]
    cache = EmbeddingCache(model, root=tmp_path)
    first, computed = cache.get_or_compute(model, keys, images)
    assert computed == 4
    again, computed = EmbeddingCache(model, root=tmp_path).get_or_compute(model, keys, images)
    assert computed == 0 and torch.allclose(first, again)
    other = tiny_random_model(seed=5)
    other.card.name = "tiny_random_other"
    assert EmbeddingCache(other, root=tmp_path).dir != cache.dir


def test_embedding_cache_survives_damaged_and_half_written_shards(tmp_path):
    """Another process (a Ray worker) may be writing a shard while this one reads the folder."""
    model = tiny_random_model()  # random weights: plumbing only
    images = np.random.default_rng(0).integers(0, 255, (2, 144, 144, 3), dtype=np.uint8)
    cache = EmbeddingCache(model, root=tmp_path)
    first, _ = cache.get_or_compute(model, ["a", "b"], images)
    assert not [p for p in cache.dir.iterdir() if not p.name.endswith(".npz")]  # no temp left
    (shard,) = cache.dir.glob("*.npz")
    (cache.dir / "cut.npz").write_bytes(shard.read_bytes()[:50])  # zipfile.BadZipFile
    (cache.dir / "empty.npz").write_bytes(b"")  # np.load: EOFError
    again, computed = EmbeddingCache(model, root=tmp_path).get_or_compute(model, ["a", "b"], images)
    assert computed == 0 and torch.allclose(first, again)
