"""The one Temporal client factory and data converter used by CLI, worker, replayer and tests."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from runtime.settings import Settings

#: Pydantic models cross every Temporal boundary; one converter everywhere keeps them compatible.
DATA_CONVERTER = pydantic_data_converter


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.address, namespace=settings.namespace, data_converter=DATA_CONVERTER)
