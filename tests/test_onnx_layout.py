"""Where the batch lies in an ONNX value (batchcore/frontends/onnx/layout.py), worked out by hand."""

import pytest

from batchcore.frontends.onnx.layout import BatchLayout, batch_axis, made_layout


def test_the_batch_axis_is_the_one_dimension_that_scales_with_the_batch():
    assert batch_axis((2, 5, 8), (3, 5, 8)) == (0, 1)
    assert batch_axis((5, 8, 8), (5, 12, 8)) == (1, 4)   # 2 x 4 and 3 x 4: merged with 4 entries
    assert batch_axis((5, 8), (5, 8)) is None            # no batch
    assert batch_axis((2, 2), (3, 3)) is None            # two axes
    assert batch_axis((5, 7), (5, 10)) is None           # 7 is no multiple of 2
    assert batch_axis((2, 5), (3, 5, 1)) is None


def test_a_sample_drops_a_lone_batch_axis_and_keeps_a_merged_one_cut_to_its_group():
    alone, merged = BatchLayout(1), BatchLayout(0, 4)
    assert alone.sample_shape((5, 3, 8), 3) == (5, 8) and merged.sample_shape((12, 5, 2), 3) == (4, 5, 2)
    assert [alone.sample_axis(a) for a in range(3)] == [0, None, 1]
    assert [merged.sample_axis(a) for a in range(3)] == [None, 1, 2]
    assert BatchLayout(0).batch_first and not alone.batch_first and not merged.batch_first
    # consecutive samples: 8 floats apart in (5, B, 8); 4 x 5 x 2 = 40 in (B*4, 5, 2) outer, 10 inner
    assert alone.batch_stride((5, 2, 8)) == 8 and merged.batch_stride((8, 5, 2)) == 40
    assert BatchLayout(0, 4, outer=False).batch_stride((8, 5, 2)) == 10


@pytest.mark.parametrize("source, source_full, full2, full3, want", [
    # (L, B, E) -> (L, B*H, d): the batch's stride E = H d, so it is the outer factor
    (BatchLayout(1), (5, 2, 8), (5, 4, 4), (5, 6, 4), BatchLayout(1, 2, True)),
    # (L, B, E) -> (L*B, E): stride E = the rows' own: the inner factor
    (BatchLayout(1), (5, 2, 8), (10, 8), (15, 8), BatchLayout(0, 5, False)),
    # (B*H, L, d) -> (B, H*L*d) back to one sample per row
    (BatchLayout(0, 2, True), (4, 5, 3), (2, 30), (3, 30), BatchLayout(0)),
    # (L, B, E) read as (B, L, E): the stride changes (E -> L E): samples mixed
    (BatchLayout(1), (5, 2, 8), (2, 5, 8), (3, 5, 8), None),
])
def test_a_reshape_keeps_the_batch_stride_or_mixes_samples(source, source_full, full2, full3, want):
    assert made_layout("Reshape", source, source_full, full2, full3) == want


def test_a_transpose_moves_the_axis_and_other_operations_keep_the_factor():
    inner = BatchLayout(0, 5, False)
    assert made_layout("Transpose", inner, (10, 8), (8, 10), (8, 15), [1, 0]) == BatchLayout(1, 5, False)
    assert made_layout("Transpose", inner, (10, 8), (8, 10), (8, 15), [0, 1]) is None  # not where the perm puts it
    assert made_layout("Softmax", inner, (10, 8), (10, 8), (15, 8)) == inner
    assert made_layout("Add", BatchLayout(0), (2, 8), (4, 8), (6, 8)) is None  # merged by no reshape
