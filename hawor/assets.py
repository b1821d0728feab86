"""Prepare the embedded assets a fresh machine needs: ``python -m hawor.assets``.

- the open MANO-format hand model, generated deterministically by this project (_DATA/open_hand/);
- MediaPipe's palm and hand-landmark models, taken from the mediapipe 0.10.21 wheel on PyPI
  (_DATA/landmarks/); the only download, done here at set-up and never at run time.
Idempotent: quick when everything is in place. Called by scripts/setup.sh.
"""
from __future__ import annotations

import sys

from hawor.errors import HaworInputError


def main() -> int:
    from hawor.detection.landmark_assets import ensure_landmark_models
    from hawor.hands.open_hand import ensure_open_hand
    from hawor.weights import weight_path

    try:
        hand_dir = ensure_open_hand(weight_path("open_hand_right").parent)
        landmarks = ensure_landmark_models()
    except HaworInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"[assets] open hand: {hand_dir}")
    print(f"[assets] landmark models: {sorted(p.name for p in landmarks.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
