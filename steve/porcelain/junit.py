"""JUnit XML reports: the evidence a test node may declare as an output.

A declared output whose name ends in ``.xml`` is read as a JUnit report
(``<testsuites>``/``<testsuite>``/``<testcase>``).  DTDs and entity
declarations are refused in any encoding (an expat pre-scan), so parsing can
neither expand entities nor fetch anything.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from xml.parsers import expat

JUNIT_MAX_BYTES = 16 << 20
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class JUnitError(ValueError):
    """A report that is not acceptable JUnit XML."""


MESSAGE_CHARS = 2000  # longest message kept per failed case


@dataclass(frozen=True, slots=True)
class JUnitCase:
    """A failed or erroneous test case: ``classname.name``, which, and its message (the
    ``message`` attribute, else the element's text; cut at MESSAGE_CHARS)."""

    name: str
    outcome: Literal["failure", "error"]
    message: str


@dataclass(frozen=True, slots=True)
class JUnitReport:
    tests: int
    failures: int
    errors: int
    skipped: int
    failed: tuple[JUnitCase, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failures == 0 and self.errors == 0

    @property
    def failed_cases(self) -> tuple[str, ...]:
        """The names of the failed and erroneous cases, in report order."""
        return tuple(c.name for c in self.failed)


def parse_junit(data: bytes) -> JUnitReport:
    """Count the test cases of a JUnit XML report; JUnitError if it is not one.

    Counts come from the ``<testcase>`` elements (a ``<failure>``, ``<error>``
    or ``<skipped>`` child), not from the suite's attributes.
    """
    if len(data) > JUNIT_MAX_BYTES:
        raise JUnitError(f"larger than {JUNIT_MAX_BYTES} bytes")
    if _DECLARATION.search(data):
        raise JUnitError("DTDs and entity declarations are refused")
    _refuse_declarations(data)
    try:
        root = ET.fromstring(data)  # no DTD, no entities: checked above
    except ET.ParseError as exc:
        raise JUnitError(f"not well-formed XML: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"root element is <{root.tag}>, not <testsuites> or <testsuite>")
    tests = failures = errors = skipped = 0
    failed: list[JUnitCase] = []
    for case in root.iter("testcase"):
        tests += 1
        name = ".".join(p for p in (case.get("classname"), case.get("name")) if p) or "?"
        failure, error = case.find("failure"), case.find("error")
        if failure is not None:
            failures += 1
            failed.append(JUnitCase(name, "failure", _message(failure)))
        elif error is not None:
            errors += 1
            failed.append(JUnitCase(name, "error", _message(error)))
        elif case.find("skipped") is not None:
            skipped += 1
    return JUnitReport(tests, failures, errors, skipped, tuple(failed))


def _message(element: ET.Element) -> str:
    """The ``message`` attribute, else the element's text, stripped and cut."""
    text = (element.get("message") or element.text or "").strip()
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "..."


def _refuse_declarations(data: bytes) -> None:
    """Scan with expat and refuse any DOCTYPE or entity declaration (in any encoding)."""

    def refuse(*_: object) -> None:
        raise JUnitError("DTDs and entity declarations are refused")

    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    scanner.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    try:
        scanner.Parse(data, True)
    except expat.ExpatError as exc:
        raise JUnitError(f"not well-formed XML: {exc}") from None


def junit_outputs(declared: Sequence[str]) -> list[str]:
    """The declared outputs read as JUnit reports."""
    return [o for o in declared if posixpath.basename(o).lower().endswith(".xml")]
