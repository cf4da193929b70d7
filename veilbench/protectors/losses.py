"""The loss terms of the veil paper (eq. 5-11) and its baselines, all per image.

Every function returns one value per image (shape ``B``), so a batch that stacks several
identities' images yields independent per-identity losses: summing them and calling backward
once gives every identity's gradient.

Images are canonical crops in [0, 255]; the visual and block-variance terms are computed on
``x / 255`` so their size does not depend on the pixel scale (see ``IMAGE_SCALE``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Image-space losses see ``x / IMAGE_SCALE``: the [0, 1] scale the defaults were tuned on.
IMAGE_SCALE = 255.0

#: Added under every square root, so a distance of exactly zero still has a finite gradient.
EPS = 1e-8


def _safe_norm(v: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Row-wise L2 norm of ``v`` (B x ...) with a finite gradient at zero."""
    return torch.sqrt(v.flatten(1).pow(2).sum(1) + eps)


def _as_rows(y: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``points`` as one point set per row of ``y``: (n x d) is shared, (m x n x d) per row."""
    return points.expand(y.shape[0], -1, -1) if points.ndim == 2 else points


def span_basis(features: torch.Tensor, rtol: float = 1e-6) -> torch.Tensor:
    """Orthonormal basis of the span of ``features`` (n x d, or m x n x d): d x n (m x d x n).

    Via SVD (eq. 5); directions beyond the rank get zero columns, so repeated rows are harmless.
    """
    u, s, _ = torch.linalg.svd(features.transpose(-1, -2).double(), full_matrices=False)
    keep = s > rtol * s.amax(-1, keepdim=True)
    return (u * keep.unsqueeze(-2)).to(features.dtype)


def project_span(y: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Least-squares projection of ``y`` (m x d) onto the span of ``basis`` (d x r or m x d x r)."""
    basis = _as_rows(y, basis)
    coef = torch.einsum("md,mdr->mr", y, basis)
    return torch.einsum("mr,mdr->md", coef, basis)


def _project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto the probability simplex (Duchi et al.)."""
    n = v.shape[1]
    u, _ = torch.sort(v, dim=1, descending=True)
    css = u.cumsum(1) - 1
    ks = torch.arange(1, n + 1, device=v.device, dtype=v.dtype)
    rho = ((u - css / ks) > 0).to(v.dtype).mul(ks).argmax(1, keepdim=True)
    theta = css.gather(1, rho) / (rho + 1).to(v.dtype)
    return (v - theta).clamp_min(0)


@dataclass(frozen=True)
class FeatureSet:
    """One identity feature set per row (m x n x d), factorised once for repeated projections.

    The crafting loop projects new embeddings onto the same sets every iteration; building the
    Gram matrix and its top eigenvalue (hull) or the SVD basis (span) once keeps the loop free
    of linear-algebra calls that would wait for the GPU.
    """

    subspace: str
    points: torch.Tensor
    gram: torch.Tensor | None = None
    lipschitz: torch.Tensor | None = None
    basis: torch.Tensor | None = None

    @classmethod
    @torch.no_grad()
    def build(cls, features: torch.Tensor, subspace: str = "hull") -> FeatureSet:
        """Prepare ``features`` (m x n x d) for ``subspace`` = "hull" (eq. 6) or "span" (eq. 5)."""
        features = features.detach()
        if subspace == "span":
            return cls("span", features, basis=span_basis(features))
        if subspace == "centroid":
            return cls("centroid", F.normalize(features.mean(1, keepdim=True), dim=2))
        if subspace != "hull":
            raise ValueError(f"subspace must be 'hull', 'span' or 'centroid', got {subspace!r}")
        p = features.double()
        gram = p @ p.transpose(1, 2)
        # The Lipschitz constant of the simplex objective's gradient.
        lip = torch.linalg.eigvalsh(gram)[:, -1:].clamp_min(1e-12)
        return cls("hull", p, gram=gram, lipschitz=lip)

    @torch.no_grad()
    def project(self, y: torch.Tensor, hull_iters: int = 50) -> torch.Tensor:
        """Nearest point to each row of ``y`` (m x d) in its row's set."""
        if self.subspace == "span":
            return project_span(y, self.basis)
        if self.subspace == "centroid":
            return self.points[:, 0].to(y.dtype)
        return _fista_hull(y, self.points, self.gram, self.lipschitz, hull_iters).to(y.dtype)


def _fista_hull(
    y: torch.Tensor, p: torch.Tensor, gram: torch.Tensor, lip: torch.Tensor, iters: int
) -> torch.Tensor:
    """Accelerated projected gradient (FISTA) on the simplex weights of the hull's points."""
    y = y.double()
    py = torch.einsum("md,mnd->mn", y, p)
    w = torch.full(py.shape, 1.0 / p.shape[1], dtype=p.dtype, device=p.device)
    z, t = w, 1.0
    for _ in range(iters):
        grad = torch.einsum("mn,mnk->mk", z, gram) - py
        w_next = _project_simplex(z - grad / lip)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        z = w_next + (t - 1) / t_next * (w_next - w)
        w, t = w_next, t_next
    return torch.einsum("mn,mnd->md", w, p)


@torch.no_grad()
def project_hull(y: torch.Tensor, points: torch.Tensor, iters: int = 50) -> torch.Tensor:
    """Nearest point to each row of ``y`` (m x d) in the convex hull of ``points``.

    ``points`` is one set (n x d) or one per row (m x n x d; pad a short set by repeating one
    of its points, which leaves the hull unchanged). Not differentiated, since the gradient of
    a distance-to-set is ``(y - proj) / ||y - proj||`` anyway.
    """
    return FeatureSet.build(_as_rows(y, points), "hull").project(y, iters).to(points.dtype)


def feature_alignment_loss(
    emb: torch.Tensor,
    features: torch.Tensor | FeatureSet,
    subspace: str = "hull",
    hull_iters: int = 50,
) -> torch.Tensor:
    """Distance of each embedding (m x d) to the identity's feature subspace (eq. 6-7).

    ``features`` holds the identity's clean crafting embeddings, n x d (or m x n x d: one set
    per row, so one call serves a batch of several identities), or a prepared
    :class:`FeatureSet` (then ``subspace`` is its own). ``subspace="hull"`` is their convex hull
    as eq. 6 defines it; ``"span"`` their linear span, the least-squares reading of section
    3.3.2. The projection is a constant for autograd, so the gradient is the unit vector
    pointing away from the set.
    """
    if not isinstance(features, FeatureSet):
        features = FeatureSet.build(_as_rows(emb, features), subspace)
    return _safe_norm(emb - features.project(emb.detach(), hull_iters))


def feature_distance(emb: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-image feature distance ``||F(x') - F(x)||`` (V-UAP eq. 15, AVIH)."""
    return _safe_norm(emb - reference.detach())


def visual_loss(x: torch.Tensor, x_protected: torch.Tensor) -> torch.Tensor:
    """``sqrt(sum((x - x')^2) + eps)`` per image on the [0, 1] scale (eq. 8), NaN-safe at x' = x."""
    return _safe_norm((x_protected - x) / IMAGE_SCALE)


def block_variance(x: torch.Tensor, block: int = 3, stride: int = 1) -> torch.Tensor:
    """Block-variance loss (eq. 9-11) per image on the [0, 1] scale.

    Per channel: the mean within-block variance plus the variance of the block means, summed
    over channels. Stride 1 (overlapping windows, the paper's "sliding" convolution) by default:
    with non-overlapping blocks the two terms add up to the plain global variance.
    """
    x = x / IMAGE_SCALE
    c = x.shape[1]
    # Block means as a depthwise box filter: same numbers as avg_pool2d, ~4x faster to
    # differentiate on CPU with stride 1.
    box = torch.full((c, 1, block, block), 1.0 / (block * block), dtype=x.dtype, device=x.device)
    mean = F.conv2d(x, box, stride=stride, groups=c)
    mean_sq = F.conv2d(x * x, box, stride=stride, groups=c)
    within = (mean_sq - mean * mean).clamp_min(0).mean(dim=(2, 3))
    across = mean.flatten(2).var(dim=2, unbiased=False)
    return (within + across).sum(1)
