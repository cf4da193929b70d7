"""``veilbench leaderboard``: ranking by worst case, the frontier, grouping, HTML = Markdown."""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.documents import surrogate_set
from tests.test_report import tiny_png
from veilbench.commands import build_cli
from veilbench.leaderboard import (
    build_leaderboard,
    differences,
    group_key,
    render_leaderboard_html,
    render_markdown,
)
from veilbench.leaderboard.frontier import Panel, Point, dominates, frontier_svg, pareto_front
from veilbench.measurements.adversaries import Adversaries, AdversaryResult, ReidCell
from veilbench.measurements.cost import CraftTiming
from veilbench.measurements.image_quality import ImageMetrics
from veilbench.measurements.msr import MsrCell
from veilbench.measurements.records import ImageQuality, Interval, Rate
from veilbench.measurements.robustness import RobustnessCurve
from veilbench.measurements.verification import TarCell, TarPoint, Verification
from veilbench.report import fmt
from veilbench.results import ProtectorResults, Results, ResultsDocument, write_json_atomic

CRAFTER, ATTACKERS = "sface", ("facenet", "dlib_resnet")
EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "example"
CHROMIUM = Path("/usr/bin/chromium")


def rate(value: float, photos: int = 40, people: int = 8, half: float = 0.1) -> Rate:
    """A rate with a 95% interval ``value +- half`` (clipped to [0, 1])."""
    interval = Interval(max(0.0, value - half), min(1.0, value + half), 0.95, "wilson-identity")
    return Rate(value, photos, people, interval)


def msr_cells(rank1: float, msr: float | None = None) -> dict[str, MsrCell]:
    cell = MsrCell(rate(msr if msr is not None else rank1), rate(rank1), rate(0.95), 40)
    return {"craft": cell, "held_out": cell}


def tar(white: float, black: float) -> Verification:
    def cell(value: float) -> dict[str, TarCell]:
        return {"held_out": TarCell({"1e-3": TarPoint(rate(value), rate(0.9))}, 40)}

    return Verification(
        cells={CRAFTER: cell(white), **{t: cell(black) for t in ATTACKERS}},
    )


def protected(
    black: float | dict[str, float],
    *,
    white: float = 0.9,
    lpips: float = 0.2,
    recovered: bool = False,
    **records: Any,
) -> Any:
    """One surrogate set crafted on sface, attacked by the other two models."""
    black = black if isinstance(black, dict) else dict.fromkeys(ATTACKERS, black)
    msr = {CRAFTER: msr_cells(white), **{t: msr_cells(v) for t, v in black.items()}}
    quality = ImageMetrics(
        ImageQuality(0.8, lpips, 30.0, 40),
        ImageQuality(0.99, 0.01, 45.0, 40) if recovered else None,
    )
    base = {
        "msr": msr,
        "image_quality": quality,
        "verification": tar(white, min(black.values())),
        "cost": CraftTiming(12.0, 3.0, 0.3, 4),
    }
    return surrogate_set(CRAFTER, **{**base, **records})


def document(
    protectors: dict[str, Any],
    *,
    dataset: str = "lfw",
    fingerprint: str = "ab" * 32,
    identities: int = 8,
    secrets: bool = False,
) -> ResultsDocument:
    probes = [
        {"identity": f"p{i}", "craft": ["a.png", "b.png"], "held_out": ["c.png"]}
        for i in range(identities)
    ]
    return ResultsDocument(
        config={"protocol": {"identities": identities, "seed": 0}},
        dataset={"name": dataset, "fingerprint": fingerprint, "alignment": "mtcnn"},
        split={"probes": probes, "distractor_images": 100},
        models={m: {} for m in (CRAFTER, *ATTACKERS)},
        results=Results(
            protectors={
                name: ProtectorResults(name, {"strength": name}, {CRAFTER: s})
                for name, s in protectors.items()
            },
            samples_contain_secrets=secrets,
        ),
    )


def board_of(*docs: ResultsDocument):
    return build_leaderboard(list(docs), [f"run{i}/results.json" for i in range(len(docs))])


def names(group) -> list[str]:
    return [row.variant for row in group.rows]


# Ranking and the worst case ------------------------------------------------------------------


def test_rows_rank_by_worst_case_privacy_lowest_first():
    doc = document(
        {"none": protected(0.9, lpips=0.0), "veil": protected(0.05), "pgd": protected(0.3)}
    )
    (group,) = board_of(doc).groups
    assert names(group) == ["veil", "pgd", "none"]
    assert [r.worst.value for r in group.rows] == [0.05, 0.3, 0.9]
    assert group.rows[0].worst_by == "protected photos → facenet"
    assert group.rows[0].worst.text == "0.05 [0.00, 0.15]"


def test_ties_are_broken_by_the_declared_utility():
    doc = document(
        {
            "pgd[epsilon=8]": protected(0.3, lpips=0.4),
            "pgd[epsilon=4]": protected(0.3, lpips=0.1),  # same privacy, looks more like it
        }
    )
    (group,) = board_of(doc).groups
    assert names(group) == ["pgd[epsilon=4]", "pgd[epsilon=8]"]
    row = group.rows[0]
    assert row.info.name == "pgd" and row.promise == "cloak" and row.info.traits.utility == "lpips"
    assert row.config == {"strength": "pgd[epsilon=4]"}


def test_worst_case_is_the_highest_black_box_rate_of_any_threat():
    jpeg = RobustnessCurve(
        "quality",
        [90.0, 50.0],
        protected={CRAFTER: [rate(1.0), rate(1.0)], "facenet": [rate(0.1), rate(0.6)]},
        clean={},
    )
    average = AdversaryResult(
        "average",
        2,
        "k protected photos",
        reid={
            CRAFTER: ReidCell(rate(1.0), rate(1.0), 8),  # white-box: never an attacker's rate
            "dlib_resnet": ReidCell(rate(0.8), rate(0.8), 8),
        },
        quality=ImageQuality(0.5, 0.4, 20.0, 8),
    )
    doc = document(
        {
            "veil": protected(0.1),
            "veil[purified]": protected(0.1, robustness={"jpeg": jpeg}),
            "veil[attacked]": protected(
                0.1, adversaries=Adversaries([average], skipped={"parrot": "attacks 'parrot'"})
            ),
        }
    )
    rows = {r.variant: r for r in board_of(doc).groups[0].rows}
    assert rows["veil"].worst.value == 0.1
    assert rows["veil[purified]"].worst.value == 0.6
    assert rows["veil[purified]"].worst_by == "jpeg quality=50 → facenet (MSR)"
    assert rows["veil[purified]"].worst_kind == "purification"
    assert rows["veil[attacked]"].worst.value == 0.8
    assert rows["veil[attacked]"].worst_by == "average k=2 → dlib_resnet"
    # the plain protected photos' figures do not change with the attacks
    assert {r.figures["blackbox"].value for r in rows.values()} == {0.1}
    # which declared threat models ran, and which did not
    threats = {t["threat"]: t for t in rows["veil"].threats}
    assert threats["purification"]["run"] is False
    assert threats["reused_perturbation"]["run"] is False
    assert rows["veil"].skipped == []
    ran = {t["threat"]: t for t in rows["veil[attacked]"].threats}
    assert ran["reused_perturbation"] == {
        "threat": "reused_perturbation",
        "declared": True,
        "run": True,
        "what": "average",
    }
    assert rows["veil[attacked]"].skipped == ["parrot: attacks 'parrot'"]
    assert "Adversaries not run against it" in render_leaderboard_html(board_of(doc))


def test_only_white_box_targets_means_no_worst_case_and_last_place():
    lonely = surrogate_set(CRAFTER, msr={CRAFTER: msr_cells(0.9)})
    doc = document({"veil": lonely, "pgd": protected(0.7)})
    (group,) = board_of(doc).groups
    assert names(group) == ["pgd", "veil"]
    assert group.rows[1].worst.value is None and group.rows[1].worst.text == "n/a"


# The frontier -------------------------------------------------------------------------------


def test_pareto_front_on_hand_made_points():
    a, b, c = Point("a", 0.1, 0.5), Point("b", 0.2, 0.2), Point("c", 0.3, 0.3)
    d, twin = Point("d", 0.05, 0.9), Point("twin", 0.2, 0.2)
    # x lower is better (a cloak's LPIPS): c is worse than b on both axes
    assert pareto_front([a, b, c, d, twin], "lower") == [d, a, b, twin]
    assert dominates(b, c, "lower") and not dominates(b, twin, "lower")
    # x higher is better (the service's TAR): now c beats b on x, a is beaten by b on both
    assert pareto_front([a, b, c, d], "higher") == [b, c]
    assert not dominates(a, a, "higher")
    assert pareto_front([], "lower") == []


def test_frontier_svg_draws_every_point_and_the_front():
    points = [Point("a", 0.1, 0.5), Point("b", 0.2, 0.2), Point("c<", 0.3, 0.3, demo=True)]
    panel = Panel("cloak", "LPIPS", "lower", points, pareto_front(points, "lower"))
    svg = str(frontier_svg(panel))
    assert svg.count("<circle") == 3 and svg.count('class="point front"') == 2
    assert 'class="front"' in svg and "c&lt; (demo)" in svg  # labels are escaped


def test_one_panel_per_promise_with_its_own_x_axis():
    doc = document(
        {
            "pgd": protected(0.3, lpips=0.1),
            "none": protected(0.9, lpips=0.0),
            "veil": protected(0.1, white=0.95, recovered=True),
            "pixelate": protected(0.4),
        }
    )
    panels = {p.promise: p for p in board_of(doc).groups[0].panels}
    assert set(panels) == {"cloak", "concealment"}
    cloak, conceal = panels["cloak"], panels["concealment"]
    assert {(q.label, q.x) for q in cloak.points} == {("pgd", 0.1), ("none", 0.0)}
    assert [q.label for q in cloak.front] == ["none", "pgd"]  # neither dominates the other
    assert "TAR" in conceal.x_label  # every service-utility variant had TAR at FAR 1e-3
    where = {q.label: (q.x, q.y) for q in conceal.points}
    assert where == {"veil": (0.95, 0.1), "pixelate": (0.0, 0.4)}
    assert any("pixelate: utility none" in n and "x = 0" in n for n in conceal.notes)
    assert [q.label for q in conceal.front] == ["veil"]


# Grouping -----------------------------------------------------------------------------------


def test_documents_from_other_data_are_ranked_apart_with_the_reason():
    lfw1 = document({"veil": protected(0.1)})
    lfw2 = document({"pgd": protected(0.3)})
    synth = document({"none": protected(0.9)}, dataset="synthetic", fingerprint="cd" * 32)
    more = document({"mask": protected(0.5)}, identities=4)
    board = board_of(lfw1, synth, lfw2, more)
    assert [names(g) for g in board.groups] == [["veil", "pgd"], ["none"], ["mask"]]
    assert board.groups[0].reason == ""
    assert "dataset synthetic (not lfw)" in board.groups[1].reason
    assert "protocol identities 4 (not 8)" in board.groups[2].reason
    assert "split: other probe photos" in board.groups[2].reason
    assert any("3 separate rankings" in n for n in board.notes)
    page = render_leaderboard_html(board)
    assert page.count('<table class="ranking"') == 3
    assert "dataset synthetic (not lfw)" in page
    assert differences(group_key(lfw1), group_key(lfw2)) == []


def test_the_same_variant_in_two_files_names_each_run():
    board = board_of(document({"veil": protected(0.1)}), document({"veil": protected(0.2)}))
    assert [r.label for r in board.groups[0].rows] == ["veil (run0)", "veil (run1)"]


# HTML and Markdown --------------------------------------------------------------------------


class RankingTables(HTMLParser):
    """Per ranking table: its headings (column key -> cell) and rows (column key -> cell); a
    cell holds its whole text, its value span ``v``, its attack span ``by`` and data-value."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, Any]] = []
        self.inside = False
        self.cell: dict[str, str] | None = None
        self.span: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("class") == "ranking"
            if self.inside:
                self.tables.append({"headings": {}, "rows": []})
        elif not self.inside:
            return
        elif tag == "tr":
            self.tables[-1]["rows"].append({})
        elif tag in ("th", "td") and "data-col" in a:
            self.cell = {"text": "", "v": "", "by": "", "value": a.get("data-value") or ""}
            if a.get("scope") == "col":
                self.tables[-1]["headings"][a["data-col"]] = self.cell
            else:
                self.tables[-1]["rows"][-1][a["data-col"]] = self.cell
        elif tag == "span" and self.cell is not None:
            self.span = a.get("class")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td"):
            self.cell = None
        elif tag == "span":
            self.span = None
        elif tag == "table" and self.inside:
            self.inside = False
            self.tables[-1]["rows"] = [r for r in self.tables[-1]["rows"] if r]

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell["text"] += data
            if self.span in ("v", "by"):
                self.cell[self.span] += data


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Each Markdown table as rows of heading -> cell text."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| #"):
            head = [c.strip() for c in line.strip("|").split(" | ")]
            rows = []
            for body in lines[i + 2 :]:
                if not body.startswith("|"):
                    break
                cells = [c.strip() for c in body.strip("|").split(" | ")]
                rows.append(dict(zip(head, cells, strict=True)))
            tables.append(rows)
    return tables


def rich_board():
    sample = {"p0": {"original": tiny_png((200, 30, 30)), "protected": tiny_png((30, 30, 200))}}
    return board_of(
        document(
            {
                "veil": protected(0.05, recovered=True, samples=sample),
                "pgd[epsilon=8]": protected({"facenet": 0.3, "dlib_resnet": 0.45}, lpips=0.123),
                "none": protected(0.9, lpips=0.0),
            }
        ),
        document({"mask": protected(0.5)}, dataset="celeb", fingerprint="ef" * 32),
    )


def test_markdown_numbers_equal_the_html_table():
    board = rich_board()
    html = RankingTables()
    html.feed(render_leaderboard_html(board))
    md = markdown_tables(render_markdown(board))
    assert len(html.tables) == len(md) == 2
    for table, md_rows in zip(html.tables, md, strict=True):
        keys = {text["text"]: key for key, text in table["headings"].items()}
        assert len(md_rows) == len(table["rows"])
        for html_row, md_row in zip(table["rows"], md_rows, strict=True):
            for heading, text in md_row.items():
                cell = html_row[keys[heading]]
                shown = cell["v"] or cell["text"].strip()
                if cell["by"]:
                    shown += f" ({cell['by'].removeprefix('by ')})"
                assert text == shown, heading
                if heading in ("worst-case re-id", "black-box rank-1 (mean)") and cell["value"]:
                    # the sort key is the number shown, at full precision
                    assert fmt(float(cell["value"]), 2) == cell["v"].split(" ")[0]
    first = md[0]
    assert [r["protector"] for r in first] == ["veil", "pgd[epsilon=8]", "none"]
    assert first[1]["worst-case re-id"] == "0.45 [0.35, 0.55] (protected photos → dlib_resnet)"
    assert first[1]["LPIPS"] == "0.123" and first[0]["recovered SSIM"] == "0.990"


def test_markdown_names_the_dataset_models_and_counts():
    text = render_markdown(rich_board())
    assert "Dataset: lfw (fingerprint abababababab); models: sface, facenet, dlib_resnet; " in text
    assert "8 people, 24 photos protected" in text
    assert "## celeb" in text and "Ranked apart from the first table" in text


def test_page_is_self_contained_and_shows_samples_only_without_secrets():
    page = render_leaderboard_html(rich_board())
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<link" not in page and ' src="http' not in page
    assert page.count("<img ") == 2  # veil's two sample thumbnails, nothing else
    assert "no images (samples = false)" in page
    assert 'data-promise="cloak"' in page and 'data-promise="concealment"' in page
    veils = {"p0": {"original": tiny_png((1, 2, 3)), "veil": tiny_png((9, 9, 9))}}
    secret = document({"veil": protected(0.1, samples=veils)}, secrets=True)
    page = render_leaderboard_html(board_of(secret))
    assert "<img " not in page and "samples contain secrets" in page


def test_small_samples_are_flagged():
    board = board_of(document({"veil": protected(0.2)}))
    assert not any("Small sample" in n for n in board.notes)
    wide = surrogate_set(CRAFTER, msr={CRAFTER: msr_cells(0.9), "facenet": msr_cells(0.2)})
    wide.measurements["msr"]["facenet"]["held_out"].rank1_protected = rate(0.2, half=0.3)
    board = board_of(document({"veil": wide}))
    assert any("Small sample" in n for n in board.notes)
    assert 'class="num wide"' in render_leaderboard_html(board)


@pytest.fixture
def example(monkeypatch):
    from veilbench.plugins import reset_plugins
    from veilbench.testing import use_plugins

    monkeypatch.syspath_prepend(str(EXAMPLE))
    for name in [m for m in sys.modules if m.startswith("veilbench_example")]:
        monkeypatch.delitem(sys.modules, name)
    import veilbench_example

    yield use_plugins(example=veilbench_example)
    reset_plugins()


def test_example_protectors_are_marked_demo(example):
    doc = document({"example_grey": protected(0.2), "veil": protected(0.1), "gone": protected(0.3)})
    rows = {r.variant: r for r in build_leaderboard([doc], plugins=example).groups[0].rows}
    assert rows["example_grey"].info.demo and not rows["veil"].info.demo
    assert not rows["gone"].info.installed and "not installed" in rows["gone"].info.note
    assert "| example_grey (demo) |" in render_markdown(build_leaderboard([doc], plugins=example))


# The command --------------------------------------------------------------------------------


def test_command_writes_both_files_and_reads_folders(tmp_path):
    write_json_atomic(tmp_path / "a" / "results.json", document({"veil": protected(0.1)}))
    write_json_atomic(tmp_path / "b.json", document({"pgd": protected(0.3)}))
    out, md = tmp_path / "board.html", tmp_path / "board.md"
    result = CliRunner().invoke(
        build_cli(),
        ["leaderboard", str(tmp_path / "a"), str(tmp_path / "b.json"), "-o", str(out)]
        + ["--markdown", str(md)],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and md.is_file()
    assert [r["protector"] for r in markdown_tables(md.read_text())[0]] == ["veil", "pgd"]
    assert 'class="chart frontier"' in out.read_text()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("not json {", "cannot read results file"),
        (json.dumps({"hello": 1}), "not a veilbench results file"),
        ("folder", "is a folder without a results.json"),
    ],
)
def test_command_refuses_a_bad_file_in_one_line(tmp_path, content, message):
    good = tmp_path / "good.json"
    write_json_atomic(good, document({"veil": protected(0.1)}))
    bad = tmp_path / "bad.json"
    if content == "folder":
        bad.mkdir()
    elif content is not None:
        bad.write_text(content)
    out = tmp_path / "board.html"
    result = CliRunner().invoke(build_cli(), ["leaderboard", str(good), str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_command_is_registered_with_its_help_line():
    cli = build_cli()
    command = cli.commands["leaderboard"]
    real = command.load()  # type: ignore[attr-defined]
    assert command.short_help == real.help.strip().splitlines()[0]


# In a real browser --------------------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"headless browser not found at {CHROMIUM}")
def test_page_in_a_browser_renders_the_frontier_and_requests_nothing(tmp_path):
    from tests.test_browser import open_in_browser

    page = tmp_path / "leaderboard.html"
    page.write_text(render_leaderboard_html(rich_board()))
    run = open_in_browser(page, tmp_path)
    assert run.console == []
    assert run.page_requests == []
    parsed = RankingTables()
    parsed.feed(run.dom)
    assert [len(t["rows"]) for t in parsed.tables] == [3, 1]
    assert run.dom.count('class="chart frontier"') == 3  # cloak + concealment, then concealment
    assert "<polyline" in run.dom and 'class="point front"' in run.dom
    # the script ran: headings became sortable, and it logged nothing
    assert 'class="sortable"' in run.dom
