"""Analytics connectors: one interface (`base.BaseConnector`) over mock data, GA4, Mixpanel,
Amplitude and SQL warehouses; `registry.connector_from_config` builds one by name.

See docs/connectors.md for the interface, each connector's settings, and the mock dataset's story.
"""

from activities.connectors.base import (
    BaseConnector,
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    ConnectorUnavailableError,
    ExperimentResults,
    FunnelData,
    FunnelStep,
    HistoricalExperiment,
    InvalidQueryError,
    MetricPoint,
    MetricSeries,
    RateLimitedError,
    UnknownFunnelError,
    UnknownMetricError,
    UnknownNameError,
    VariantResult,
)
from activities.connectors.registry import connector_from_config, connector_names

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
    "UnknownFunnelError",
    "UnknownMetricError",
    "UnknownNameError",
    "VariantResult",
    "connector_from_config",
    "connector_names",
]
