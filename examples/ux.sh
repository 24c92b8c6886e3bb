#!/usr/bin/env bash
# The human side: an error explained at length, the settings of the homely layer,
# and shell completion.  Expects STEVE_DIR and a key in the environment, like
# examples/tour.sh sets them.  Friendly lines and nudges show only on a terminal:
# run the commands yourself to see them; in this script's pipe the output is the
# factual lines scripts read.
set -euo pipefail
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

say "steve cat-file -p 0000   (an error: a human line, the fact, a hint, a command to try, the code)"
steve cat-file -p 0000 || true
run steve help STEVE-REV-001         # the code explained at length
run steve config list                # the homely layer's settings ([homely] in .steve/config)
run steve config set homely.nudges gentle
run steve config get homely.nudges
say 'steve completion bash | head -3   (eval "$(steve completion bash)" in ~/.bashrc)'
steve completion bash | head -3
say "what bash asks on: steve rev-parse <Tab>"
_STEVE_COMPLETE=bash_complete COMP_WORDS="steve rev-parse " COMP_CWORD=2 steve | head -5
