"""Request ids stay unique in workers forked after ``import costmw``."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_ids_are_unique_across_workers_forked_after_import() -> None:
    script = textwrap.dedent("""
        import os, sys
        import costmw
        from costmw import Request

        costmw.Request.create([{"role": "user", "content": "warm"}], "m")  # the parent made ids too
        readers = []
        for _ in range(4):
            r, w = os.pipe()
            if os.fork() == 0:
                os.close(r)
                ids = [Request.create([{"role": "user", "content": "hi"}], "m").id for _ in range(200)]
                os.write(w, "\\n".join(ids).encode())
                os._exit(0)
            os.close(w)
            readers.append(r)
        ids = []
        for r in readers:
            with os.fdopen(r) as f:
                ids += f.read().split()
        for _ in readers:
            os.wait()
        print(len(ids), len(set(ids)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["800", "800"]
