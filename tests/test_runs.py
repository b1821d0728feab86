import numpy as np

from hawor.runs import consecutive_runs, false_runs, frame_runs


def test_runs_of_consecutive_frames_as_positions_and_as_frames():
    frames = np.array([2, 3, 4, 7, 9, 10])
    runs = consecutive_runs(frames)
    assert [frames[r].tolist() for r in runs] == [[2, 3, 4], [7], [9, 10]]
    assert frame_runs(frames) == [(2, 5), (7, 8), (9, 11)]
    assert consecutive_runs(np.array([], np.int64)) == [] and frame_runs([]) == []


def test_runs_where_a_mask_is_false_reach_the_ends():
    valid = np.array([0, 1, 1, 0, 0, 1, 0], bool)
    assert false_runs(valid) == [(0, 1), (3, 5), (6, 7)]
    assert false_runs(np.ones(3, bool)) == []
    assert false_runs(np.zeros(4, bool)) == [(0, 4)]
