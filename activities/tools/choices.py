"""Which analytics connector and which flag provider a growth tool uses: its bound arguments.

A tool that reads analytics takes a ``connector`` and the one that creates a flag a ``provider``:
a name and settings, no secrets (credentials are read from the worker's environment by the
connector or provider), so a run's configuration is visible in its history and every call can be
replayed by hand. A model neither sees nor sets them: the workflow fills them from the run vars
`connector` and `flag_provider` (`workflows.contract.tool_catalog.BOUND_ARGUMENTS`). A `call:`
node passes them in `with`; left out, they default to the mock connector and the local flag store.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ConnectorChoice(BaseModel):
    name: str = Field("mock", description="mock, ga4, mixpanel, amplitude or warehouse")
    settings: dict[str, Any] = Field(default_factory=dict)


class FlagProviderChoice(BaseModel):
    name: str = Field("local", description="local, growthbook or unleash")
    settings: dict[str, Any] = Field(default_factory=dict)
