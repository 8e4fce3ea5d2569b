"""The contract between the interpreter workflow, its activities and its clients.

Everything here is pure (it imports only `dsl` and pydantic) so the workflow sandbox, the worker's
activities, the CLI and the API can all import it:

- `vocabulary`: statuses, event types, notify events, reasoning efforts, error types and their
  retryability, activity names, search attributes: each defined once as a `Literal`;
- `activities`: each activity's name bound to its request and result types;
- `messages`: the activity requests and results; `state`: the run's input, state and views;
  `mcp`: MCP server specs and tool calls;
- pure rules more than one side applies: `answers` (checking a gate's answer), `tool_policy`,
  `artifact_refs` (how stored values are referred to), `output_validation` (an output against its
  schema), `tool_catalog` (the builtin tools' metadata), `tool_docs` (a builtin tool's schemas, for the agent
  skill's generated reference), `scripts` (the offline script format), `mcp_sets` (which MCP
  servers a node may call), `env_refs` (`${ENV}` references), `data_files` (reading a user's
  YAML/JSON file) and
  `slack_blocks` (the Slack message format the notify activity posts and the API reads back).

Changing a model's fields changes history payloads: add fields with defaults, never rename.
"""
