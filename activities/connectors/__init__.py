"""Analytics connectors: one interface (`base.BaseConnector`) over mock data, GA4, Mixpanel,
Amplitude and SQL warehouses; `registry.connector_from_config` builds one by name.

The package is laid out by concern: `models` (what connectors answer), `base` (the interface),
`series` (periods and buckets), `history` (the learning history file), `http_api` (JSON over
HTTP), one module per source, and `registry`. Their failures are the `ConnectorError` branch of
`activities.errors`, re-exported here.

See docs/connectors.md for the interface, each connector's settings, and the mock dataset's story.
"""

from activities.connectors.base import BaseConnector
from activities.connectors.models import (
    ExperimentResults,
    FunnelData,
    FunnelStep,
    HistoricalExperiment,
    MetricPoint,
    MetricSeries,
    RatioMetric,
    VariantResult,
)
from activities.connectors.registry import connector_from_config, connector_names
from activities.errors import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorUnavailableError,
    InvalidQueryError,
    RateLimitedError,
    UnknownFunnelError,
    UnknownMetricError,
    UnknownNameError,
)

__all__ = [
    "BaseConnector",
    "ConnectorAuthError",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorUnavailableError",
    "ExperimentResults",
    "FunnelData",
    "FunnelStep",
    "HistoricalExperiment",
    "InvalidQueryError",
    "MetricPoint",
    "MetricSeries",
    "RateLimitedError",
    "RatioMetric",
    "UnknownFunnelError",
    "UnknownMetricError",
    "UnknownNameError",
    "VariantResult",
    "connector_from_config",
    "connector_names",
]
