"""Figures and frames of a sweep: ``to_pandas`` holds every point's documented fields and the class ids of
``classes()``; ``plot`` writes a real PNG, SVG or PDF atomically, refuses other suffixes, and draws its
panels from the points (checked on the axes' data, not on pixels)."""

import numpy as np
import pytest

import batchcore as bc
from batchcore.present import plots
from batchcore.results.sweep_result import POINT_FIELDS

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def res():
    model = bc.mlp([16, 8, 4], seed=0)
    labels = np.random.default_rng(0).integers(0, 4, 64)
    return bc.sweep(model, batch_sizes=[1, 2, 8, 64], backends=[bc.numpy(), bc.native()], rows=64, labels=labels,
                    timer=bc.Timer(min_time_s=0, timeout_s=0.05, target=0.5), rounds=1, ceilings=False)


def test_to_pandas_has_the_documented_columns_and_classes(res):
    pd = pytest.importorskip("pandas")
    frame = res.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == [*POINT_FIELDS, "class_id"]
    assert len(frame) == len(res.points)
    assert frame["batch_size"].tolist() == [p["batch_size"] for p in res.points]
    for label, groups in res.classes().items():
        rows = frame[frame.backend == label]
        for B, c in zip(rows.batch_size, rows.class_id, strict=False):
            assert B in groups[c]
    assert (frame[frame.backend == "native[seq]"].class_id == 0).all()


@pytest.mark.parametrize("suffix, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plot_writes_each_format(res, tmp_path, suffix, magic):
    path = tmp_path / f"sweep.{suffix}"
    res.plot(path, budget_bytes=2**20)
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_plot_refuses_unknown_suffixes_and_bad_budgets(res, tmp_path):
    with pytest.raises(bc.ArgumentError, match=r"\.png, \.svg or \.pdf"):
        res.plot(tmp_path / "sweep.jpeg")
    with pytest.raises(bc.ArgumentError, match="budget_bytes"):
        res.plot(tmp_path / "sweep.png", budget_bytes=-1)
    assert list(tmp_path.iterdir()) == []


def test_the_panels_draw_the_points(res):
    fig, (lat, thr, bits, mem) = plots.figure(8, 8, 2, 2)
    plots.draw_latency(lat, res.points)
    plots.draw_throughput(thr, res.points)
    plots.draw_bits(bits, res.points)
    plots.draw_memory(mem, res.points, budget_bytes=12345)
    for ax, field in ((lat, "time_ms"), (thr, "samples_per_s"), (bits, "bitwise_equal_frac")):
        drawn = {line.get_label(): line for line in ax.lines}
        for label in ["numpy", "native[seq]"]:
            line = drawn[label]  # a panel that draws no line for a backend fails here
            pts = [p for p in res.points if p["backend"] == label]
            assert list(line.get_xdata()) == [p["batch_size"] for p in pts]
            assert list(line.get_ydata()) == [p[field] for p in pts]
    native_mem = [p["peak_bytes"] / 2**20 for p in res.points if p["backend"] == "native[seq]"]
    assert list(mem.lines[0].get_ydata()) == native_mem  # numpy has no memory: only native's line
    assert mem.lines[-1].get_ydata()[0] == pytest.approx(12345 / 2**20)  # the budget


def test_plots_need_matplotlib(res, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(bc.MissingDependencyError, match="matplotlib"):
        res.plot(tmp_path / "x.png")


def test_legends_sit_outside_the_data_and_log_axes_read_as_plain_numbers(res):
    fig, (lat, mem) = plots.figure(10, 4, 1, 2)
    plots.draw_latency(lat, res.points)
    plots.draw_memory(mem, res.points, budget_bytes=12345)
    fig.canvas.draw()  # a layout, so that extents are final
    for ax in (lat, mem):
        legend = ax.get_legend().get_window_extent()
        assert legend.y1 <= ax.get_window_extent().y0  # under the panel: it covers no error bar or band
    labels = [t.get_text() for t in mem.yaxis.get_ticklabels() if t.get_text()]
    assert labels and all("times" not in t and "^" not in t for t in labels), labels  # "0.5", never "5x10^-1"
    assert all(float(t) > 0 for t in labels)
