"""Applying a model's patch to a tree: STEVE (Python, in the encrypted store) vs `git apply`.

A tree of FILES text files (40 lines each) in an encrypted repository; a patch that
changes CHANGED of them (one hunk each) and adds one file.  STEVE parses the
diff and applies it to the tree object (reading only the touched blobs, writing
the new blobs and trees); git applies the same diff to a checkout of the same
files.  Medians of ROUNDS runs, measured in the same process run.

    python3 bench/bench_patch.py [FILES] [CHANGED] [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from steve.objects.model import Mode
from steve.objects.patch import FileEntry, diff_files, format_patch, parse_patch
from steve.porcelain.patch import apply_to_tree, write_index
from steve.repo import Repo
from steve.store.kdf import KdfParams


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    changed = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    old = {
        f"src/d{i % 50}/f{i}.txt": FileEntry(
            Mode.FILE, b"".join(b"line %d of file %d\n" % (j, i) for j in range(40))
        )
        for i in range(files)
    }
    new = dict(old)
    for i in range(changed):
        path = f"src/d{i % 50}/f{i}.txt"
        new[path] = FileEntry(Mode.FILE, old[path].data.replace(b"line 20 ", b"LINE 20 "))
    new["src/added.txt"] = FileEntry(Mode.FILE, b"new\n")
    touched = {p for p in new if old.get(p) != new[p]}
    diff = format_patch(diff_files({p: old[p] for p in touched if p in old},
                                   {p: new[p] for p in touched}))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        kdf = KdfParams(salt=os.urandom(16), memory_kib=256, iterations=1, parallelism=1)
        repo = Repo.init(Path(tmp) / "r", passphrase="pw", kdf=kdf)
        base = write_index(repo, {p: (e.mode, repo.write_blob(e.data)) for p, e in old.items()})
        steve_s = []
        for _ in range(rounds):
            t = time.perf_counter()
            apply_to_tree(repo, base, parse_patch(diff))
            steve_s.append(time.perf_counter() - t)
        repo.close()
        work = Path(tmp) / "w"
        git_s = []
        env = {"PATH": os.environ["PATH"], "HOME": tmp, "GIT_CONFIG_NOSYSTEM": "1"}
        (Path(tmp) / "p.diff").write_bytes(diff)
        for _ in range(rounds):
            subprocess.run(["rm", "-rf", str(work)], check=True)
            for p, e in old.items():
                (work / p).parent.mkdir(parents=True, exist_ok=True)
                (work / p).write_bytes(e.data)
            t = time.perf_counter()
            subprocess.run(["git", "apply", str(Path(tmp) / "p.diff")], cwd=work, env=env,
                           check=True)  # fmt: skip
            git_s.append(time.perf_counter() - t)
    s, g = statistics.median(steve_s), statistics.median(git_s)
    print(f"tree of {files} files, patch changing {changed} + adding 1, {rounds} rounds")
    print(f"steve apply_to_tree (encrypted store): median {s * 1000:.1f} ms")
    print(f"git apply (working tree):              median {g * 1000:.1f} ms")
    print(f"ratio steve/git: {s / g:.2f}")


if __name__ == "__main__":
    main()
