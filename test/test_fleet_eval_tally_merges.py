"""EvalTally: the tallies of any split of a data set, merged in any order, equal the tally of one pass.

This is what makes `eval --ray` report one-process figures: Ray hands batches to actors and returns them
in any order. Ties in frame score are drawn on purpose (real frames rarely tie): the worst frames kept
must then be the same ones, ranked by frame index, whatever the split.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seg_perception.evaluation.results import EvalTally, FrameView

CLASSES = 3
WORST = 4


def _view(index: int, score: float) -> FrameView:
    pixels = np.full((2, 2), index % 256, np.uint8)
    return FrameView(str(index), score, f"frame {index}", pixels, pixels, pixels)


def _tally(frames: list[tuple[int, float, np.ndarray]]) -> EvalTally:
    tally = EvalTally.empty(CLASSES, WORST, keep_pixels=True)
    for index, score, confusion in frames:
        tally.add_frame(index, _view(index, score), confusion, inference_s=0.001)
    return tally


frame_lists = st.lists(
    st.tuples(
        st.sampled_from([0.25, 0.5, 0.75, float("nan")]),  # few values: many ties; NaN frames are never worst
        st.lists(st.integers(0, 50), min_size=CLASSES * CLASSES, max_size=CLASSES * CLASSES),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(frame_lists, st.data())
def test_merged_tallies_equal_one_pass(raw: list[tuple[float, list[int]]], data: st.DataObject) -> None:
    frames = [(i, score, np.array(cells, np.int64).reshape(CLASSES, CLASSES)) for i, (score, cells) in enumerate(raw)]
    whole = _tally(frames)

    cuts = sorted(data.draw(st.sets(st.integers(1, len(frames) - 1), max_size=6)) if len(frames) > 1 else set())
    parts = [_tally(frames[a:b]) for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True)]
    merged = EvalTally.empty(CLASSES, WORST, keep_pixels=True)
    for part in data.draw(st.permutations(parts)):
        merged.merge(part)

    np.testing.assert_array_equal(merged.confusion, whole.confusion)
    assert merged.confusion.dtype == np.int64
    assert (merged.frames, merged.calls) == (whole.frames, whole.calls) == (len(frames), len(frames))
    assert [(v.stem, v.score) for v in merged.worst.frames()] == [(v.stem, v.score) for v in whole.worst.frames()]
    # The one-pass ranking itself: lowest score first; of equal scores the later frames stay (the heap
    # evicts the lowest order first), listed in frame order; NaN never kept.
    ranked = sorted((s, i) for i, s, _ in frames if not np.isnan(s))
    kept = sorted(ranked, key=lambda item: (item[0], -item[1]))[:WORST]
    assert [v.stem for v in whole.worst.frames()] == [str(i) for _, i in sorted(kept)]


def test_the_first_failing_frame_is_reported_whatever_the_merge_order() -> None:
    early, late = EvalTally.empty(CLASSES, WORST, False), EvalTally.empty(CLASSES, WORST, False)
    early.fail(11, "frame 11 is not a readable image")
    late.fail(18, "frame 18 is not a readable image")
    for first, second in ((early, late), (late, early)):
        merged = EvalTally.empty(CLASSES, WORST, False)
        merged.merge(first)
        merged.merge(second)
        assert merged.failure == (11, "frame 11 is not a readable image")
