"""Bringing results files of earlier schema versions to the current one, on read.

- 1 -> 2: version 1 kept one table per measurement (``results.msr[s][t]`` ...); 2 groups by
  surrogate set.
- 2 -> 3: 2 held one protector with fixed fields per surrogate set; 3 holds protectors, each
  set's records under ``measurements.<name>``, and every rate as a record with its counts.
  Each measurement converts its own part (``Measurement.upgrade``); derived records are
  recomputed after reading (``Measurement.derive``).
"""

from __future__ import annotations

from typing import Any

from veilbench.measurements.contract import Measurement


def upgrade(doc: dict[str, Any], measurements: dict[str, Measurement]) -> dict[str, Any]:
    """Bring a document of any earlier ``schema_version`` to the current one (a new dict)."""
    if doc.get("schema_version") == 1:
        doc = _upgrade_1_to_2(doc)
    if doc.get("schema_version") == 2:
        doc = _upgrade_2_to_3(doc, measurements)
    return doc


def _upgrade_1_to_2(doc: dict[str, Any]) -> dict[str, Any]:
    old = doc.get("results") or {}
    craft_s = (doc.get("timings") or {}).get("craft_s") or {}
    evaluate_s = (doc.get("timings") or {}).get("evaluate_s") or {}
    surrogates = {}
    for key, msr in (old.get("msr") or {}).items():
        images = (old.get("image_metrics") or {}).get(key) or {}
        surrogates[key] = {
            "surrogates": key.split("+"),
            "msr": msr,
            "image_metrics": {
                "protected": images.get("protected") or _empty_quality(),
                "recovered": images.get("recovered"),
            },
            "robustness": (old.get("robustness") or {}).get(key) or {},
            "impersonation": (old.get("impersonation") or {}).get(key) or {},
            "samples": (old.get("samples") or {}).get(key) or {},
            "craft_timing": craft_s.get(key),
            "evaluate_s": evaluate_s.get(key),
        }
    return {
        **doc,
        "schema_version": 2,
        "results": {
            "clean": old.get("clean") or {},
            "surrogates": surrogates,
            # schema 1 always showed the veil and a same-photo pair when it had samples
            "samples_contain_secrets": any(
                bool(images) for images in (old.get("samples") or {}).values()
            ),
        },
    }


def _empty_quality() -> dict[str, Any]:
    return {"ssim": None, "lpips": None, "psnr": None, "n": 0}


def _upgrade_2_to_3(doc: dict[str, Any], measurements: dict[str, Measurement]) -> dict[str, Any]:
    old = doc.get("results") or {}
    config = doc.get("config") or {}
    run: dict[str, Any] = {}
    for m in measurements.values():
        if m.scope == "run" and (record := m.upgrade({}, doc)) is not None:
            run[m.name] = record
    sets = {}
    for key, s in (old.get("surrogates") or {}).items():
        records = {}
        for m in measurements.values():
            if m.scope != "run" and (record := m.upgrade(s, doc)) is not None:
                records[m.name] = record
        sets[key] = {
            "surrogates": s.get("surrogates") or key.split("+"),
            "measurements": records,
            "evaluate_s": s.get("evaluate_s"),
        }
    name = str(config.get("protector") or "unknown")
    return {
        **doc,
        "schema_version": 3,
        "results": {
            "measurements": run,
            "protectors": {
                name: {
                    "protector": name,
                    "config": config.get("protector_config") or {},
                    "surrogates": sets,
                }
            }
            if sets
            else {},
            "samples_contain_secrets": bool(old.get("samples_contain_secrets")),
        },
    }
