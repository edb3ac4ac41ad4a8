"""Weather per location: validated input (API, CSV), storage and lookup, and the providers that fetch it.

Rows are hourly and labelled by the START of their hour in UTC, like readings. A location's row for an
hour is an observation, or a provider's forecast (`is_forecast`) until the observation replaces it.
"""

from dashboard.weather.observations import WeatherRow, validate_observations
from dashboard.weather.provider import WeatherProvider, WeatherUnavailable, provider_from_settings

__all__ = [
    "WeatherProvider",
    "WeatherRow",
    "WeatherUnavailable",
    "provider_from_settings",
    "validate_observations",
]
