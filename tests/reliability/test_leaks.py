"""Nothing leaks: a chain dropped without close() gives back its loop thread, its loop and their
file descriptors; many such chains run under a low limit of open files."""

from __future__ import annotations

import subprocess
import sys

_MANY_CHAINS = """
import gc, os, resource, threading
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
from costmw import Chain
from costmw.adapters import MockTarget
for i in range(300):
    chain = Chain(targets=[MockTarget(name="m")])
    assert chain.complete([{"role": "user", "content": f"q{i}"}], "m").text == f"q{i}"
    del chain
gc.collect()
print(threading.active_count(), len(os.listdir("/proc/self/fd")))
"""


def test_three_hundred_dropped_chains_leak_no_thread_loop_or_fd() -> None:
    out = subprocess.run([sys.executable, "-c", _MANY_CHAINS], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    threads, fds = (int(x) for x in out.stdout.split())
    assert threads <= 2 and fds <= 12
