"""Many videos: ``python -m hawor batch INPUT... --output_dir OUT [--workers N] [--ray ADDRESS]``.

    from hawor.batch import run_batch
    rows = run_batch(["videos/", "more/*.mp4", "manifest.csv"], "out", {"vis_mode": "none"}, workers=2)

Expands the inputs (:mod:`hawor.batch.inputs`), skips videos finished earlier with the same settings,
runs the others on local worker processes (:mod:`hawor.batch.local`) or Ray tasks
(:mod:`hawor.batch.ray_runner`), and writes ``OUT/batch_summary.parquet`` / ``.txt``. See docs/batch.md.
"""


def __getattr__(name: str):
    # `python -m hawor` builds the batch flags on every call: keep pyarrow and tqdm out of that import
    if name == "run_batch":
        from hawor.batch.run import run_batch

        return run_batch
    raise AttributeError(f"module 'hawor.batch' has no attribute {name!r}")
