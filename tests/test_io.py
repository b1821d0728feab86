import json

import numpy as np
import pytest

from conftest import write_audio_only
from hawor.errors import HaworInputError
from hawor.io.files import atomic_path, save_npz_atomic, write_json_atomic
from hawor.io.video import VideoReader, VideoWriter, probe_video


def test_video_round_trip(tmp_path):
    frames = [np.full((48, 64, 3), (i * 20, 100, 200 - i * 10), np.uint8) for i in range(12)]
    with VideoWriter(tmp_path / "v.mp4", fps=25, size=(64, 48)) as writer:
        for frame in frames:
            writer.write(frame)
    assert not list(tmp_path.glob("*.tmp-*"))
    info = probe_video(tmp_path / "v.mp4")
    assert (info.fps, info.num_frames, info.size) == (25.0, 12, (64, 48))
    decoded = list(VideoReader(tmp_path / "v.mp4"))
    assert len(decoded) == 12 and decoded[0].shape == (48, 64, 3)
    assert np.abs(decoded[5].astype(int) - frames[5]).mean() < 4  # lossy, but close
    picked = VideoReader(tmp_path / "v.mp4").read([7, 2, 7])
    assert np.array_equal(picked[0], decoded[7]) and np.array_equal(picked[1], decoded[2])


def test_the_same_frames_encode_to_the_same_video(tmp_path):
    """Rendered frames (flat shading, textures) encoded three times decode to the same frames: a
    regenerated sequence is the same video. (x264's macroblock-tree made two of three differ here.)"""
    from hawor.data.synthetic.generate import render_frames, simulate

    frames = [rgb.copy() for rgb, _, _ in render_frames(simulate(5, 30, 320, 240, 30.0, None, hand_backend="open"))]
    decoded = []
    for k in range(3):
        with VideoWriter(tmp_path / f"v{k}.mp4", 30.0, (320, 240)) as writer:
            for frame in frames:
                writer.write(frame)
        decoded.append(np.stack(list(VideoReader(tmp_path / f"v{k}.mp4"))))
    assert all(np.array_equal(decoded[0], other) for other in decoded[1:])


def test_failed_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "v.mp4", fps=30, size=(32, 32)) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("crash mid-way")
    assert list(tmp_path.iterdir()) == []


def test_bad_videos(tmp_path):
    with pytest.raises(HaworInputError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(HaworInputError, match="junk.mp4: cannot be opened"):
        probe_video(tmp_path / "junk.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(HaworInputError, match="empty.mp4"):
        probe_video(tmp_path / "empty.mp4")


def test_audio_only_file_is_refused(tmp_path):
    path = tmp_path / "audio.m4a"
    write_audio_only(path)
    with pytest.raises(HaworInputError, match="no video stream"):
        probe_video(path)


def test_atomic_helpers(tmp_path):
    save_npz_atomic(tmp_path / "a.npz", x=np.arange(3))
    assert np.load(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]
    write_json_atomic(tmp_path / "s.json", {"n": np.int64(3), "v": np.ones(2)})
    assert json.loads((tmp_path / "s.json").read_text()) == {"n": 3, "v": [1.0, 1.0]}
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("half")
            raise ValueError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "s.json"]


# ------------------------------------------------------------------------------------ prefetch

def test_prefetch_keeps_order_and_raises_where_the_producer_failed():
    from hawor.io.prefetch import prefetch

    assert list(prefetch(range(100), depth=3)) == list(range(100))

    def failing():
        yield from range(5)
        raise HaworInputError("frame 5 is corrupt")

    got = []
    with pytest.raises(HaworInputError, match="frame 5 is corrupt"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_prefetch_stops_its_producer_when_the_consumer_leaves_early():
    import threading

    from hawor.io.prefetch import prefetch

    produced = []

    def endless():
        k = 0
        while True:
            produced.append(k)
            yield k
            k += 1

    for item in prefetch(endless(), depth=2):
        if item == 10:
            break
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 10 + 1 + 2 + 1  # consumed, the break, the buffer, one in flight
