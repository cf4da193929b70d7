"""Privacy under attack: run each adversary on every probe's protected photos and score it.

Per person the attacker sees ``k`` of the photos protected with that person's veil (crafting
photos first, then held-out ones: all share the veil); ``known_pair`` is also given the
original of the ``k+1``-th. The reconstructions are matched 1:N against the clean gallery by
every target (re-identification = privacy lost) and compared with the originals (SSIM, LPIPS,
PSNR). The do-nothing attacker (the protected photos as they are) is scored beside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from veilbench.adversaries import DEFAULT_KS, PublicKnowledge, public_alpha
from veilbench.data.faces import EvalData
from veilbench.evaluation.protected import Protected, Targets, image_quality
from veilbench.evaluation.samples import shown_protected, thumbnail
from veilbench.measurements.adversaries import AdversaryResult, ReidCell
from veilbench.measurements.records import rate_of
from veilbench.registry import Entry


def public_knowledge(
    data: EvalData,
    protector: Any,
    attacker_models: list[Any],
    *,
    device: torch.device,
    seed: int,
    log: Callable[[str], None] = lambda message: None,
) -> PublicKnowledge:
    """The gallery's distractor photos (never a probe's) and the protector's public settings."""
    probes = {p.identity for p in data.probes}
    keep = [i for i, who in enumerate(data.gallery.identities) if who not in probes]
    others = data.gallery.take(keep)
    return PublicKnowledge(
        alpha=public_alpha(protector),
        photos=others.tensor(),
        identities=others.identities,
        protector=protector,
        models=attacker_models,
        device=device,
        seed=seed,
        log=log,
    )


def evaluate_adversaries(
    targets: Targets,
    data: EvalData,
    protected: Protected,
    entries: Sequence[Entry],
    public: PublicKnowledge,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    sample_secrets: bool = False,
    samples: bool = True,
) -> tuple[list[AdversaryResult], dict[str, dict[str, str]]]:
    """Every adversary at every ``k``; and per identity the sample thumbnails of the largest k.

    A person with fewer photos than an adversary needs at ``k`` is left out of that cell
    (``identities`` says how many were attacked); a ``k`` no person reaches is not reported.
    """
    pools = {
        p.identity: (
            torch.cat([p.craft.tensor(), p.held_out.tensor()]),
            torch.cat([protected[p.identity].craft, protected[p.identity].held_out]),
            np.stack([targets_clean(targets, t, p.identity) for t in targets.models]),
        )
        for p in data.probes
    }
    results: list[AdversaryResult] = []
    shown: dict[str, dict[str, str]] = {}
    for entry in entries:
        adversary = entry.create()
        t0 = time.perf_counter()
        adversary.fit(public)
        # The parrot matches against his own gallery, obfuscated as the protector does.
        scored = own_gallery(targets, data, adversary) if adversary.threat.own_gallery else targets
        fit_s = time.perf_counter() - t0
        for k in sorted(set(ks)):
            need = k + (1 if adversary.threat.known_pair else 0)
            people = [p for p in data.probes if len(pools[p.identity][0]) >= need]
            if not people or k < 1:
                continue
            t0 = time.perf_counter()
            originals, recs, prots, truth, clean_rows = [], [], [], [], []
            for p in people:
                orig, prot, clean = pools[p.identity]
                known = (orig[k : k + 1], prot[k : k + 1]) if adversary.threat.known_pair else None
                rec = adversary.reconstruct(prot[:k], known).detach().float().cpu().clamp(0, 255)
                originals.append(orig[:k])
                recs.append(rec)
                prots.append(prot[:k])
                truth += [p.identity] * k
                clean_rows.append(clean[:, :k])
                if samples and k == max(ks):
                    shown.setdefault(p.identity, {})[f"{entry.name} (k={k})"] = thumbnail(rec[0])
            rec_all, prot_all = torch.cat(recs), torch.cat(prots)
            clean_all = np.concatenate(clean_rows, axis=1)
            results.append(
                AdversaryResult(
                    adversary=entry.name,
                    k=k,
                    threat=adversary.threat.describe(),
                    reid=_reid(scored, rec_all, truth, clean_all),
                    quality=image_quality(torch.cat(originals), rec_all, targets.device),
                    baseline=_reid(targets, prot_all, truth, clean_all),
                    identities=len(people),
                    seconds=time.perf_counter() - t0 + fit_s,
                )
            )
            fit_s = 0.0
    if samples:
        for p in data.probes:
            if p.identity in shown:
                shown[p.identity] = {
                    **_sample_context(p, protected, sample_secrets),
                    **shown[p.identity],
                }
    return results, shown


def own_gallery(targets: Targets, data: EvalData, adversary: Any) -> Targets:
    """The targets with the adversary's own gallery (``adversary.gallery``): every gallery photo
    protected the way the protector does, embedded by each target, thresholds recalibrated."""
    from veilbench.evaluation.acceptance import calibrate
    from veilbench.evaluation.identification import Gallery

    who = data.gallery.identities
    theirs = adversary.gallery(data.gallery.tensor(), who)
    people = [p.identity for p in data.probes]
    states = {}
    for t in targets.models:
        gallery = Gallery(targets.embed(t, theirs), who)
        states[t] = replace(
            targets.states[t], gallery=gallery, acceptance=calibrate(gallery, people)
        )
    return replace(targets, states=states)


def targets_clean(targets: Targets, target: str, identity: str) -> np.ndarray:
    """The target's top-1 answers for the person's clean crafting then held-out photos."""
    return np.concatenate(
        [targets.clean(target, identity, "craft"), targets.clean(target, identity, "held_out")]
    )


def _reid(
    targets: Targets, images: torch.Tensor, truth: list[str], clean: np.ndarray
) -> dict[str, ReidCell]:
    out = {}
    for row, target in enumerate(targets.models):
        emb = targets.embed(target, images.to(targets.device))
        answers = targets.states[target].gallery.top1(emb)
        accepted = targets.accepted(target, truth, embeddings=emb)
        out[target] = ReidCell(
            rank1=rate_of(answers == np.asarray(truth), truth),
            msr=rate_of(answers == np.asarray(clean[row]), truth),
            n=len(answers),
            tar={far: rate_of(hits, truth) for far, hits in accepted.items()},
        )
    return out


def _sample_context(p: Any, protected: Protected, secrets: bool) -> dict[str, str]:
    """The original the reconstructions are of, and a protected photo: with ``secrets`` the
    same photo, otherwise a different one (a same-photo pair would give the veil away)."""
    shown = shown_protected(protected[p.identity], secrets)
    images = {"original": thumbnail(p.craft.tensor()[0])}
    if shown is not None:
        images["protected" if secrets else "protected (another photo)"] = thumbnail(shown)
    return images
