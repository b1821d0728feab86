"""Evaluation against ground truth (docs/evaluation.md): metrics (``metrics``), dataset readers
(``datasets``), the protocol that checks inputs and runs the metrics (``protocol``), markdown tables
(``tables``). CLIs: scripts/eval_hawor.py and scripts/benchmark.py."""
