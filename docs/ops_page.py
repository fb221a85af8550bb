"""mkdocs hook: the op table page (docs/reference/ops.md) is generated from `opdispatch.ops.OPS` through
`opdispatch.op_reference`, the same text as `opdispatch ops`, so it cannot drift from the code."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- opdispatch ops -->"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from opdispatch import op_reference

    sections = []
    for entry in op_reference.all_ops():
        sections.append(f"## {entry['name']}\n\n```text\n{op_reference.text(entry)}\n```\n")
    return markdown.replace(MARKER, "\n".join(sections))
