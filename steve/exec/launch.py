"""How a step's command reaches its container without the engine keeping it.

The container's configuration is what the engine (and containerd, whose
metadata database keeps freed pages) holds on to, so a step's command line
and environment never go there.  Instead they are written into a small
script, ``/steve/cmd``, that arrives with the inputs through the archive API
into a volume of its own; the container's entrypoint is always
``/bin/sh /steve/cmd`` (:data:`ENTRYPOINT`) and its configured environment
is the image's.  The script exports the step's environment and ``exec``\\ s
the command, so the command is the container's process 1 as before.

What the engine holds for a step: the image id, this fixed entrypoint, the
labels (run id, node id, repository id, owner pid/host/start), the mounts
(two volume names, host mounts a plan granted), the work dir and the policy
settings.  A step's image therefore needs a POSIX ``/bin/sh``.  An
environment name that is not a shell identifier is refused
(:class:`~steve.errors.InvalidInput`).
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence

from steve.errors import InvalidInput

CMD_DIR = "/steve"
SCRIPT = f"{CMD_DIR}/cmd"
NOT_STARTED = f"{CMD_DIR}/not-started"  # written when the command is not in the image
ENTRYPOINT = ("/bin/sh", SCRIPT)
NOT_FOUND_EXIT = 127
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(word: str) -> str:
    """``word`` as one single-quoted shell word (any bytes but NUL)."""
    if "\0" in word:
        raise InvalidInput("a NUL byte in a command or environment value", repr(word[:80]))
    return "'" + word.replace("'", "'\\''") + "'"


def launch_script(command: Sequence[str], env: Mapping[str, str]) -> bytes:
    """The ``/steve/cmd`` script for ``command`` run with ``env``."""
    if not command:
        raise InvalidInput("empty command", "a step needs at least the program to run")
    lines = ["# written by STEVE: the step's environment and command (docs: steve.exec.launch)"]
    for name in sorted(env):
        if not _ENV_NAME.fullmatch(name):
            raise InvalidInput(
                "invalid environment variable name",
                f"{name!r}: a step's variables are shell identifiers ([A-Za-z_][A-Za-z0-9_]*)",
            )
        lines.append(f"export {name}={quote(env[name])}")
    program = quote(command[0])
    lines += [
        f"if ! command -v {program} >/dev/null 2>&1; then",
        f"  : > {NOT_STARTED}",
        f'  echo "steve: cannot start {program}: not found in the image" >&2',
        f"  exit {NOT_FOUND_EXIT}",
        "fi",
        "exec " + " ".join(quote(w) for w in command),
        "",
    ]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def script_tar(script: bytes, *, uid: int, gid: int) -> Iterator[bytes]:
    """A tar holding ``cmd`` (the script) whose root entry belongs to uid:gid."""
    root = tarfile.TarInfo("/")
    root.type, root.mode, root.uid, root.gid = tarfile.DIRTYPE, 0o755, uid, gid
    yield root.tobuf(format=tarfile.PAX_FORMAT)
    info = tarfile.TarInfo("cmd")
    info.mode, info.uid, info.gid, info.size = 0o555, uid, gid, len(script)
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    yield script
    rest = len(script) % tarfile.BLOCKSIZE
    yield b"\0" * ((tarfile.BLOCKSIZE - rest) if rest else 0)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
