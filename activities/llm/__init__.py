"""Model providers behind one small interface, and the `iterloop.llm_turn` activity that picks one.

`provider.py` holds the interface and the model-string → provider rule; each provider lives in its
own module (`anthropic_provider.py`, `openai_provider.py`, `scripted.py`). Around the call, one
module per concern: `settings.py` (worker settings), `conversation.py` (the stored conversation),
`tool_specs.py` (which tools a turn offers), `structured_output.py` and `output_validation.py`
(what the answer must match, checked with pydantic), `reasoning.py` (effort mapping),
`pricing.py` (USD), `errors.py` (provider failures as Temporal errors). `activity.py` strings them
together. User documentation: docs/models.md.
"""
