"""The config's plain-TOML reader (steve.config.parse_simple_toml) never reads a text
otherwise than tomllib: it answers what tomllib answers, or leaves the text to it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from steve.config import (
    HomelySettings,
    LlmSettings,
    RepoConfig,
    ResearchSettings,
    parse_simple_toml,
)
from steve.store.kdf import KdfParams

NAMES = st.sampled_from(["core", "kdf", "llm", "a_b", "x", "Core", "1a", "a.b", "a-b", ""])
VALUES = st.one_of(
    st.text(max_size=12).map(lambda t: f'"{t}"'),
    st.text(alphabet="0123456789+-_xob.e", min_size=1, max_size=22),
    st.sampled_from(["true", "false", "True", "[]", "{}", "'lit'", '"""x"""', "1979-05-27"]),
    st.text(max_size=6),
)
LINES = st.one_of(
    st.builds(lambda t: f"#{t}", st.text(max_size=10)),
    st.builds(lambda n: f"[{n}]", NAMES),
    st.builds(lambda n, v: f"{n} = {v}", NAMES, VALUES),
    st.builds(lambda n, v: f"{n}={v}", NAMES, VALUES),
    st.sampled_from(["", " ", "\t", "[[rule]]", "[ core ]", "a = 1 # c", "  a = 1"]),
)


def toml_or_error(text: bytes) -> str:
    try:
        return repr(tomllib.loads(text.decode()))  # repr: True and 1 differ
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        return f"error {type(exc).__name__}"


@settings(max_examples=1500, deadline=None)
@given(st.lists(LINES, max_size=8), st.sampled_from(["\n", "\r\n"]), st.booleans())
@example(["[core]", "format = 1", "[core]"], "\n", False)
@example(["a = 1", "[a]"], "\n", False)
@example(["a = 007"], "\n", False)
@example(['a = "\x01"'], "\n", False)
@example(["#\x7f"], "\n", False)
@example(["a = true", "b = 0", 'c = "x y"'], "\n", True)
def test_the_plain_reader_reads_as_tomllib_or_not_at_all(
    lines: list[str], newline: str, final: bool
) -> None:
    raw = (newline.join(lines) + (newline if final else "")).encode("utf-8", "surrogatepass")
    fast = parse_simple_toml(raw)
    if fast is not None:
        assert repr(fast) == toml_or_error(raw), raw


def test_every_config_steve_writes_takes_the_plain_reader(tmp_path: Path) -> None:
    base = RepoConfig("0123456789abcdef0123456789abcdef", KdfParams.fresh(), bytes(32))
    configs = [
        base,
        base.with_events_key(bytes(range(32))),
        base.with_llm(LlmSettings("openai", "gpt", "http://localhost:8080/v1", None)),
        base.with_homely(HomelySettings("off", 22, 2, 5)),
        base.replace(research=ResearchSettings(offline=True, searxng_url="http://s/")),
    ]
    for config in configs:
        path = tmp_path / "config"
        config.write(path)
        raw = path.read_bytes()
        assert parse_simple_toml(raw) == tomllib.loads(raw.decode())
        assert RepoConfig.read(path) == config
