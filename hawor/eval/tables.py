"""Markdown tables of evaluation reports (from :func:`hawor.eval.protocol.evaluate`)."""
from __future__ import annotations

import math

import numpy as np

from hawor.eval.sources import PARTS

HAND_COLUMNS = (  # (header, key, format) per hand row
    ("visible→observed %", "observed_fraction", "{:.0%}"),
    ("precision %", "precision", "{:.0%}"),
    ("W-MPJPE mm", "w_mpjpe_mm", "{:.1f}"),
    ("WA-MPJPE mm", "wa_mpjpe_mm", "{:.1f}"),
    ("PA-MPJPE mm", "pa_mpjpe_mm", "{:.1f}"),
    ("AUC 0-50mm", "auc", "{:.3f}"),
    ("cam MPJPE mm", "cam_mpjpe_mm", "{:.0f}"),
    ("accel m/s²", "accel_error_m_s2", "{:.2f}"),
    ("RTE %", "rte_pct", "{:.2f}"),
    ("frames world / cam", None, None),
)
CAMERA_COLUMNS = (
    ("ATE Sim3 cm", "camera_ate_m", lambda v: f"{100 * v:.2f}"),
    ("Sim3 scale s", "sim3_scale", lambda v: f"{v:.3f}"),
    ("path length pred / true", "path_length_ratio", lambda v: f"{v:.2f}"),
    ("ATE SE3 cm", "camera_ate_se3_m", lambda v: f"{100 * v:.2f}"),
    ("RPE cm / °", "rpe_trans_m", None),
    ("handedness swaps L / R", "handedness_swaps", None),
)


def fmt(value, pattern: str) -> str:
    """A figure, or "–" when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return pattern.format(value)


def hand_cells(row: dict) -> list[str]:
    cells = [fmt(row.get(key), pattern) for _, key, pattern in HAND_COLUMNS if key]
    return cells + [f"{row.get('frames', 0)} / {row.get('observed_frames', 0)}"]


def camera_cells(report: dict) -> list[str]:
    cells = []
    for _, key, render in CAMERA_COLUMNS:
        value = report.get(key)
        if value is None:
            cells.append("–")
        elif key == "rpe_trans_m":
            cells.append(f"{100 * value:.2f} / {report['rpe_rot_deg']:.2f}")
        elif key == "handedness_swaps":
            cells.append(f"{value['left']} / {value['right']}")
        else:
            cells.append(render(value) if math.isfinite(value) else "–")
    return cells


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain markdown table of string cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def evaluation_markdown(report: dict, title: str = "Evaluation") -> str:
    """The protocol lines, one row per scored hand, one camera row, and any notes."""
    hands = [h for h in ("left", "right") if h in report]
    parts = [f"### {title}", ""]
    parts += [f"- {line}" for line in report["protocol"]["description"]]
    rows = [[h] + hand_cells(report[h]) for h in hands]
    parts += ["", markdown_table(["hand"] + [h for h, _, _ in HAND_COLUMNS], rows)]
    if "camera_ate_m" in report:
        parts += ["", markdown_table([h for h, _, _ in CAMERA_COLUMNS], [camera_cells(report)])]
    if report.get("error_sources"):
        parts += ["", SOURCES_TITLE, "", error_sources_table([report])]
    parts += [f"\nnote: {n}" for n in report.get("notes", [])]
    return "\n".join(parts) + "\n"


SOURCES_TITLE = ("W-MPJPE / WA-MPJPE mm with one part of each predicted hand taken from the truth "
                 "(hawor.eval.sources: where the world error comes from):")


def error_sources_table(reports: list[dict]) -> str:
    """One row per hand: the mean over ``reports`` of W / WA-MPJPE of the result and with each part true."""
    rows = []
    for hand in ("left", "right"):
        per = [r["error_sources"][hand] for r in reports if hand in r.get("error_sources", {})]
        if not per:
            continue
        cells = [hand, str(len(per))]
        for name in ("result",) + PARTS:
            values = [[v[name][k] for k in ("w_mpjpe_mm", "wa_mpjpe_mm")] for v in per if name in v]
            cells.append(" / ".join(f"{x:.1f}" for x in np.mean(values, 0)) if values else "–")
        rows.append(cells)
    return markdown_table(["hand", "sequences", "result"] + [f"true {p}" for p in PARTS], rows)
