"""Run a benchmark script of another checkout of kwoksnap (an older commit in a git worktree) with that tree's code.

Why this script exists: a comparison with an older commit must import that commit's code, and it is easy to get
this tree's instead without noticing (bench_audit_parse.py gives its subprocesses ``PYTHONPATH=<its own tree>``, so
``PYTHONPATH=<worktree> python bench/bench_audit_parse.py`` measured this tree on both sides). This puts the other
tree first (and takes the editable install's import hook out, in case it comes first), runs the other tree's
script, and checks which kwoksnap it got. Scripts that start ``python -m kwoksnap`` in a subprocess (bench_replay.py
rss, bench_snapshot.py) are not covered: their subprocesses import whatever their environment gives them.

Usage: .venv/bin/python bench/other_tree.py TREE SCRIPT [ARGS...]
  e.g. git worktree add /tmp/old 5fe5586
       .venv/bin/python bench/other_tree.py /tmp/old bench/bench_audit_parse.py --run "full parse" /tmp/p.log
"""

from __future__ import annotations

import os
import runpy
import sys


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    tree, script = os.path.abspath(sys.argv[1]), sys.argv[2]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()
                        and "editable" not in str(getattr(f, "__module__", ""))]
    sys.path.insert(0, tree)
    import kwoksnap

    if not os.path.abspath(kwoksnap.__file__ or "").startswith(tree + os.sep):
        raise SystemExit(f"imported {kwoksnap.__file__}, not the kwoksnap of {tree}")
    sys.argv = [os.path.join(tree, script), *sys.argv[3:]]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
