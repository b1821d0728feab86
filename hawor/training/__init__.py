"""Training the HaWoR regressor on manifests (scripts/train_hawor.py; docs/training.md).

dataset (windows of consecutive frames, crops as at inference) · augmentation (one draw per window) ·
losses (LOSS_WEIGHTS) · model (network from the config, initialisation, freezing) · checkpoints
(hawor.ckpt format, atomic, exact resume) · ddp (torchrun / gloo) · trainer (the loop).
"""
