"""The HTML report: numbers match the results document, the page is self-contained and safe."""

from __future__ import annotations

import base64
import copy
import io
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from tests.documents import rate, records, results, surrogate_set
from veilbench.measurements import registered
from veilbench.measurements.charts import Series, heat_style, line_chart, nice_ticks
from veilbench.measurements.cost import CraftTiming
from veilbench.measurements.image_quality import ImageMetrics
from veilbench.measurements.msr import MsrCell
from veilbench.measurements.records import ImageQuality, Rate
from veilbench.measurements.robustness import RobustnessCurve
from veilbench.report import environment, render_html, render_report
from veilbench.results import ResultsDocument, read_results

REPO = Path(__file__).resolve().parents[1]
MODELS = ("sface", "facenet", "dlib_resnet")
SURROGATES = (*MODELS, "sface+facenet")
IDENTITIES = ("Ada_Lovelace", "<b>x</b>", "Grace_Hopper")


def tiny_png(colour: tuple[int, int, int]) -> str:
    """An 8x8 PNG data URI, like the runner's thumbnails but small."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def make_doc(seed: int = 0) -> ResultsDocument:
    """A realistic results document (3 models + an ensemble, 2 attacks), built like the runner
    builds it: through the typed records of the results contract."""
    rng = random.Random(seed)

    def r() -> float:  # awkward floats, so full precision matters
        return rng.randrange(1, 3000) / 2999

    msr = {
        s: {
            t: {
                subset: MsrCell(
                    msr=rate(r(), 30), rank1_protected=rate(r(), 30), rank1_clean=rate(0.9), n=30
                )
                for subset in ("craft", "held_out")
            }
            for t in MODELS
        }
        for s in SURROGATES
    }
    msr["facenet"]["dlib_resnet"]["held_out"].msr.value = None  # NaN in the run
    sweep = {
        "gaussian": ("sigma", [0.0, 30.0, 60.0, 120.0, 150.0]),
        "median": ("kernel", [1.0, 3.0, 5.0]),
    }
    robustness = {
        s: {
            attack: RobustnessCurve(
                parameter=parameter,
                strengths=strengths,
                protected={t: [rate(r()) for _ in strengths] for t in MODELS},
                clean={t: [rate(r()) for _ in strengths] for t in MODELS},
            )
            for attack, (parameter, strengths) in sweep.items()
        }
        for s in SURROGATES
    }
    robustness["sface"]["gaussian"].protected["facenet"][2] = Rate(None, 0)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (90, 90, 90)]
    doc = ResultsDocument(
        veilbench_version="0.1.0",
        created_utc="2024-06-01T12:00:00+00:00",
        environment={
            "python": "3.11.9",
            "torch": "2.3.0",
            "numpy": "1.26.4",
            "cuda": None,
            "device": "cpu",
            "cpu": "x86_64",
            "cpu_count": 2,
            "torch_threads": 2,
            "os": "Linux-6.1",
            "hostname_hash": "abc123def456",
            "git_commit": None,
        },
        plugins=[
            {
                "name": "builtin_models",
                "package": "veilbench",
                "version": "0.1.0",
                "builtin": True,
                "status": "loaded",
                "error": "",
                "hooks": ["register_models"],
            }
        ],
        config={
            "protector": "veil",
            "models": ",".join(MODELS),
            "surrogates": "sface,facenet",
            "attacks": "gaussian,median",
            "dataset": "/data/lfw",
            "seed": 7,
            "batch_size": 32,
            "robustness_on": "held_out",
            "max_attack_images": None,
            "protocol": {"min_images": 20, "n_craft": 10, "n_enrol": 5, "seed": 7},
            "protector_params": {"iterations": 100},
            "attack_sweeps": {"gaussian": [0.0, 30.0, 60.0, 120.0, 150.0]},
            "device_resolved": "cpu",
            "protector_config": {"alpha": 0.2, "lambda_vis": 1.0, "mu_var": 30.0},
        },
        dataset={
            "name": "lfw-dev",
            "root": "/data/lfw",
            "images": 2370,
            "identities": 1680,
            "alignment": "yunet",
            "synthetic": False,
            "description": "",
        },
        split={
            "probes": [
                {"identity": i, "craft": [], "enrol": [], "held_out": []} for i in IDENTITIES
            ],
            "distractor_images": 2000,
            "distractor_identities": 1600,
            "skipped_identities": [],
        },
        models={
            m: {
                "name": m,
                "architecture": f"{m}-arch",
                "embedding_size": 128,
                "pretrained": True,
                "licence": "MIT",
                "source": "",
                "paper": "",
                "weights": [{"name": f"{m}.pt", "sha256": "ab" * 32, "sources": []}],
            }
            for m in MODELS
        },
        skipped_models=[{"model": "arcface_r100", "reason": "weights unavailable: offline"}],
        warnings=[],
        problems=[
            {"identity": "Bob", "file": "/data/lfw/Bob/Bob_0001.jpg", "reason": "no face found"}
        ],
        timings={"prepare_s": 12.5, "clean_embedding_s": 30.0, "total_s": 400.0},
    )
    sets = {
        s: surrogate_set(
            s,
            msr=msr[s],
            image_quality=ImageMetrics(
                protected=ImageQuality(ssim=0.012, lpips=1.3, psnr=8.1, n=60),
                recovered=ImageQuality(ssim=0.98, lpips=0.002, psnr=45.0, n=30),
            ),
            robustness=robustness[s],
            impersonation={t: rate(r()) for t in MODELS},
            samples={
                i: {
                    "original": tiny_png(colours[0]),
                    "protected": tiny_png(colours[1]),
                    "recovered": tiny_png(colours[2]),
                }
                for i in IDENTITIES
            },
            cost=CraftTiming(total=120.0, per_veil=40.0, per_image=4.0, veils=3),
        )
        for s in SURROGATES
    }
    for s in sets.values():
        s.evaluate_s = 20.0
    doc.results = results(
        sets, clean={t: {"craft": rate(0.97), "held_out": rate(r())} for t in MODELS}
    )
    return doc


class Page(HTMLParser):
    """Collects what the tests look at: cells with data-value per table id, img/link/script tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._table: list[str] = []
        self._cell: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "table":
            self._table.append(a.get("id", ""))
        elif tag == "td" and "data-value" in a and self._table:
            self._cell = {**a, "text": ""}
            self.tables.setdefault(self._table[-1], []).append(self._cell)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._table:
            self._table.pop()
        elif tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def heat_cells(page: Page, subset: str) -> dict[tuple[str, str], dict[str, str]]:
    return {
        (c["data-surrogate"], c["data-target"]): c
        for c in page.tables[f"msr-{subset}"]
        if "data-surrogate" in c
    }


def expected_value(value: float | None) -> float | None:
    return None if value is None else float(value)


def cell_value(cell: dict[str, str]) -> float | None:
    return None if cell["data-value"] == "null" else float(cell["data-value"])


@pytest.fixture(scope="module")
def doc() -> ResultsDocument:
    return make_doc()


@pytest.fixture(scope="module")
def html(doc: ResultsDocument) -> str:
    return render_html(doc)


def msr_of(doc: ResultsDocument, subset: str) -> dict[tuple[str, str], float | None]:
    return {
        (w.key, t): cells[subset].msr.value
        for w in doc.results.sets()
        for t, cells in w.records["msr"].items()
    }


@pytest.mark.parametrize("subset", ["craft", "held_out"])
def test_heatmap_values_equal_the_document(doc: ResultsDocument, html: str, subset: str) -> None:
    cells = heat_cells(parse(html), subset)
    msr = msr_of(doc, subset)
    assert set(cells) == set(msr)
    for (s, t), cell in cells.items():
        assert cell_value(cell) == expected_value(msr[(s, t)]), (s, t)
    # full precision, not the 3 decimals on screen
    some = msr[("sface", "facenet")]
    assert cells[("sface", "facenet")]["data-value"] == repr(some)


def test_null_cell_reads_null_and_na(html: str) -> None:
    cell = heat_cells(parse(html), "held_out")[("facenet", "dlib_resnet")]
    assert cell["data-value"] == "null"
    assert "n/a" in cell["text"]


def test_clean_rank1_row(doc: ResultsDocument, html: str) -> None:
    clean = [c for c in parse(html).tables["msr-held_out"] if "clean-rank1" in c.get("class", "")]
    assert {c["data-target"]: float(c["data-value"]) for c in clean} == {
        t: doc.results.measurements["clean"][t]["held_out"].value for t in MODELS
    }


def test_white_box_cells_are_marked(html: str) -> None:
    for subset in ("craft", "held_out"):
        for (s, t), cell in heat_cells(parse(html), subset).items():
            white = t in s.split("+")
            assert ("white-box" in cell["class"].split()) == white, (s, t)
            assert ("white-box" in cell["text"]) == white, (s, t)


def test_headline_verdict_numbers(doc: ResultsDocument, html: str) -> None:
    """The headline reads the privacy summary, which the contract derives from the cells."""
    msr = msr_of(doc, "held_out")
    per_set_white, per_set_black = [], []
    for s in SURROGATES:
        white = [v for (k, t), v in msr.items() if k == s and t in s.split("+")]
        black = [
            v for (k, t), v in msr.items() if k == s and t not in s.split("+") and v is not None
        ]
        per_set_white.append(sum(white) / len(white))
        per_set_black.append(sum(black) / len(black))  # the null cell is not counted
    doc.derive(registered())
    privacy = [records(doc, s)["privacy"]["held_out"].attacker_msr for s in SURROGATES]
    assert privacy == pytest.approx(per_set_black)
    headline = html.split('id="headline"')[1].split("</section>")[0]
    assert f"{sum(per_set_white) / len(per_set_white):.3f}" in headline
    assert f"{sum(per_set_black) / len(per_set_black):.3f}" in headline
    assert f"mean over {len(SURROGATES)} surrogate sets" in headline
    assert "lfw-dev" in headline and "<dt>Protected identities</dt><dd>3 " in headline


def test_one_chart_per_surrogate_and_attack(doc: ResultsDocument, html: str) -> None:
    svgs = [a for tag, a in parse(html).tags if tag == "svg"]
    assert {(a["data-surrogate"], a["data-attack"]) for a in svgs} == {
        (w.key, attack) for w in doc.results.sets() for attack in w.records["robustness"]
    }
    chart = html.split('data-surrogate="sface" data-attack="gaussian"', 1)[1].split("</svg>")[0]
    assert "stroke-dasharray" in chart and "clean photos, same attack" in chart  # baseline
    assert ">sface (white-box)<" in chart
    for target in MODELS:
        assert f">{target}" in chart  # legend entry
        assert f"{target}, clean photos: gaussian sigma 150" in chart  # hover title, last point
    assert "gaussian sigma" in chart and ">MSR<" in chart  # axis labels
    assert ">150<" in chart  # an x tick at the largest strength


def test_chart_gap_for_null_value() -> None:
    svg = line_chart(
        [0, 1, 2, 3],
        [Series("m", [0.9, 0.8, None, 0.1], "#000")],
        x_label="sigma",
        y_label="MSR",
        title="t",
    )
    assert svg.count("<polyline") == 1  # only the 0-1 run; a single point makes no line
    assert svg.count("<circle") == 3


def test_self_contained(html: str) -> None:
    page = parse(html)
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object")]
    for tag, attrs in page.tags:
        if "src" in attrs:
            assert attrs["src"].startswith("data:image/"), tag
        if tag == "a":
            assert attrs["href"].startswith("#")
    for needle in ('src="http', 'href="http', "<script", "url(", "@import"):
        assert needle not in html


def test_identity_names_are_escaped(html: str) -> None:
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_external_image_uris_are_dropped(doc: ResultsDocument) -> None:
    evil = copy.deepcopy(doc)
    records(evil, "sface")["samples"]["Ada_Lovelace"]["original"] = "https://evil.example/x"
    out = render_html(evil)
    assert "evil.example" not in out


def test_image_grid_per_identity(doc: ResultsDocument, html: str) -> None:
    imgs = [a for tag, a in parse(html).tags if tag == "img"]
    assert len(imgs) == len(SURROGATES) * len(IDENTITIES) * 3
    assert "veil not available" not in html and ">the veil<" not in html  # never shown
    no_recovery = copy.deepcopy(doc)
    del records(no_recovery, "sface")["samples"]["Ada_Lovelace"]["recovered"]
    out = render_html(no_recovery)
    assert out.count('aria-label="recovered not available"') == 1


def test_paper_reference_and_metrics(html: str) -> None:
    for figure in (
        "0.011–0.012",
        "1.247–1.287",
        "0.034–0.043",
        "0.710–0.785",
        "0.868–0.869",
        "0.046–0.047",
    ):
        assert figure in html
    cells = parse(html).tables["metrics-recovered"]
    assert 0.98 in [cell_value(c) for c in cells]


def test_provenance_and_issues(doc: ResultsDocument, html: str) -> None:
    for text in (
        "arcface_r100",
        "weights unavailable: offline",
        "Bob_0001.jpg",
        "no face found",
        "builtin_models",
        "lambda_vis",
        "protocol.seed",
        "2.3.0",
        "40.00 s",
        "4.00 s",
    ):
        assert text in html, text
    assert '<th scope="col">' in html and "<caption>" in html


def test_banners_for_synthetic_data_and_warnings(doc: ResultsDocument) -> None:
    plain = render_html(doc)
    assert 'class="banner' not in plain
    loud = copy.deepcopy(doc)
    loud.dataset["synthetic"] = True
    loud.warnings = ["only 3 identities <qualified>"]
    out = render_html(loud)
    assert 'class="banner synthetic"' in out and "Synthetic dataset" in out
    assert "only 3 identities &lt;qualified&gt;" in out


def _one_model(doc: ResultsDocument) -> dict:
    small = copy.deepcopy(doc)
    small.models = {"sface": small.models["sface"]}
    only = records(small, "sface")
    kept = {
        "msr": {"sface": only["msr"]["sface"]},
        "image_quality": ImageMetrics(ImageQuality(None, None, None, 0)),
    }
    small.results = results(
        {"sface": surrogate_set("sface", **kept)},
        clean={"sface": {"craft": rate(None), "held_out": rate(None)}},
    )
    small.timings = {}
    return small.to_dict()


@pytest.mark.parametrize("variant", ["empty", "no-results", "one-model", "nulls"])
def test_partial_documents_render(doc: ResultsDocument, variant: str) -> None:
    if variant == "empty":
        partial: dict = {}
    elif variant == "no-results":
        partial = {**doc.to_dict(), "results": {}, "timings": {}, "split": {}}
    elif variant == "one-model":
        partial = _one_model(doc)
    else:
        partial = json.loads(re.sub(r":\s*-?\d+\.\d+", ": null", json.dumps(doc.to_dict())))
    out = render_html(partial)
    assert out.startswith("<!doctype html>") and out.rstrip().endswith("</html>")
    assert "n/a" in out
    if variant == "one-model":
        assert "needs at least two models" in out
        assert "<svg" not in out
        assert "No attacks were run" in out
        assert "no recovery (protector cannot be undone)" in out


def test_user_template_overrides(tmp_path: Path, doc: ResultsDocument) -> None:
    (tmp_path / "_headline.html").write_text(
        '<section id="headline"><p class="mine">Our lab: {{ view.protector }}'
        "{% for s in view.sections if s.name == 'samples' %} {{ s.data.people[1].identity }}"
        "{% endfor %}</p></section>"
    )
    assert environment([tmp_path]).get_template("_headline.html").filename.startswith(str(tmp_path))
    out = render_html(doc, extra_dirs=[tmp_path])
    assert '<p class="mine">Our lab: veil &lt;b&gt;x&lt;/b&gt;</p>' in out
    assert 'id="msr-held_out"' in out  # the rest of the page is veilbench's own


def test_render_report_writes_file(tmp_path: Path, doc: ResultsDocument) -> None:
    path = render_report(doc, tmp_path / "sub" / "report.html")
    assert path.read_text(encoding="utf-8") == render_html(doc)


def test_renders_the_repository_baseline(tmp_path: Path) -> None:
    baseline = REPO / "reports" / "baseline.json"
    if not baseline.is_file():
        pytest.skip(f"{baseline} not in this checkout")
    real = read_results(baseline)
    page = parse(render_html(real))
    for subset in ("craft", "held_out"):
        cells = heat_cells(page, subset)
        for (s, t), value in msr_of(real, subset).items():
            assert cell_value(cells[(s, t)]) == expected_value(value)


def test_heat_style_and_ticks() -> None:
    assert heat_style(None) == heat_style(float("nan")) != heat_style(0.0)
    assert heat_style(0.0).startswith("background-color:#f7fbff;color:#111111")
    assert heat_style(1.0).startswith("background-color:#08306b;color:#ffffff")
    assert nice_ticks(0, 150, 6) == [0, 25, 50, 75, 100, 125, 150]
    assert nice_ticks(0, 1, 4) == [0, 0.25, 0.5, 0.75, 1.0]


def test_a_protector_that_cannot_be_undone_shows_no_recovery() -> None:
    doc = make_doc()
    for s in SURROGATES:
        records(doc, s)["image_quality"].recovered = None  # what recoverable = False records
    html = render_html(doc)
    assert html.count("no recovery (protector cannot be undone)") == 1 + len(
        SURROGATES
    )  # the headline and one row per surrogate


def test_perception_section_shows_attacker_and_service_means() -> None:
    from veilbench.measurements.perception import FaceVisibility, Perception, ProcessedRank1

    doc = make_doc()
    records(doc, "sface")["perception"] = Perception(
        face=FaceVisibility(
            detected=rate(0.25, 12), detected_clean=rate(1.0, 12), landmark_error=0.4, n=12
        ),
        processed={
            "invert": ProcessedRank1(
                protected={"sface": rate(0.9), "facenet": rate(0.5), "dlib_resnet": rate(0.1)},
                clean={"sface": rate(1.0), "facenet": rate(0.8), "dlib_resnet": rate(0.6)},
                n=12,
            )
        },
    )
    html = render_html(ResultsDocument.from_dict(json.loads(json.dumps(doc.to_dict()))))
    row = re.search(r'<tr data-surrogate="sface">(.*?)</tr>', html, re.S).group(1)
    assert 'data-value="0.25"' in row and "(1.000)" in row
    assert 'data-processing="invert" data-value="0.3"' in row  # facenet and dlib: attackers
    assert "(0.700)" in row and "0.900" in row  # their processed originals; the service's rank-1
    assert '<tr data-surrogate="facenet">' not in html  # not measured: no row


def test_per_person_section_names_the_least_protected_person() -> None:
    """The per-identity measurement: one module, one template, one registration line."""
    doc = make_doc()
    for s in SURROGATES:
        for t, cells in records(doc, s)["msr"].items():
            white = t in s.split("+")
            per = {"Ada_Lovelace": 1.0, "Grace_Hopper": 0.9 if white else 0.1, "<b>x</b>": 0.0}
            cells["held_out"].msr.per_identity = per
    html = render_html(doc)
    section = html[html.index('id="per-identity"') :].split("</section>")[0]
    assert 'href="#per-identity"' in html
    table = section.split('data-surrogate="sface"')[1].split("</table>")[0]
    assert "least protected <strong>Ada_Lovelace</strong>" in table  # black-box MSR 1.0
    assert "least served <strong>&lt;b&gt;x&lt;/b&gt;</strong>" in table  # white-box MSR 0.0
    ids = {m.id: m.value for m in doc.metrics()}
    assert ids["per_identity/sface/worst_black_box"] == 1.0
    assert ids["per_identity/sface/worst_white_box"] == 0.0


def test_a_converged_veil_the_service_fails_is_a_warning() -> None:
    """A veil that met its crafting criteria but whose person the service no longer recognises
    (the criteria only see the identities crafted alongside) is named in a run warning."""
    from veilbench.measurements.per_identity import IdentityMsr, PerIdentity, unserved_warnings
    from veilbench.protectors.engine.convergence import ConvergenceRecord

    record = PerIdentity(
        identities={
            "Hugh_Jackman": IdentityMsr(white_box=0.02, black_box=0.0),
            "Nicole_Kidman": IdentityMsr(white_box=1.0, black_box=0.0),
            "Tom_Cruise": IdentityMsr(white_box=0.1, black_box=0.0),
        }
    )
    veils = {
        "Hugh_Jackman": ConvergenceRecord(converged=True, iterations=60, cap=240),
        "Nicole_Kidman": ConvergenceRecord(converged=True, iterations=70, cap=240),
        "Tom_Cruise": ConvergenceRecord(converged=False, iterations=240, cap=240),
    }
    warnings = unserved_warnings("mobileface_v2", record, veils)
    assert len(warnings) == 1  # Tom_Cruise's veil has the unconverged warning instead
    assert "Hugh_Jackman's protected photos" in warnings[0] and "0.02" in warnings[0]
    assert "match_level" in warnings[0]
    assert unserved_warnings("x", record, {}) == []  # no veils (a per-photo protector)


def test_verification_not_measured_prints_no_console_heading() -> None:
    """A run without verification shows no empty TAR heading in its console summary."""
    from veilbench.measurements.contract import Where
    from veilbench.measurements.verification import VerificationMeasurement

    sets = [Where("sface", "veil", ["sface"], {})]
    assert VerificationMeasurement().summary(sets, run=None) == []


def test_several_protectors_share_one_page() -> None:
    """A document with two protectors: every section shows both, named protector:surrogates."""
    doc = make_doc()
    veil = doc.results.protectors["veil"]
    doc.results.protector("blur", {"sigma": 6.0}).surrogates = {"sface": veil.surrogates["sface"]}
    html = render_html(doc)
    cells = heat_cells(parse(html), "held_out")
    assert ("veil:sface", "facenet") in cells and ("blur:sface", "facenet") in cells
    assert 'veilbench report: <span class="protector">veil, blur</span>' in html


def test_rates_show_their_interval_and_counts_and_wide_ones_are_marked() -> None:
    """`0.50 [0.09, 0.91]` beside a rate from 2 people, marked wide; the headline too."""
    from tests.documents import results, surrogate_set
    from veilbench.measurements.msr import MsrCell
    from veilbench.measurements.records import rate_of

    hits = [True] * 10 + [False] * 10
    people = ["a"] * 10 + ["b"] * 10
    r = rate_of(hits, people)
    cell = {s: MsrCell(r, r, rate_of([True] * 20, people), 20) for s in ("craft", "held_out")}
    doc = ResultsDocument(
        results=results({"sface": surrogate_set("sface", msr={"sface": cell, "facenet": cell})})
    )
    page = render_html(doc)
    low, high = r.interval.low, r.interval.high
    assert f"[{low:.2f}, {high:.2f}]" in page and high - low > 0.3
    assert 'class="ci wide"' in page
    assert "interval wider than 0.3: a small sample" in page  # the headline says so
