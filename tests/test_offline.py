"""No hawor module may touch the network on import (ultralytics, huggingface_hub and friends would)."""
import subprocess
import sys
from pathlib import Path

import hawor

SCRIPT = r"""
import importlib, pkgutil, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[:1])
    raise OSError("network disabled in this test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
_connect = socket.socket.connect
socket.socket.connect = lambda self, *a, **k: refuse(*a)
import hawor
names = [m.name for m in pkgutil.walk_packages(hawor.__path__, "hawor.")]
for name in names:
    if name.endswith("__main__"):
        continue
    importlib.import_module(name)
import ultralytics  # its import runs the online check unless YOLO_OFFLINE is set
print(len(names), "modules", "attempts:", attempts)
sys.exit(1 if attempts else 0)
"""


def test_importing_every_module_opens_no_socket():
    root = Path(hawor.__file__).parent.parent
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "attempts: []" in result.stdout
