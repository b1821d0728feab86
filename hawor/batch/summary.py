"""The batch summary: ``batch_summary.parquet`` (one row per video) and a readable ``batch_summary.txt``."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hawor.io.files import atomic_path, write_text_atomic

SUMMARY_PARQUET = "batch_summary.parquet"
SUMMARY_TEXT = "batch_summary.txt"
TABLE_STAGES = ("detection", "hands", "camera", "world", "vis_world", "vis_cam")


def write_summary(rows: list[dict], output_dir: Path) -> tuple[Path, Path]:
    """Write both files (atomically) into ``output_dir``; returns their paths."""
    columns = list(dict.fromkeys(key for row in rows for key in row))  # stage columns differ per video
    table = pa.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows])
    parquet = output_dir / SUMMARY_PARQUET
    with atomic_path(parquet) as tmp:
        pq.write_table(table, tmp)
    return parquet, write_text_atomic(output_dir / SUMMARY_TEXT, format_table(rows) + "\n")


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_table(rows: list[dict]) -> str:
    """A fixed-width table: id, status, frames, seconds per stage and in total, backends, warnings, error."""
    stages = [s for s in TABLE_STAGES if any(row.get(f"seconds_{s}") is not None for row in rows)]
    head = ["episode_id", "status", "frames", *stages, "total_s", "warnings", "backends / error"]
    body = []
    for row in rows:
        detail = row["error"].splitlines()[0] if row["error"] else row["backends"]
        body.append([row["episode_id"], row["status"], "-" if row["frames"] is None else str(row["frames"]),
                     *(_seconds(row.get(f"seconds_{s}")) for s in stages), _seconds(row["seconds_total"]),
                     str(len(row["warnings"])), detail])
    widths = [max(len(r[k]) for r in [head, *body]) for k in range(len(head) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1] for r in [head, *body]]
    counts = {s: sum(row["status"] == s for row in rows) for s in ("done", "skipped", "failed")}
    lines.append(f"{len(rows)} videos: {counts['done']} done, {counts['skipped']} skipped (finished earlier), "
                 f"{counts['failed']} failed")
    return "\n".join(lines)
