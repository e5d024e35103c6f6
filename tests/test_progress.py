"""Progress is drawn on a terminal only (or when asked), never into logs or pipes: a sweep asked to show it
writes its steps to standard error, one not asked (standard error not a terminal) writes nothing there."""

import pytest

import batchcore as bc
from batchcore.present.progress import Steps, enabled

TIMER = dict(timer=bc.Timer(min_time_s=0, timeout_s=0.05, target=0.5), rounds=2, ceilings=False, rows=16)


def test_who_decides_whether_to_draw(monkeypatch):
    monkeypatch.delenv("BATCHCORE_PROGRESS", raising=False)
    assert enabled(None) is False  # pytest captures standard error: not a terminal
    monkeypatch.setenv("BATCHCORE_PROGRESS", "1")
    assert enabled(None) is True and enabled(False) is False
    monkeypatch.setenv("BATCHCORE_PROGRESS", "0")
    assert enabled(None) is False and enabled(True) is True
    with pytest.raises(bc.ArgumentError, match="progress must be True, False or None"):
        enabled("yes")


def test_a_sweep_shows_its_steps_only_when_asked(capsys, monkeypatch):
    monkeypatch.delenv("BATCHCORE_PROGRESS", raising=False)
    model = bc.mlp([8, 4], seed=0)
    bc.sweep(model, batch_sizes=[1, 4], backends=[bc.native()], progress=False, **TIMER)
    assert capsys.readouterr().err == ""
    # standard error is not a terminal here: no bar, but a line per backend when it starts and finishes
    bc.sweep(model, batch_sizes=[1, 4], backends=[bc.native(), bc.numpy()], **TIMER)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["sweep: outputs of 2 backend(s) at 2 batch size(s)", "sweep: timing native[seq], 2 points in 2 rounds",
                     "sweep: timing numpy, 2 points in 2 rounds", "sweep: native[seq] finished", "sweep: numpy finished"]
    bc.sweep(model, batch_sizes=[1, 4], backends=[bc.native()], progress=True, **TIMER)
    err = capsys.readouterr().err
    assert "sweep" in err and "4/4" in err  # 2 sizes x 2 rounds, all done


def test_steps_that_do_not_draw_cost_nothing(monkeypatch, capsys):
    import rich.progress

    def no_bar(*args, **kwargs):
        raise AssertionError("a bar was made for steps that do not draw")

    monkeypatch.setattr(rich.progress, "Progress", no_bar)  # what Steps would draw with
    with Steps("x", 3, progress=False) as steps:
        assert not steps.drawing
        steps.now("a")
        steps.done()
        steps.total(5)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(AssertionError, match="a bar was made"), Steps("x", 3, progress=True):
        pass  # the planted check bites when a bar is asked for
