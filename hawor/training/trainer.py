"""The training loop: AdamW, gradient clipping, mixed precision on GPU, validation, TensorBoard, checkpoints.

Output folder: ``tensorboard/hawor/`` (TensorBoard events), ``checkpoints/last.ckpt`` (every
GENERAL.CHECKPOINT_STEPS and at the end), ``checkpoints/best.ckpt`` (the lowest validation loss so far),
``model_config.yaml`` (the merged config; the official loader looks for it at ``<ckpt dir>/../``),
``history.jsonl`` (one line per training step and per validation), ``train.log``.

Validation runs before the first step of a fresh run (the untrained baseline), every GENERAL.VAL_STEPS
steps (0: only at the end) and at the end, on the main process over every validation window.
The learning rate rises linearly over TRAIN.WARMUP_STEPS and then stays at TRAIN.LR.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from hawor.configs import ConfigNode, config_to_yaml
from hawor.data.manifest import Manifest, load_manifest
from hawor.errors import HaworInputError
from hawor.eval.metrics import mpjpe, pa_mpjpe
from hawor.hands import HandModel
from hawor.io.files import write_text_atomic
from hawor.models.checkpoint import load_checkpoint
from hawor.training.checkpoints import restore_rng, rng_state, save_checkpoint
from hawor.training.dataset import WindowDataset, WindowStream, fill_missing_joints, plan_windows
from hawor.training.ddp import Distributed
from hawor.training.losses import TERMS, compute_losses
from hawor.training.model import build_model, hawor_config_to_plain

log = logging.getLogger(__name__)


@dataclass
class TrainPaths:
    train_annotations: Path
    val_annotations: Path
    image_root: Path | None
    output_dir: Path
    resume_from: Path | None = None
    image_log: bool = True


def _load(path: Path, image_root, window: int, stride: int, hand_backend: str) -> tuple[Manifest, np.ndarray]:
    manifest = load_manifest(path, image_root)
    fill_missing_joints(manifest, hand_backend)
    windows, report = plan_windows(manifest, window, stride)
    log.info("manifest %s: %s", path, {**manifest.notes, **report})
    return manifest, windows


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _forward(model, batch):
    return model(batch["images"], batch["center"], batch["scale"], batch["focal"], batch["img_center"])


class Trainer:
    """One training run (one process of it under DDP)."""

    def __init__(self, cfg: ConfigNode, paths: TrainPaths, dist: Distributed):
        self.cfg, self.paths, self.dist = cfg, paths, dist
        self.device = dist.device
        self.seed = int(cfg.get_path("GENERAL.SEED", 0))
        threads = int(cfg.get_path("GENERAL.CPU_THREADS", 0) or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        torch.manual_seed(self.seed)  # the same initial weights in every process
        log.info("process %d of world size %d on %s", dist.rank, dist.world, self.device)
        self.model = build_model(cfg).to(self.device)
        net = self.model.cfg
        self.hand_model = HandModel("right", backend="auto").to(self.device).eval()
        log.info("hand model for the losses: %s", self.hand_model.backend)
        stride = int(cfg.get_path("DATASETS.WINDOW_STRIDE", 1))
        train, train_windows = _load(paths.train_annotations, paths.image_root, net.window, stride,
                                     self.hand_model.backend)
        val, val_windows = _load(paths.val_annotations, paths.image_root, net.window, net.window,
                                 self.hand_model.backend)
        self.train_set = WindowDataset(train, train_windows, net.crop_size, net.vit.img_size[1],
                                       cfg.DATASETS.CONFIG, self.seed)
        self.val_set = WindowDataset(val, val_windows, net.crop_size, net.vit.img_size[1])
        self.batch_size = int(cfg.TRAIN.BATCH_SIZE)
        self.total_steps = int(cfg.GENERAL.TOTAL_STEPS)
        self.weights = {name: float(cfg.get_path(f"LOSS_WEIGHTS.{name}", 0.0)) for name in TERMS}
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=float(cfg.TRAIN.LR), weight_decay=float(cfg.TRAIN.WEIGHT_DECAY))
        warmup = int(cfg.get_path("TRAIN.WARMUP_STEPS", 0))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)
        self.amp = self.device.type == "cuda" and bool(cfg.get_path("GENERAL.MIXED_PRECISION", True))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step, self.best_val = 0, float("inf")
        self.ckpt_dir = paths.output_dir / "checkpoints"
        self.writer = None
        self._rng_to_restore = None
        if paths.resume_from is not None:
            self._resume(paths.resume_from)
        self.ddp_model = DistributedDataParallel(self.model) if dist.world > 1 else self.model

    # ---- checkpoints -------------------------------------------------------------------------------
    def _payload(self) -> dict:
        return {
            "state_dict": self.model.state_dict(),
            "hyper_parameters": {"cfg": self.cfg.to_dict()},
            "hawor_config": hawor_config_to_plain(self.model.cfg),
            "global_step": self.step,
            "optimizer_states": [self.optimizer.state_dict()],
            "lr_schedulers": [self.scheduler.state_dict()],
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "best_val_loss": self.best_val,
        }

    def _resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        needed = ("state_dict", "optimizer_states", "lr_schedulers", "global_step", "rng")
        missing = [k for k in needed if k not in ckpt]
        if missing:
            raise HaworInputError(f"--resume-from-checkpoint {path}: lacks {missing}; resume needs a checkpoint "
                                  "written by scripts/train_hawor.py (use MODEL.LOAD_WEIGHTS to start from weights).")
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer_states"][0])
        self.scheduler.load_state_dict(ckpt["lr_schedulers"][0])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step = int(ckpt["global_step"])
        self.best_val = float(ckpt.get("best_val_loss", float("inf")))
        self._rng_to_restore = ckpt["rng"]
        log.info("resumed from %s at step %d", path, self.step)

    def _save(self, name: str) -> None:
        path = save_checkpoint(self.ckpt_dir / name, self._payload())
        log.info("step %d: wrote %s", self.step, path)

    # ---- logging -----------------------------------------------------------------------------------
    def _record(self, entry: dict) -> None:
        with open(self.paths.output_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    def _scalars(self, prefix: str, values: dict) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, self.step)

    # ---- validation --------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict:
        """Mean loss and metrics over every validation window (MPJPE / PA-MPJPE of wrist-relative joints, mm;
        2D error in pixels of the original image)."""
        self.model.eval()
        loader = DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False,
                            num_workers=int(self.cfg.GENERAL.NUM_WORKERS), generator=torch.Generator())
        losses, pred3d, true3d, err2d, first = [], [], [], [], None
        for batch in loader:
            batch = _to_device(batch, self.device)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                out = _forward(self.model, batch)
            total, _, joints, j2d = compute_losses(out, batch, self.hand_model, self.weights)
            losses.append((float(total), len(batch["images"])))
            pred3d.append((joints - joints[..., :1, :]).flatten(0, 1).cpu().numpy())
            true3d.append((batch["j3d"] - batch["j3d"][..., :1, :]).flatten(0, 1).cpu().numpy())
            pixels = ((j2d - batch["j2d"]).norm(dim=-1) * 200 * batch["scale"][..., None])
            err2d.append(pixels[batch["j2d_conf"] > 0].cpu().numpy())
            if first is None:
                first = (batch, j2d)
        self.model.train()
        pred3d, true3d = np.concatenate(pred3d), np.concatenate(true3d)
        metrics = {"loss": sum(v * n for v, n in losses) / sum(n for _, n in losses),
                   "mpjpe_mm": 1000 * float(mpjpe(pred3d, true3d).mean()),
                   "pa_mpjpe_mm": 1000 * float(pa_mpjpe(pred3d, true3d).mean()),
                   "error_2d_px": float(np.concatenate(err2d).mean())}
        if self.writer is not None and self.paths.image_log and first is not None:
            from hawor.training.imagelog import keypoint_grid

            self.writer.add_images("val/keypoints", keypoint_grid(first[0], first[1]), self.step, dataformats="NHWC")
        return metrics

    def _validate_and_keep_best(self) -> dict:
        metrics = self.validate()
        self._scalars("val", metrics)
        self._record({"step": self.step, "split": "val", **metrics})
        log.info("step %d validation: %s", self.step, {k: round(v, 4) for k, v in metrics.items()})
        if metrics["loss"] < self.best_val:
            self.best_val = metrics["loss"]
            self._save("best.ckpt")
        return metrics

    # ---- training ----------------------------------------------------------------------------------
    def _train_step(self, batch: dict) -> tuple[float, dict]:
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = _forward(self.ddp_model, batch)
        total, terms, _, _ = compute_losses(out, batch, self.hand_model, self.weights)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        clip = float(self.cfg.get_path("TRAIN.GRAD_CLIP_VAL", 0.0) or 0.0)
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(total.detach()), {k: float(v.detach()) for k, v in terms.items()}

    def fit(self) -> dict:
        """Train to GENERAL.TOTAL_STEPS; returns the last validation metrics (main process) or {}."""
        from tqdm import tqdm

        main = self.dist.is_main
        out_dir = self.paths.output_dir
        if main:
            from torch.utils.tensorboard import SummaryWriter

            out_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out_dir / "model_config.yaml", config_to_yaml(self.cfg))
            self.writer = SummaryWriter(str(out_dir / "tensorboard" / "hawor"))
            if self.step == 0:
                self._validate_and_keep_best()
        self.dist.barrier()
        stream = WindowStream(len(self.train_set), self.seed, self.dist.rank, self.dist.world,
                              start=self.step * self.batch_size)
        workers = int(self.cfg.GENERAL.NUM_WORKERS)
        loader = DataLoader(self.train_set, batch_size=self.batch_size, sampler=stream, num_workers=workers,
                            drop_last=True, pin_memory=self.device.type == "cuda", generator=torch.Generator(),
                            persistent_workers=False)
        # Each process draws its own dropout; restored states continue the interrupted run's streams.
        torch.manual_seed(self.seed * 1000 + self.dist.rank + 1)
        if self._rng_to_restore is not None:
            restore_rng(self._rng_to_restore)
        log_steps = max(1, int(self.cfg.GENERAL.LOG_STEPS))
        val_steps = int(self.cfg.GENERAL.VAL_STEPS)
        ckpt_steps = max(1, int(self.cfg.GENERAL.CHECKPOINT_STEPS))
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step", disable=not main)
        tick, ticks_at = time.perf_counter(), self.step
        last_val: dict = {}
        batches = iter(loader)
        while self.step < self.total_steps:
            batch = _to_device(next(batches), self.device)
            loss, terms = self._train_step(batch)
            self.step += 1
            bar.update(1)
            if not np.isfinite(loss):
                raise FloatingPointError(f"step {self.step}: the training loss is {loss}; lower TRAIN.LR or set "
                                         "TRAIN.GRAD_CLIP_VAL.")
            if main:
                self._record({"step": self.step, "split": "train", "loss": loss, **terms})
                bar.set_postfix(loss=f"{loss:.3g}")
                if self.step % log_steps == 0:
                    now = time.perf_counter()
                    rate = (self.step - ticks_at) * self.batch_size * self.dist.world / (now - tick)
                    tick, ticks_at = now, self.step
                    self._scalars("train", {"loss": loss, **terms, "lr": self.scheduler.get_last_lr()[0],
                                            "windows_per_s": rate})
                    log.info("step %d: loss %.4g, %.2f windows/s", self.step, loss, rate)
            validate = self.step == self.total_steps or (val_steps > 0 and self.step % val_steps == 0)
            save = self.step % ckpt_steps == 0 or self.step == self.total_steps
            if main and validate:
                last_val = self._validate_and_keep_best()
                tick, ticks_at = time.perf_counter(), self.step  # throughput counts training only
            if main and save:
                self._save("last.ckpt")
            if validate or save:
                self.dist.barrier()
        bar.close()
        if self.writer is not None:
            self.writer.close()
        return last_val
