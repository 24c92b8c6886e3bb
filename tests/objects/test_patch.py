"""Unified diffs (steve.objects.patch): parse, apply, reverse, generate, strictly."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from steve.errors import (
    PatchBinary,
    PatchConflict,
    PatchDoesNotApply,
    PatchEmpty,
    PatchMalformed,
    PatchPathUnsafe,
)
from steve.objects.model import Mode
from steve.objects.patch import (
    FileEntry,
    apply_files,
    diff_files,
    format_patch,
    parse_patch,
    reverse_patch,
    split_lines,
)

F = Mode.FILE


def files(**kw: bytes) -> dict[str, FileEntry]:
    return {k: FileEntry(F, v) for k, v in kw.items()}


WORDS = b"hello\nworld\n"

MODIFY = b"""Here is the change you asked for:

diff --git a/src/words.txt b/src/words.txt
index 3b18e51..a042389 100644
--- a/src/words.txt
+++ b/src/words.txt
@@ -1,2 +1,3 @@
 hello
 world
+again
"""


def test_a_git_diff_applies_and_prose_around_it_is_ignored() -> None:
    out = apply_files(parse_patch(MODIFY + b"\nThat is all.\n"), files(**{"src/words.txt": WORDS}))
    assert out == files(**{"src/words.txt": b"hello\nworld\nagain\n"})


def test_a_plain_diff_u_with_timestamps_applies() -> None:
    diff = (
        b"--- words.txt\t2024-01-01 00:00:00.000000000 +0000\n"
        b"+++ words.txt\t2024-01-02 00:00:00.000000000 +0000\n"
        b"@@ -1 +1 @@\n-hello\n+hell0\n"
    )
    out = apply_files(parse_patch(diff), files(**{"words.txt": WORDS}))
    assert out == files(**{"words.txt": b"hell0\nworld\n"})


def test_context_must_match_exactly_no_fuzz() -> None:
    diff = b"--- a/w\n+++ b/w\n@@ -1,2 +1,2 @@\n hello \n-world\n+w0rld\n"  # trailing space
    with pytest.raises(PatchDoesNotApply) as err:
        apply_files(parse_patch(diff), files(w=WORDS))
    assert err.value.path == "w" and err.value.hunk == 1
    assert "b'hello\\n'" in err.value.why  # says what the file has


def test_a_hunk_matches_at_an_offset_and_the_offset_is_reported() -> None:
    from steve.objects.patch import apply_changes

    base = b"".join(b"line %d\n" % i for i in range(20))
    diff = b"--- a/f\n+++ b/f\n@@ -2,3 +2,3 @@\n line 10\n-line 11\n+LINE 11\n line 12\n"
    applied = apply_changes(parse_patch(diff), files(f=base).get)
    new = applied.changes["f"]
    assert new is not None and b"LINE 11\n" in new.data and b"line 11\n" not in new.data
    assert applied.offsets == [("f", 1, 9)]


def test_no_newline_at_end_of_file_is_exact() -> None:
    diff = b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n"
    assert apply_files(parse_patch(diff), files(f=b"a")) == files(f=b"b\n")
    with pytest.raises(PatchDoesNotApply):  # the file's line has a newline: no match
        apply_files(parse_patch(diff), files(f=b"a\n"))


def test_crlf_lines_are_bytes_like_any_other() -> None:
    old = files(f=b"one\r\ntwo\r\n")
    new = files(f=b"one\r\nTWO\r\n")
    patch = diff_files(old, new)
    assert apply_files(parse_patch(format_patch(patch)), old) == new


def test_add_delete_rename_and_mode() -> None:
    diff = b"""diff --git a/new.sh b/new.sh
new file mode 100755
--- /dev/null
+++ b/new.sh
@@ -0,0 +1 @@
+echo hi
diff --git a/gone b/gone
deleted file mode 100644
--- a/gone
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/old/name b/new/name
similarity index 100%
rename from old/name
rename to new/name
diff --git a/tool b/tool
old mode 100644
new mode 100755
diff --git a/empty b/empty
new file mode 100644
"""
    before = files(gone=b"bye\n", tool=b"#!/bin/sh\n", **{"old/name": b"x\n"})
    after = apply_files(parse_patch(diff), before)
    assert after == {
        "new.sh": FileEntry(Mode.EXECUTABLE, b"echo hi\n"),
        "new/name": FileEntry(F, b"x\n"),
        "tool": FileEntry(Mode.EXECUTABLE, b"#!/bin/sh\n"),
        "empty": FileEntry(F, b""),
    }
    back = apply_files(reverse_patch(parse_patch(diff)), after)
    assert back == before


@pytest.mark.parametrize(
    ("diff", "error", "attr"),
    [
        (b"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n", PatchMalformed, "line"),  # short hunk
        (b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n+c\n", PatchMalformed, "line"),  # long hunk
        (b"--- a/f\n+++ b/f\n@@ -x +1 @@\n", PatchMalformed, "line"),
        (b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n a\n", PatchMalformed, "line"),  # changes nothing
        (b"just prose\n", PatchEmpty, "detail"),
        (b"diff --git a/b b/b\nGIT binary patch\nliteral 3\n", PatchBinary, "path"),
        (b"Binary files a/x and b/x differ\n", PatchBinary, "path"),
        (
            b"--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n",
            PatchPathUnsafe,
            "path",
        ),
        (b"--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", PatchPathUnsafe, "path"),
        (b"--- a/.steve/x\n+++ b/.steve/x\n@@ -1 +1 @@\n-a\n+b\n", PatchPathUnsafe, "path"),
        (b"diff --git a/x b/y\ncopy from x\ncopy to y\n", PatchMalformed, "line"),
        (b"--- a/x\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n", PatchMalformed, "line"),  # rename w/o header
    ],
)
def test_malformed_and_refused_patches_are_typed(
    diff: bytes, error: type[Exception], attr: str
) -> None:
    with pytest.raises(error) as err:
        parse_patch(diff)
    assert getattr(err.value, attr)


@pytest.mark.parametrize(
    ("diff", "before"),
    [
        (b"--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+x\n", files(f=b"y\n")),  # add existing
        (b"--- a/g\n+++ b/g\n@@ -1 +1 @@\n-a\n+b\n", files(f=b"a\n")),  # modify missing
        (b"diff --git a/f b/f\nold mode 100755\nnew mode 100644\n", files(f=b"a\n")),
        (b"--- /dev/null\n+++ b/f/x\n@@ -0,0 +1 @@\n+x\n", files(f=b"y\n")),  # file as dir
    ],
)
def test_conflicts_with_the_tree_are_typed(diff: bytes, before: dict[str, FileEntry]) -> None:
    with pytest.raises(PatchConflict) as err:
        apply_files(parse_patch(diff), before)
    assert err.value.path


def test_a_deletion_that_leaves_lines_does_not_apply() -> None:
    diff = b"--- a/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n"
    with pytest.raises(PatchDoesNotApply):
        apply_files(parse_patch(diff), files(f=b"a\nb\n"))


def test_diff_of_binary_content_is_refused() -> None:
    with pytest.raises(PatchBinary):
        diff_files(files(f=b"a\x00b"), files(f=b"c"))


def test_split_lines_keeps_every_byte() -> None:
    assert split_lines(b"a\r\nb\n\nc") == [b"a\r\n", b"b\n", b"\n", b"c"]
    assert split_lines(b"") == []


def test_git_apply_accepts_what_steve_formats(tmp_path: Path) -> None:
    """The real git reads STEVE's format and gets the same files."""
    old = files(a=b"1\n2\n3\n", gone=b"bye\n", **{"d/x": b"keep\n"})
    new = {
        "a": FileEntry(F, b"1\nTWO\n3\nfour"),
        "d/x": FileEntry(Mode.EXECUTABLE, b"keep\n"),
        "n": FileEntry(F, b"new\n"),
    }
    work = tmp_path / "w"
    for path, e in old.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(e.data)
    (tmp_path / "p.diff").write_bytes(format_patch(diff_files(old, new)))
    subprocess.run(
        ["git", "apply", "--unsafe-paths", str(tmp_path / "p.diff")],
        cwd=work,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"},
    )
    assert (work / "a").read_bytes() == b"1\nTWO\n3\nfour"
    assert (work / "n").read_bytes() == b"new\n"
    assert not (work / "gone").exists()
    assert (work / "d" / "x").stat().st_mode & 0o111


def test_steve_reads_what_git_diff_writes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    (a / "f").write_bytes(b"x\ny\nz\n")
    (b / "f").write_bytes(b"x\nY\nz\n")
    (b / "g").write_bytes(b"no newline")
    proc = subprocess.run(
        [
            "git",
            "diff",
            "--no-index",
            "--no-prefix",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            "a",
            "b",
        ],
        cwd=tmp_path,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"},
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    # git names the files a/a/f and b/b/f here: strip the directory names to compare
    text = proc.stdout.replace(b"a/a/", b"a/").replace(b"b/b/", b"b/")
    out = apply_files(parse_patch(text), files(f=b"x\ny\nz\n"))
    assert out == files(f=b"x\nY\nz\n", g=b"no newline")


# --- properties --------------------------------------------------------------------------

_text = st.lists(
    st.sampled_from([b"a\n", b"b\n", b"c\n", b"\n", b" x\n", b"d\r\n", b"-\n", b"+\n"]),
    max_size=12,
).map(b"".join) | st.binary(max_size=40).filter(lambda b: b"\x00" not in b)
_names = st.sampled_from(["f", "g", "dir/h", "dir/sub/i", "x y", 'quote"d', "tab\tname"])
_trees = st.dictionaries(
    _names,
    st.builds(FileEntry, st.sampled_from([Mode.FILE, Mode.EXECUTABLE]), _text),
    max_size=5,
)


@given(_trees, _trees, st.integers(min_value=0, max_value=3))
@example(files(f=b"a"), files(f=b"a\n"), 0)
@example(files(f=b"a\nb\n"), files(f=b"b\na\n"), 0)
@example(files(), files(f=b""), 3)
def test_a_generated_diff_turns_the_first_tree_into_the_second(
    old: dict[str, FileEntry], new: dict[str, FileEntry], context: int
) -> None:
    patch = diff_files(old, new, context=context)
    if not patch.files:
        assert old == new
        return
    text = format_patch(patch)
    assert apply_files(parse_patch(text), old) == new


@given(_trees, _trees)
def test_apply_then_reverse_gives_the_input(
    old: dict[str, FileEntry], new: dict[str, FileEntry]
) -> None:
    patch = diff_files(old, new)
    if not patch.files:
        return
    parsed = parse_patch(format_patch(patch))
    applied = apply_files(parsed, old)
    assert apply_files(reverse_patch(parsed), applied) == old
    # reversing twice is the identity, and the reverse formats and parses back
    assert reverse_patch(reverse_patch(parsed)) == parsed
    assert parse_patch(format_patch(reverse_patch(parsed))) == reverse_patch(parsed)


@given(st.binary(max_size=300))
def test_garbage_gives_only_typed_errors(data: bytes) -> None:
    try:
        patch = parse_patch(data)
    except (PatchMalformed, PatchEmpty, PatchBinary, PatchPathUnsafe):
        return
    with contextlib.suppress(PatchDoesNotApply, PatchConflict):
        apply_files(patch, files(f=b"a\n"))
