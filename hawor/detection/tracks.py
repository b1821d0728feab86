"""Hand tracks: what detection hands to estimation.

One track per hand side ("left", "right"); a track lists only the frames where the hand was detected.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hawor.detection.hand_roi import box_iou
from hawor.runs import frame_runs


@dataclass
class HandTrack:
    """Detections of one hand over a video.

    Attributes:
        side: "left" or "right".
        frame_indices: (M,) int64, increasing, unique frame indices with a detection.
        boxes: (M, 4) float64 pixel boxes x1, y1, x2, y2 in the full image.
        scores: (M,) float64 detection confidence in [0, 1].
        keypoints_2d: (M, 21, 2) float64 pixels, OpenPose order, or None when the detector gives none.
        keypoints_3d: (M, 21, 3) float64 metres, wrist-relative, camera axes, or None.
    """

    side: str
    frame_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    keypoints_2d: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.frame_indices))


@dataclass
class Detection:
    """One hand found in one frame by a tracker (before the tracks are merged into sides).

    Attributes:
        track_id: the tracker's id of this hand (any hashable).
        frame: frame index.
        box: (4,) pixel box x1, y1, x2, y2.
        score: detection confidence in [0, 1].
        right: handedness vote in [0, 1]: the class (0 left, 1 right) or a probability of "right".
        keypoints_2d: (21, 2) pixels or None.  keypoints_3d: (21, 3) metres, wrist-relative, or None.
    """

    track_id: object
    frame: int
    box: np.ndarray
    score: float
    right: float
    keypoints_2d: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None


def _vote_right(dets: list[Detection]) -> float:
    return float(np.mean([d.right for d in dets]))


def _strength(dets: list[Detection], side: str) -> tuple[float, int]:
    """How sure a track is of ``side``: its votes' summed distance from 0.5 towards that side (so one
    confident frame does not outweigh a long track that is fairly sure), then its length. Negative
    where its votes point to the other side: a track that its image position alone put on ``side``
    (hands crossing) is the least sure of it, however confident its votes were."""
    evidence = float(np.sum([d.right - 0.5 for d in dets]))
    return (evidence if side == "right" else -evidence), len(dets)


def _distinct_hands(a: list[Detection], b: list[Detection], shared: set, max_iou: float = 0.3) -> bool:
    """True when two tracks' boxes in their shared frames are apart (two hands, not one hand twice)."""
    box_a = {d.frame: d.box for d in a if d.frame in shared}
    box_b = {d.frame: d.box for d in b if d.frame in shared}
    frames = sorted(shared)
    ious = [box_iou(box_a[f][None], box_b[f][None])[0, 0] for f in frames]
    return float(np.mean(ious)) < max_iou


def _fix_handedness_swaps(groups: dict, side_of: dict, max_overlap: float = 0.1) -> list[str]:
    """Move a track to the other side when it is seen next to a surer track of its own side.

    Two tracks whose boxes are apart in the same frames are two different hands, so both cannot
    be (say) right. The less sure track (:func:`_strength`) moves, but only if it barely overlaps
    in time with the tracks already on the other side (so e.g. two people's right hands stay).
    Returns one note per move.
    """
    frames_of = {tid: {d.frame for d in dets} for tid, dets in groups.items()}
    notes = []
    for _ in range(len(groups)):
        moved = False
        for tid in sorted(groups, key=lambda t: _strength(groups[t], side_of[t])):
            side = side_of[tid]
            rivals = [o for o in groups if o != tid and side_of[o] == side
                      and _strength(groups[o], side) >= _strength(groups[tid], side)
                      and frames_of[o] & frames_of[tid]
                      and _distinct_hands(groups[tid], groups[o], frames_of[o] & frames_of[tid])]
            if not rivals:
                continue
            other = "left" if side == "right" else "right"
            taken = set().union(set(), *[frames_of[o] for o in groups if side_of[o] == other])
            if len(frames_of[tid] & taken) <= max_overlap * len(frames_of[tid]):
                side_of[tid] = other
                notes.append(f"track {tid} moved {side}->{other}: seen next to a surer {side} track "
                             f"({rivals[0]}) in the same frames")
                moved = True
                break
        if not moved:
            break
    return notes


def _pair_positions(groups: dict) -> dict:
    """Egocentric prior: of two distinct hands seen in the same frames, the one further right in the
    image is the right hand. Returns, per track with such company, (frames in which it is the right-most
    of a pair, frames shared with another hand) (tracks never seen beside another hand are absent)."""
    centre_x = {tid: {d.frame: 0.5 * (d.box[0] + d.box[2]) for d in dets} for tid, dets in groups.items()}
    counts: dict = {}
    for a in groups:
        for b in groups:
            shared = centre_x[a].keys() & centre_x[b].keys()
            if a == b or not shared or not _distinct_hands(groups[a], groups[b], shared):
                continue
            right_of = sum(centre_x[a][f] > centre_x[b][f] for f in shared)
            wins, total = counts.get(a, (0, 0))
            counts[a] = (wins + right_of, total + len(shared))
    return counts


def _lone_position_votes(groups: dict, image_width: float) -> dict:
    """Egocentric prior for a hand seen alone: the further right in the image, the likelier the right
    hand; and a hand whose fingers lean left of image-up (its forearm coming from the lower right) is
    likelier right. Per track, the mean of the box centre's x / image width (in [0, 1]) and, when the
    detections have keypoints, of the share of frames leaning left (wrist -> middle knuckle)."""
    votes = {}
    for tid, dets in groups.items():
        x = float(np.clip(np.mean([0.5 * (d.box[0] + d.box[2]) for d in dets]) / image_width, 0, 1))
        if all(d.keypoints_2d is not None for d in dets):
            lean = np.array([d.keypoints_2d[9, 0] - d.keypoints_2d[0, 0] for d in dets])
            x = 0.5 * (x + float(np.mean(lean < 0)))
        votes[tid] = x
    return votes


def _position_votes(groups: dict, votes: dict, image_width: float | None) -> dict:
    """Per track, P(right) from where it is: each of its frames votes by the pair prior
    (:func:`_pair_positions`) where it is seen beside another hand, else by the lone prior
    (:func:`_lone_position_votes`) given ``image_width``, else by the track's handedness ``votes``.
    Weighting by frames keeps one frame next to a stray duplicate from outvoting a long track."""
    pairs = _pair_positions(groups)
    lone = _lone_position_votes(groups, image_width) if image_width else votes
    out = {}
    for tid, dets in groups.items():
        wins, total = pairs.get(tid, (0, 0))
        shared = min(total, len(dets)) / len(dets)
        out[tid] = shared * (wins / total if total else 0.5) + (1 - shared) * lone[tid]
    return out


def merge_tracks(detections: list[Detection], fix_swaps: bool = True, egocentric: bool = True,
                 image_width: float | None = None) -> tuple[dict[str, HandTrack], list[str]]:
    """Merge tracker tracks into exactly one left and one right track.

    As the official code: each tracker track goes to the left pool when the mean of its
    handedness votes is < 0.5, else to the right pool; a pool's tracks are concatenated and
    sorted by frame. Fixes (the official leaves all unhandled): with ``egocentric``, a track votes
    half by its handedness scores and half by its image position (:func:`_position_votes`: beside
    another hand, the right-most is the right hand; alone, given ``image_width``, the further right
    the likelier; classifiers confuse palm and back views, while in a head-mounted view the arms
    rarely cross); with ``fix_swaps``, a track that overlaps in time with a stronger track of the same
    side moves to the other side (:func:`_fix_handedness_swaps`); and a frame held by several tracks
    of one pool keeps only the most confident detection, so frame indices are unique.

    Returns:
        ({"left": HandTrack, "right": HandTrack}, notes describing each fix applied).
    """
    groups: dict = {}
    for det in detections:
        groups.setdefault(det.track_id, []).append(det)
    votes = {tid: _vote_right(dets) for tid, dets in groups.items()}
    notes = []
    if egocentric:
        for tid, position in _position_votes(groups, votes, image_width).items():
            combined = 0.5 * (votes[tid] + position)
            if (combined < 0.5) != (votes[tid] < 0.5):
                notes.append(f"track {tid}: handedness vote {votes[tid]:.2f} overruled by its image position "
                             f"({position:.2f} for the right hand)")
            votes[tid] = combined
    side_of = {tid: ("left" if vote < 0.5 else "right") for tid, vote in votes.items()}
    notes += _fix_handedness_swaps(groups, side_of) if fix_swaps else []
    tracks = {}
    for side in ("left", "right"):
        best: dict[int, Detection] = {}
        duplicates = 0
        for tid, dets in groups.items():
            if side_of[tid] != side:
                continue
            for det in dets:
                if det.frame in best:
                    duplicates += 1
                    if det.score <= best[det.frame].score:
                        continue
                best[det.frame] = det
        if duplicates:
            notes.append(f"{side}: {duplicates} duplicate frame detection(s) dropped (kept the most confident)")
        tracks[side] = track_from_detections(side, [best[f] for f in sorted(best)])
    return tracks, notes


ISOLATED_MAX_FRAMES = 3  # a run of at most this many consecutive detections ...
ISOLATED_MIN_GAP = 5  # ... with no other detection of its side within this many frames is dropped


def drop_isolated(track: HandTrack, num_frames: int, max_frames: int = ISOLATED_MAX_FRAMES,
                  min_gap: int = ISOLATED_MIN_GAP) -> tuple[HandTrack, int]:
    """The track without the hands it saw alone: runs of at most ``max_frames`` consecutive frames with
    ``min_gap`` or more frames missing on both sides. Frames before the video's first or after its last
    (of ``num_frames``) are not missing: a short clip or a still image keeps its hands.

    Such sightings were often wrong (landmark backend, 34 generated clips: runs of 1-2 frames seen alone
    were over 30 cm off in 39 % of their frames, of up to 5 frames in 25 %, longer runs in 5-7 %: a false
    hand, the other hand, or a sliver of a hand at a wrong depth), and the gap filling spread each over
    up to a second of frames. Returns the track and how many detections were dropped."""
    frames = track.frame_indices
    if len(frames) == 0:
        return track, 0
    runs = frame_runs(frames)
    ends = [0] + [end for _, end in runs]  # where the missing frames before each run begin
    firsts = [first for first, _ in runs] + [num_frames]  # where those after each run end
    keep = np.ones(len(frames), bool)
    for k, (first, end) in enumerate(runs):
        if end - first <= max_frames and min(first - ends[k], firsts[k + 1] - end) >= min_gap:
            keep[(frames >= first) & (frames < end)] = False
    if keep.all():
        return track, 0
    keypoints = [None if k is None else k[keep] for k in (track.keypoints_2d, track.keypoints_3d)]
    return HandTrack(track.side, frames[keep], track.boxes[keep], track.scores[keep], *keypoints), int((~keep).sum())


def track_from_detections(side: str, dets: list[Detection]) -> HandTrack:
    """Stack detections (already sorted by frame, one per frame) into a :class:`HandTrack`."""
    if not dets:
        return HandTrack(side=side)
    has_2d = all(d.keypoints_2d is not None for d in dets)
    has_3d = all(d.keypoints_3d is not None for d in dets)
    return HandTrack(
        side=side,
        frame_indices=np.array([d.frame for d in dets], np.int64),
        boxes=np.stack([np.asarray(d.box, np.float64) for d in dets]),
        scores=np.array([d.score for d in dets], np.float64),
        keypoints_2d=np.stack([d.keypoints_2d for d in dets]).astype(np.float64) if has_2d else None,
        keypoints_3d=np.stack([d.keypoints_3d for d in dets]).astype(np.float64) if has_3d else None,
    )
