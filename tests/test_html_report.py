"""``batchcore report``: one self-contained page (no address outside it), its sections those the files hold,
figures embedded; opened in headless Chromium (Debian's package), which renders it and loads every image.
CI installs Chromium and sets BATCHCORE_REQUIRE_BROWSER=1, so there the browser test cannot skip."""

import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

import batchcore as bc
from batchcore import report as html_report

pytest.importorskip("matplotlib")
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    labels = np.random.default_rng(0).integers(0, 4, 64)
    bc.sweep(bc.mlp([16, 8, 4], seed=0), batch_sizes=[1, 2, 8, 64], backends=[bc.numpy(), bc.native()], rows=64,
             labels=labels, timer=bc.Timer(min_time_s=0, timeout_s=0.05, target=0.5), rounds=2, ceilings=False,
             out=folder / "run.jsonl")
    study = bc.studies.Study("accuracy", "Does a larger batch change predictions?", "No prediction changed.",
                             [bc.studies.Table("per B", ["backend", "B"], [["numpy", 1]])],
                             data={"points": [{"backend": "numpy", "batch_size": 1, "accuracy": 0.5,
                                               "accuracy_ci": [0.4, 0.6]}], "flips": []}, env=bc.info())
    study.to_json(folder / "study.json")
    from test_flips import tied_model

    model, x = tied_model(K=64)  # tied classes: rounding flips; library-like: one tree per class of bits
    bc.sweep(model, [1, 2, 130], backends=[bc.native(policy="library-like", threads=1)], data=x[:260],
             labels=np.zeros(260, np.int64), timer=bc.Timer(min_time_s=0, timeout_s=0.05, target=0.5), rounds=1,
             ceilings=False, progress=False, explain=True, out=folder / "why.jsonl")
    bc.studies.orders(Ks=(16, 256), conds=(1.0, 1e3), rows=20, progress=False).to_json(folder / "orders.json")
    return folder


ALL = ("run.jsonl", "study.json", "why.jsonl", "orders.json")


def test_the_page_holds_the_sections_of_what_the_files_hold(files, tmp_path):
    page = html_report.render([files / "run.jsonl", files / "study.json"], latency_ms=1.0, budget_bytes=10**6)
    for heading in ("Does the batch size change the predictions?", "How fast, and how much memory?",
                    "Does a larger batch change predictions?", "Environment"):
        assert heading in page
    assert "native[seq]: the same bits at every batch size." in page
    assert "best B with p99 &lt;= 1 ms" in page and "95 % Wilson interval" in page
    # the sweep: bits and flips, classes, latency and throughput, memory; the study: its accuracy figure
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 5
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing loaded from anywhere
    only_sweep = html_report.render([files / "run.jsonl"])
    assert "Does a larger batch change predictions?" not in only_sweep and "Environment" in only_sweep


def test_the_command_writes_the_page_and_refuses_what_is_not_a_result(files, tmp_path, capsys):
    from batchcore.cli import main

    out = tmp_path / "report.html"
    assert main(["report", str(files / "run.jsonl"), "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    (tmp_path / "foreign.json").write_text('{"hello": 1}')
    assert main(["report", str(tmp_path / "foreign.json"), "-o", str(tmp_path / "bad.html")]) == 2
    assert "ResultFileError" in capsys.readouterr().err and not (tmp_path / "bad.html").exists()


def test_chromium_renders_the_page_and_loads_every_image(files, tmp_path):
    if BROWSER is None:
        if os.environ.get("BATCHCORE_REQUIRE_BROWSER") == "1":
            pytest.fail("BATCHCORE_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    page = html_report.render([files / name for name in ALL])
    # The harness's script (not part of the report) titles the page with how many images decoded.
    probe = ("<script>window.addEventListener('load', () => { const im = [...document.images]; document.title = "
             "'IMAGES ' + im.filter(i => i.complete && i.naturalWidth > 0).length + ' OF ' + im.length; });</script>")
    path = tmp_path / "page.html"
    path.write_text(page.replace("</body>", probe + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--virtual-time-budget=10000"]
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([BROWSER, *flags, f"--user-data-dir={profile}", "--dump-dom", path.as_uri()],
                              capture_output=True, text=True, timeout=120)
        shot = tmp_path / "page.png"
        subprocess.run([BROWSER, *flags, f"--user-data-dir={profile}", "--window-size=1200,2000",
                        f"--screenshot={shot}", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", done.stdout).group(1)
    images = page.count("<img ")
    assert title == f"IMAGES {images} OF {images}", title
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
    assert done.stdout.count("<svg") == page.count("<svg") > 0  # the trees drawn small are in the rendered DOM


def test_the_why_section_names_each_tree_and_draws_it_and_flips_say_rounding(files):
    """The explained sweep's log (its explain lines joined to its points) gives the section: one row per tree
    with the batch sizes that used it, drawn small; the flips of tied classes are listed as within rounding;
    the orders study brings its figure."""
    page = html_report.render([files / name for name in ALL])
    why = page[page.index("Why the bits differ"):]
    why = why[:why.index("</table>")]
    assert why.count("<tr>") == 1 + 3  # lanes:16 at B=1, seq at 2, splitk:4 at 130
    for cell in ("<td>1</td><td>lanes:16</td>", "<td>2</td><td>seq</td>", "<td>130</td><td>splitk:4</td>"):
        assert cell in why
    assert why.count("<svg") == 3 and why.count("<td>yes</td>") >= 3  # fma, float32
    flips = page[page.index("Changed predictions: rounding or not?"):]
    assert "within rounding" in flips and "suspect" not in flips.split("</table>")[0].split("<table>")[1]
    orders = page[page.index("against its textbook bound"):]
    assert '<img alt="each order' in orders


def test_one_format_per_kind_of_figure_and_readable_environment():
    assert html_report._fmt(12032) == "12,032" and html_report._fmt(12032.0) == "12,032"  # ULP distances, counts
    assert html_report._fmt(0.16761) == "0.1676" and html_report._fmt(3) == "3" and html_report._fmt(None) == "-"
    cell = html_report._env_value({"model": "167", "flags": ["avx2", "avx512"], "build": {"cxx": "g++ <12>"}})
    assert cell == "model: 167<br>flags: avx2, avx512<br>build:<br>&nbsp;&nbsp;cxx: g++ &lt;12&gt;"  # no JSON braces
    assert "<td>12,032</td>" in html_report.table(["maxULP"], [[12032]])


def test_the_full_table_scrolls_and_an_accuracy_study_without_flips_has_no_empty_panel(files):
    page = html_report.render([files / "run.jsonl", files / "study.json"])
    assert '<div class="wide"><pre>' in page
    from batchcore.studies.figures import figures_of

    study = html_report.load(files / "study.json")
    (fig, alt), = figures_of(study)
    assert len(fig.axes) == 1 and "no prediction changed" in alt
