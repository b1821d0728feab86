"""Train (or fine-tune) the HaWoR regressor on manifests of annotated frames.

    python scripts/train_hawor.py \\
      --config path/to/config.yaml \\
      --train-annotations /path/to/train_annotations.npz \\
      --val-annotations /path/to/val_annotations.npz \\
      --image-root /path/to/frames \\
      --output-dir outputs/hawor

Writes TensorBoard logs to <output-dir>/tensorboard/hawor/ and checkpoints to <output-dir>/checkpoints/
(last.ckpt every GENERAL.CHECKPOINT_STEPS, best.ckpt = lowest validation loss), in the hawor.ckpt format:
demo.py --checkpoint <output-dir>/checkpoints/best.ckpt runs them. The config is hawor/configs defaults
overridden by the YAML (the official model_config.yaml works; hawor/configs/tiny.yaml is a small model
for smoke runs). Manifest format, config keys and losses: docs/training.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import hawor  # noqa: F401  (offline defaults)
from hawor.errors import HaworInputError


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None,
                        help="training YAML over the hawor/configs defaults (default: the defaults, released sizes)")
    parser.add_argument("--train-annotations", type=Path, required=True, help="training manifest (.json or .npz)")
    parser.add_argument("--val-annotations", type=Path, required=True, help="validation manifest (.json or .npz)")
    parser.add_argument("--image-root", type=Path, default=None,
                        help="folder that relative img_path values are taken from (default: each manifest's folder)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/hawor"),
                        help="run folder: tensorboard/hawor/ (TensorBoard), checkpoints/ (last.ckpt, best.ckpt), "
                             "model_config.yaml, history.jsonl, train.log (default outputs/hawor)")
    parser.add_argument("--resume-from-checkpoint", type=Path, default=None,
                        help="continue a run from its checkpoint (e.g. <output-dir>/checkpoints/last.ckpt): model, "
                             "optimiser, scaler, scheduler, step, RNG states and data order")
    parser.add_argument("--no-image-log", action="store_true", help="skip the crop/keypoint images in TensorBoard")
    parser.add_argument("--num-gpus", type=int, default=None,
                        help="processes (one per GPU; CPU processes with gloo when --device cpu); default "
                             "GENERAL.NUM_GPUS. More than 1 starts them through torchrun")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: CUDA when available")
    return parser.parse_args(argv)


def _setup_logging(output_dir: Path, main: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(output_dir / "train.log"))
    logging.basicConfig(level=logging.INFO if main else logging.WARNING, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from hawor.configs import get_default_config, load_model_config
    from hawor.training.ddp import init_distributed, launch_local, under_launcher

    try:
        cfg = load_model_config(args.config) if args.config is not None else get_default_config()
        processes = int(args.num_gpus if args.num_gpus is not None else cfg.GENERAL.NUM_GPUS)
        if processes < 1:
            raise HaworInputError(f"--num-gpus {processes}: must be at least 1.")
        if processes > 1 and not under_launcher():
            return launch_local(processes, str(Path(__file__).resolve()), argv)
        dist = init_distributed(args.device)
        _setup_logging(args.output_dir, dist.is_main)
        from hawor.training.trainer import Trainer, TrainPaths

        paths = TrainPaths(args.train_annotations, args.val_annotations, args.image_root, args.output_dir,
                           args.resume_from_checkpoint, image_log=not args.no_image_log)
        try:
            metrics = Trainer(cfg, paths, dist).fit()
        finally:
            dist.close()
    except HaworInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if metrics:
        shown = {k: v for k, v in metrics.items() if k not in ("step", "split")}
        print("final validation: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
