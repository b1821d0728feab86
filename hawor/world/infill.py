"""Fill the frames where a hand was not observed: the learned HaWoR infiller, or interpolation.

Learned infilling follows the official scheme (docs/outputs.md, Gap filling): windows of at most ``horizon`` frames
anchored on the nearest earlier frame where every hand is valid, both hands canonicalised to the
window's first frame, gaps pre-filled by SLERP/linear interpolation, the network predicts the whole
window and only unobserved entries are replaced; a filled window counts as valid afterwards.

Deliberate fixes, each documented in docs/outputs.md:
- a hand that is never observed is not invented: it stays NaN and is not part of the anchor test,
  and its slot in the network input is a copy of the other hand (so one-hand videos work);
- the last frame is included (windows end at N, not N - 1);
- a gap longer than the horizon is filled by chained windows (each anchored on the previous fill),
  and with ``max_gap`` longer gaps are left NaN - never zeros;
- pre-filling happens in world space and the canonical frame is the window's first frame *after*
  pre-filling, so a window starting on an unobserved frame is not canonicalised from zeros;
- a window always holds at least one visible frame, so attention is never fully masked;
- filled frames are flagged ``infilled`` (observed flags are untouched).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hawor.geometry import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d_rowmajor,
    rot6d_rowmajor_to_matrix,
)
from hawor.errors import HaworInputError
from hawor.hands import HandModel
from hawor.models.checkpoint import extract_state_dict, load_checkpoint, load_state_dict_strict
from hawor.models.infiller import HAND_FEATURES, InfillerConfig, MotionInfiller, observed_attention_mask
from hawor.runs import false_runs
from hawor.world.assemble import rigid_transform_hand, wrist_rest
from hawor.world.interpolate import DEFAULT_MAX_GAP, interpolate_frames, interpolate_gaps
from hawor.world.sequence import HandSequence

FEATURE_ORDER = ("left", "right")  # network input layout: [left 109 | right 109]
FILL_ORDER = ("right", "left")  # official processing order
WEIGHTS_KEY = "transformer_encoder_state_dict"


def load_infiller(path: str | Path, config: InfillerConfig | None = None,
                  device: str | torch.device = "cpu") -> MotionInfiller:
    """Build the infiller and load ``infiller.pt`` (weights under ``transformer_encoder_state_dict``).

    Without ``config`` the sizes are read from the tensor shapes (the released file gives the
    official 120/384/2048/8 model); the head count comes from an ``nhead`` entry if the file has
    one, else the official 8.
    """
    checkpoint = load_checkpoint(path)
    state = extract_state_dict(checkpoint, key=WEIGHTS_KEY if WEIGHTS_KEY in checkpoint else None, source=str(path))
    if config is None:
        try:
            config = InfillerConfig.from_state_dict(state, nhead=int(checkpoint.get("nhead", 8)))
        except (KeyError, IndexError, AttributeError) as exc:
            raise HaworInputError(f"{path}: not a motion-infiller weight file (missing {exc}); pass the "
                                  "official infiller.pt (--infiller_weight).") from exc
    model = MotionInfiller(config)
    load_state_dict_strict(model, state, source=str(path))
    return model.to(device).eval()


def fill_hands(hands: dict[str, HandSequence], hand_models: dict[str, HandModel],
               network: nn.Module | None = None, max_gap: int | None = DEFAULT_MAX_GAP) -> dict[str, HandSequence]:
    """Fill gaps with ``network`` (a :class:`MotionInfiller`) when given, else by interpolation.

    ``max_gap``: longest run of missing frames that is filled (None: no limit for the network; the
    interpolation never extrapolates past the first/last observation).
    """
    if network is None:
        return {side: interpolate_gaps(seq, max_gap) for side, seq in hands.items()}
    return infill_learned(hands, hand_models, network, network.config.seq_len, max_gap)


def infill_learned(hands: dict[str, HandSequence], hand_models: dict[str, HandModel], network: nn.Module,
                   horizon: int, max_gap: int | None = None) -> dict[str, HandSequence]:
    """Learned infilling of both hands' world-space sequences (see the module docstring).

    ``network(src (H,1,218), data_mask (H,1,1), atten_mask (1,1,H,H)) -> (H,1,218)`` with H = horizon.
    """
    state = _InfillState(hands, hand_models, network, horizon)
    if not state.present:
        return hands
    for side in (s for s in FILL_ORDER if s in state.present):
        for start, end in false_runs(state.valid[side]):  # runs listed once per hand, as the official code
            if max_gap is not None and end - start > max_gap:
                continue
            while not state.valid[side][start:end].all():
                m = start + int(np.argmin(state.valid[side][start:end]))
                state.fill_window(side, *state.window_for(side, m))
    return {side: state.result(side) for side in hands}


class _InfillState:
    """Parameters and validity of both hands while windows are being filled."""

    def __init__(self, hands, hand_models, network, horizon):
        self.hands, self.models, self.network, self.horizon = hands, hand_models, network, horizon
        self.present = [s for s in FEATURE_ORDER if s in hands and hands[s].valid.any()]
        self.params = {s: {k: v.copy() for k, v in hands[s].params().items()} for s in self.present}
        self.valid = {s: hands[s].valid.copy() for s in self.present}
        self.infilled = {s: hands[s].infilled.copy() for s in self.present}
        param = next(iter(network.parameters()), None)
        self.dtype = param.dtype if param is not None else torch.float64
        self.device = param.device if param is not None else torch.device("cpu")

    def anchors(self, side: str) -> np.ndarray:
        """Frames where every present hand is valid (or, if there are none, where ``side`` is)."""
        both = np.logical_and.reduce([self.valid[s] for s in self.present])
        return both if both.any() else self.valid[side]

    def window_for(self, side: str, m: int) -> tuple[int, int]:
        """[s, e) window for the first missing frame m: from the nearest earlier anchor (at most
        horizon/2 back), else ending on the next anchor."""
        anchors, n, h = self.anchors(side), len(self.valid[side]), self.horizon
        before = np.flatnonzero(anchors[:m])
        if len(before):
            s = max(int(before[-1]), m - h // 2)
            return s, min(n, s + h)
        e = m + int(np.flatnonzero(anchors[m:])[0]) + 1
        return max(0, e - h), e

    def fill_window(self, side: str, s: int, e: int) -> None:
        visible = self.anchors(side)[s:e]
        if not visible.any():
            visible = self.valid[side][s:e]
        windows = {hand: self._prefilled(hand, s, e) for hand in self.present}
        canon = {hand: _canonical_frame(w, self.models[hand]) for hand, w in windows.items()}
        features = {hand: _encode(w, *canon[hand], self.models[hand]) for hand, w in windows.items()}
        src = torch.cat([features.get(hand, features[self.present[0]]) for hand in FEATURE_ORDER], dim=-1)
        pred = self._run_network(src, torch.as_tensor(visible))
        for i, hand in enumerate(FEATURE_ORDER):
            if hand not in self.present:
                continue
            decoded = _decode(pred[:, i * HAND_FEATURES:(i + 1) * HAND_FEATURES], *canon[hand], self.models[hand])
            missing = ~self.valid[hand][s:e]
            for key, values in decoded.items():
                self.params[hand][key][s:e][missing] = values[missing]
            self.infilled[hand][s:e] |= missing
            self.valid[hand][s:e] = True

    def _prefilled(self, hand: str, s: int, e: int) -> dict[str, torch.Tensor]:
        params, valid = self.params[hand], self.valid[hand]
        window = {k: v[s:e].copy() for k, v in params.items()}
        missing = np.flatnonzero(~valid[s:e])
        if len(missing):
            for key, values in interpolate_frames(params, valid, missing + s).items():
                window[key][missing] = values
        return {k: torch.as_tensor(v) for k, v in window.items()}

    def _run_network(self, src: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """src (T, 218), visible (T,) -> predicted (T, 218); padded to the horizon by repeating the last frame."""
        t, h = len(src), self.horizon
        pad = h - t
        src = torch.cat([src, src[-1:].expand(pad, -1)]) if pad else src
        visible = torch.cat([visible, visible.new_ones(pad)]) if pad else visible
        with torch.no_grad():
            visible = visible.to(self.device)
            out = self.network(src[:, None].to(self.device, self.dtype), visible[:, None, None].to(self.dtype),
                               observed_attention_mask(visible[:, None]))
        return out[:t, 0].double().cpu()

    def result(self, side: str) -> HandSequence:
        seq = self.hands[side]
        if side not in self.present:
            return seq
        return seq.with_params(infilled=self.infilled[side], **self.params[side])


def _canonical_frame(window: dict[str, torch.Tensor], model: HandModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(R_w2can (3,3), t_w2can (3,)) making frame 0 of the window identity rotation and zero transl."""
    R_w2can = axis_angle_to_matrix(window["global_orient"][0]).T
    j0_rest = wrist_rest(model, window["betas"][0])
    wrist = window["transl"][0] + j0_rest
    return R_w2can, -(R_w2can @ wrist) + j0_rest


def _encode(window, R_w2can, t_w2can, model) -> torch.Tensor:
    """World-space window -> (T, 109) canonical features [transl 3 | betas 10 | root 6D | fingers 90]."""
    root, transl = rigid_transform_hand(R_w2can, t_w2can, axis_angle_to_matrix(window["global_orient"]),
                                        window["transl"], wrist_rest(model, window["betas"]))
    fingers = axis_angle_to_matrix(window["hand_pose"].reshape(-1, 15, 3))
    return torch.cat([transl, window["betas"], matrix_to_rot6d_rowmajor(root),
                      matrix_to_rot6d_rowmajor(fingers).reshape(-1, 90)], dim=-1)


def _decode(features, R_w2can, t_w2can, model) -> dict[str, np.ndarray]:
    """(T, 109) canonical features -> world-space parameter arrays (the inverse of :func:`_encode`)."""
    transl, betas = features[:, :3], features[:, 3:13]
    root = rot6d_rowmajor_to_matrix(features[:, 13:19])
    fingers = rot6d_rowmajor_to_matrix(features[:, 19:].reshape(-1, 15, 6))
    root_w, transl_w = rigid_transform_hand(R_w2can.T, -(R_w2can.T @ t_w2can), root, transl, wrist_rest(model, betas))
    return {"global_orient": matrix_to_axis_angle(root_w).numpy(), "transl": transl_w.numpy(),
            "betas": betas.numpy(), "hand_pose": matrix_to_axis_angle(fingers).reshape(-1, 45).numpy()}
