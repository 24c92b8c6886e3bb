"""The LLM layer: providers, budgets, the redacted request log, record/replay.

Above the repository, below porcelain.  Only this package imports a model
SDK (``anthropic``, ``openai``), and only in the provider modules that need
it, when a provider is made (:func:`steve.llm.registry.make_provider`), so
importing :mod:`steve.llm` costs no SDK.  Start with
:class:`steve.llm.session.LLMSession` (docs/llm.md).
"""

from __future__ import annotations

from steve.llm.types import (
    Done,
    Message,
    ModelInfo,
    Request,
    Response,
    TextBlock,
    TextDelta,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

__all__ = [
    "Done",
    "Message",
    "ModelInfo",
    "Request",
    "Response",
    "TextBlock",
    "TextDelta",
    "Tool",
    "ToolResultBlock",
    "ToolUseBlock",
    "Usage",
]
