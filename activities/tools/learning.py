"""The learning tool: `write_learning_doc` writes the stakeholder document as Markdown, with the
verdict's numbers appended exactly as the statistics computed them (never retyped by a model).

The document also travels in the result, so a tool node can `publish:` it as a run artifact even
when the worker's file is out of reach.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from activities.tools.spec import ToolSet
from activities.tools.statistics import SignificanceReadout

TOOLS = ToolSet()


class LearningDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    body: str = Field(description="markdown")
    verdict: SignificanceReadout | None = Field(
        None, description="calculate_significance's output: appended as a Result section, numbers as computed")
    directory: str = Field(".iterloop/learnings", description="where documents are written on the worker")


class LearningDocWritten(BaseModel):
    path: str
    bytes: int
    # The document itself travels with the result, so a tool node can `publish:` it as a run
    # artifact (inspect, report, the dashboard) even when the worker's file is out of reach.
    title: str
    markdown: str


@TOOLS.tool("write_learning_doc")
async def write_learning_doc(args: LearningDoc) -> LearningDocWritten:
    """Write the stakeholder learning document as a Markdown file (idempotent per title)."""
    slug = "".join(c if c.isalnum() else "-" for c in args.title.lower()).strip("-")[:80] or "learning"
    path = Path(args.directory) / f"{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# {args.title}\n\n{args.body.strip()}\n"
    if args.verdict is not None:
        text += "\n" + _result_section(args.verdict)
    path.write_text(text, encoding="utf-8")
    return LearningDocWritten(path=str(path), bytes=len(text.encode("utf-8")), title=args.title, markdown=text)


def _result_section(v: SignificanceReadout) -> str:
    """The verdict's numbers in Markdown, exactly as the statistics computed them."""
    lines = ["## Result (computed by calculate_significance)", "", f"- **{v.headline}**", f"- Why: {v.reason}",
             f"- Sample ratio: {v.srm.message}"]
    lines += [f"- Guardrail: {g.message}" for g in v.guardrails]
    if v.days_running is not None:
        lines.append(f"- Days running: {v.days_running:.2f}")
    lines += [f"- Warning: {w}" for w in v.warnings]
    return "\n".join(lines) + "\n"
