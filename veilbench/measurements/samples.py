"""Sample images: per identity an original, a protected photo and the recovered one, chosen so
that a shared report holds no secret (see :mod:`veilbench.evaluation.samples`)."""

from __future__ import annotations

from typing import Any

from veilbench.measurements.charts import safe_uri
from veilbench.measurements.contract import Context, Measurement, RunView, Where

Thumbnails = dict[str, dict[str, str]]  # identity -> image name -> data-URI thumbnail

#: The images a sample row shows, in order. The veil is the secret: it is in a document only
#: when ``secret_samples = true`` was asked for (the report then says so).
SAMPLE_IMAGES = (("original", "original"), ("protected", "protected"), ("recovered", "recovered"))
SECRET_IMAGES = (("veil", "the veil"),)


class Samples(Measurement):
    name = "samples"
    title = "What the images look like"
    description = "thumbnails of an original, a protected and a recovered photo per person"
    needs = ("protected", "samples")
    record = Thumbnails
    nav = "Images"
    template = "_samples.html"
    order = 90

    def applies(self, config: Any) -> bool:
        return bool(config.samples)

    def evaluate(self, ctx: Context) -> Thumbnails:
        from veilbench.evaluation.samples import shareable_samples

        secrets = ctx.config.secret_samples
        return shareable_samples(ctx.data.probes, ctx.protected, secrets=secrets)

    def view(self, sets: list[Where], run: RunView) -> dict[str, Any]:
        """Per identity, one row of images per surrogate (the same person under different veils)."""
        secrets = run.samples_contain_secrets
        shown = SAMPLE_IMAGES + (SECRET_IMAGES if secrets else ())
        people: dict[str, list[dict[str, Any]]] = {}
        for w in sets:
            for identity, images in (w.records.get(self.name) or {}).items():
                people.setdefault(str(identity), []).append(
                    {
                        "surrogate": w.key,
                        "images": [
                            {"label": label, "uri": safe_uri(images.get(name))}
                            for name, label in shown
                        ],
                    }
                )
        return {
            "people": [{"identity": i, "rows": rows} for i, rows in people.items()],
            "secrets": secrets,
        }

    def upgrade(self, old: dict[str, Any], doc: dict[str, Any]) -> Any:
        return old.get("samples") or None
