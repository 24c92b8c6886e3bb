"""Checking citations mechanically, from the mirrored bytes.

A research manifest (schema v2) cites in two steps: a claim cites an excerpt
by id with the span it quotes, and the excerpt names a source and a locator
``[start, end)`` into that source's extracted text.  :func:`check_research`
re-checks both against the store:

* the source record names the content blob and the media type the source says;
* the extracted-text blob is UTF-8 and, when the installed extractor is the
  one recorded, is exactly what re-extracting the mirrored bytes gives;
* each excerpt is the text at its locator (:func:`steve.research.excerpts.check_span`);
* each quoted span occurs in the excerpt it cites (also a schema rule);
* with ``strict`` (what STEVE freezes), every cited excerpt has a locator.

Problems are ``(field path, rule)`` pairs like the schema's, so freeze
reports them in one :class:`~steve.errors.ManifestInvalid`-shaped list and
``steve verify`` lists them as invalid.  Nothing here raises for damage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from steve.errors import SteveError
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.common import Problem
from steve.objects.schemas.research import ResearchManifest, Source
from steve.repo import Repo
from steve.research.excerpts import check_span
from steve.research.extract import extract_text, extractor_id
from steve.research.records import read_source

__all__ = ["SourceTexts", "check_locators", "check_research", "manifest_citation_problems"]


@dataclass(slots=True)
class SourceTexts:
    """Each source's extracted text, loaded and re-checked once (None: unusable, with
    the problems that say why in :attr:`problems`)."""

    repo: Repo
    texts: dict[str, str | None] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def text(self, source: Source) -> str | None:
        if source.id not in self.texts:
            problems: list[str] = []
            self.texts[source.id] = self._load(source, problems)
            self.problems[source.id] = problems
        return self.texts[source.id]

    def _load(self, source: Source, problems: list[str]) -> str | None:
        repo = self.repo
        charset = None
        try:
            if source.record is not None:
                rec = read_source(repo, ObjectId.from_hex(source.record))
                charset = rec.charset
                if rec.content.hex != source.content:
                    problems.append(f"its record names content {rec.content.hex}")
                if rec.media_type != source.media_type:
                    problems.append(f"its record says {rec.media_type}, not {source.media_type}")
            if source.text is None:
                return None
            text = repo.read_blob(ObjectId.from_hex(source.text)).decode("utf-8")
            installed = extractor_id(source.media_type)
            if source.extractor is not None and installed == source.extractor:
                content = repo.read_blob(ObjectId.from_hex(source.content))
                again = extract_text(content, source.media_type, charset)
                if again is None or again.text != text:
                    problems.append(
                        f"re-extracting the mirrored bytes with {installed} does not give "
                        "the recorded text"
                    )
                    return None if again is None else again.text
            return text
        except UnicodeDecodeError:
            problems.append("its extracted text is not UTF-8")
        except SteveError as exc:
            problems.append(f"{exc.message}: {exc.detail}" if exc.detail else exc.message)
        return None


def check_research(
    repo: Repo, body: ResearchManifest, *, strict: bool = False, texts: SourceTexts | None = None
) -> list[Problem]:
    """Every citation of ``body`` that does not check out against the store (see the
    module docstring); empty when all do."""
    texts = texts or SourceTexts(repo)
    out: list[Problem] = []
    for i, s in enumerate(body.sources):
        texts.text(s)
        out += [(f"sources[{i}]", f"source: {s.id} {p}") for p in texts.problems[s.id]]
    return out + check_locators(body, texts.text, strict=strict)


def check_locators(
    body: ResearchManifest, text_of: Callable[[Source], str | None], *, strict: bool = False
) -> list[Problem]:
    """The excerpt and citation checks of :func:`check_research`, given each source's
    extracted text (``text_of``; None: not available), without a repository: what
    ``steve verify-git`` runs on an export's ``sources/<i>/text`` attachments."""
    out: list[Problem] = []
    sources = {s.id: s for s in body.sources}
    located: set[str] = set()
    for i, e in enumerate(body.excerpts):
        source = sources.get(e.source)
        if e.locator is None or source is None:
            continue
        text = text_of(source)
        if text is None:
            out.append((f"excerpts[{i}].locator", f"citation: {e.id}: no text of {e.source}"))
            continue
        why = check_span(text, e.locator.start, e.locator.end, e.text)
        if why is None:
            located.add(e.id)
        else:
            out.append((f"excerpts[{i}].locator", f"citation: {e.id} in {e.source}: {why}"))
    excerpts = {e.id: e for e in body.excerpts}
    for i, summary in enumerate(body.summaries):
        for j, claim in enumerate(summary.claims):
            for k, c in enumerate(claim.cites):
                path = f"summaries[{i}].claims[{j}].cites[{k}]"
                cited = excerpts.get(c.excerpt)
                if cited is None:
                    out.append((path, f"citation: no excerpt {c.excerpt}"))
                elif c.quote not in cited.text:
                    out.append((path, f"citation: the quote is not in {c.excerpt}"))
                elif strict and cited.locator is None:
                    out.append((path, f"citation: {c.excerpt} has no locator to re-check"))
            if strict and claim.sources:
                out.append(
                    (f"summaries[{i}].claims[{j}].sources", "citation: cite excerpts, not sources")
                )
    return out


def manifest_citation_problems(repo: Repo, manifest: Manifest) -> list[str]:
    """``steve verify``'s citation check of a stored research manifest (any version),
    one line per problem; a body that does not validate is verify's other check."""
    if manifest.kind is not ObjectType.RESEARCH:
        return []
    from steve.objects.schemas import read_body

    try:
        body = read_body(manifest.kind, manifest.version, manifest.body)
    except SteveError:
        return []
    assert isinstance(body, ResearchManifest)
    return [f"{path}: {rule}" for path, rule in check_research(repo, body)]
