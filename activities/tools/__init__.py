"""The builtin tools: deterministic steps agents call through `tools:` and tool nodes through
`call:`. Numbers come from here, never from a model.

`spec` says what a tool is; one module per domain defines tools (`builtins`; the growth loop's
`funnels`, `experiments`, `statistics`, `feature_flags`, `learning`; `choices` holds the bound
connector / flag provider arguments they share); `registry` assembles them, checked against the
tool catalog (`workflows.contract.tool_catalog`), and is the `iterloop.tool_call` activity.
"""
