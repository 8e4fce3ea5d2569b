"""An MCP `CallToolResult` as a node output, the way Iterion turns one into a tool result.

- `isError`: an error *result* (the model reads it and may try otherwise); its text is the content's
  text, else the structured content as JSON, else a fixed sentence.
- Otherwise the output is the structured content when there is some (an object as it is, any other
  value under `result`), else `{"result": text}` with the text items joined by newlines and any
  other item (an image, a resource) written as its JSON.

``text`` is what a model is shown: the content's text when there is some, else the structured
content's JSON.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from workflows.contract.mcp import McpCallResult

NO_ERROR_TEXT = "tool returned an MCP error"


def call_result(result: types.CallToolResult) -> McpCallResult:
    text = content_text(result.content)
    structured = result.structured_content
    if not text and structured is not None:
        text = _json(structured)
    if result.is_error:
        text = text or NO_ERROR_TEXT
        return McpCallResult(output={"error": text}, is_error=True, text=text)
    if structured is not None:
        output = structured if isinstance(structured, dict) else {"result": structured}
    else:
        output = {"result": text}
    return McpCallResult(output=output, text=text)


def content_text(content: list[Any]) -> str:
    """Text items as they are, any other item as its JSON, one per line."""
    parts: list[str] = []
    for item in content:
        if isinstance(item, types.TextContent):
            parts.append(item.text)
        else:
            parts.append(_json(item.model_dump(mode="json", by_alias=True, exclude_none=True)))
    return "\n".join(parts)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
