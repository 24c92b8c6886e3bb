"""Research extraction cost per page (issue 17): median milliseconds per page.

Over the example mirror's fixture pages (examples/research/pages) and a
synthetic set of pages (article paragraphs inside navigation and footer
boilerplate), it times ``extract_text`` (trafilatura) alone and
``extract_text`` + ``propose_spans`` for one question, and reports the
ratio of the whole to the bare extractor (the peer in the same run).

    python3 bench/bench_extract.py [--pages 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from steve.research.excerpts import propose_spans
from steve.research.extract import extract_text

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How do existing tools define a word?"
_WORDS = (
    "word tool define existing count text file space line byte locale read buffer "
    "mmap page cache kernel sequential random access user option total output"
)
WORDS = _WORDS.split(" ")


def synthetic(n: int, seed: int = 17) -> list[bytes]:
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        paras = "".join(
            "<p>" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80))) + ".</p>\n"
            for _ in range(rng.randint(4, 12))
        )
        nav = " | ".join(f'<a href="/{j}">link {j}</a>' for j in range(8))
        pages.append(
            (
                f"<html><head><title>Page {i}</title></head><body><nav>{nav}</nav>"
                f"<article><h1>Page {i}</h1>\n{paras}</article>"
                "<footer>Copyright, contact, RSS</footer></body></html>"
            ).encode()
        )
    return pages


def per_page_ms(pages: list[bytes], with_spans: bool) -> list[float]:
    out = []
    for data in pages:
        t0 = time.perf_counter()
        ex = extract_text(data, "text/html", "utf-8")
        if with_spans and ex is not None:
            propose_spans(ex.text, QUESTION)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(name: str, pages: list[bytes]) -> None:
    per_page_ms(pages[:5], True)  # warm up (imports, lxml)
    bare = statistics.median(per_page_ms(pages, False))
    whole = statistics.median(per_page_ms(pages, True))
    print(
        f"{name}: {len(pages)} pages, extract_text median {bare:.2f} ms/page, "
        f"+ propose_spans {whole:.2f} ms/page (ratio {whole / bare:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    fixtures = [p.read_bytes() for p in sorted((ROOT / "examples/research/pages").glob("*.html"))]
    report("fixture pages (x25)", fixtures * 25)
    report("synthetic pages", synthetic(args.pages))


if __name__ == "__main__":
    main()
