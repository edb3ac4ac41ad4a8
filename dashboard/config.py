"""One settings object, read from the environment once.

Unset service URLs mean the embedded defaults (SQLite file, in-process jobs, local object-store folder),
so `make run` works on a bare machine while production points the same code at PostgreSQL, Redis and S3.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dashboard.env_values import (
    alert_settings,
    env_bool,
    env_checked,
    env_cron,
    env_currency,
    env_float,
    env_int,
    env_optional_days,
    env_reset_link_ttl,
    mqtt_settings,
    tls_files,
)

log = logging.getLogger(__name__)

WEATHER_PROVIDERS = ("none", "open-meteo")
OPEN_METEO_FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
OPEN_METEO_ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"


def _persistent_secret(data_dir: Path) -> str:
    """A random secret kept in DATA_DIR so embedded restarts keep sessions valid.

    Production sets SECRET_KEY explicitly; this only spares a new user from having to invent one.
    """
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    s3_endpoint: str | None
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_bucket: str
    s3_secure: bool
    host: str
    port: int
    secret_key: str
    demo_data: bool
    demo_days: int = 365
    timezone: str = "Europe/Athens"
    # the default place (houses and communities may have their own): holidays, sun and weather
    holiday_country: str = "GR"
    latitude: float = 37.98
    longitude: float = 23.73
    weather_provider: str = "none"
    open_meteo_forecast_url: str = OPEN_METEO_FORECAST_URL
    open_meteo_archive_url: str = OPEN_METEO_ARCHIVE_URL
    weather_timeout_s: int = 20
    weather_history_days: int = 373  # the longest training window (365 days) and its 8 days of lags
    max_batch_readings: int = 10_000
    access_log_retention_days: int = 90
    access_token_minutes: int = 30
    refresh_token_days: int = 7
    login_max_failures: int = 5
    login_window_minutes: int = 15
    derive_energy_max_gap_s: int = 900
    max_power_w: float = 1e8  # plausibility bound of one reading (100 MW); a device may set a lower one
    simulator_interval_s: int = 10
    cookie_secure: bool = False
    # proxy hops in front of the app whose X-Forwarded-For/-Proto/-Host are trusted (werkzeug ProxyFix)
    trusted_proxies: int = 0
    model_encryption_key: str | None = None
    # personal data at rest (dashboard/fieldcrypt.py): the current key (else derived from SECRET_KEY) and
    # earlier keys still readable while a rotation is staged (comma-separated, base64)
    data_encryption_key: str | None = None
    data_encryption_key_old: tuple[str, ...] = ()
    train_wait_s: int = 120
    forecast_wait_s: int = 10
    # Argon2id cost of new password hashes (argon2-cffi's RFC 9106 low-memory profile); the test suite
    # lowers it, since every fixture user costs a hash
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    # privacy (docs/privacy.md): third parties see no aggregate of fewer houses; raw readings' age limit
    min_aggregate_houses: int = 5
    raw_retention_days: int | None = None
    # HTTPS served by the app itself (`python app.py`, gunicorn.conf.py): both set, or neither
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # MQTT ingestion (dashboard/mqtt_bridge.py): the broker, the topics' prefix, the bridge's session id
    mqtt_url: str | None = None
    mqtt_topic_prefix: str = "aggregator"
    mqtt_client_id: str = "aggregator-bridge"
    mqtt_ca_file: str | None = None
    # cost and CO2 (dashboard/costs.py): the tariffs' currency; the grid's constant carbon intensity (g/kWh)
    # for hours without a stored hourly value (None: CO2 only where hourly values are stored)
    currency: str = "EUR"
    grid_co2_g_per_kwh: float | None = None
    # alerts (dashboard/alerts.py, alert_delivery.py): evaluation cadence and bounds, webhooks, SMTP e-mail
    alert_interval_s: int = 60
    alert_max_rules_per_run: int = 500
    alert_delivery_timeout_s: int = 10
    alert_delivery_attempts: int = 5
    alert_webhook_allow_link_local: bool = False
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_from: str = "aggregator@localhost"
    # password reset links an admin issues (dashboard/accounts.py): hours until an unused link expires
    reset_link_ttl_h: int = 24
    # scheduled retraining (jobs/retrain.py): a cron line in TIMEZONE ("" turns it off), trainings per run
    retrain_cron: str = "30 2 * * *"
    retrain_max_jobs: int = 100

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def embedded_demo(self) -> bool:
        """`make run` on one machine: the SQLite file, demo data on, and bound to the loopback address."""
        return self.embedded_database and self.demo_data and self.host in LOOPBACK_HOSTS


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MIN_SECRET_BYTES = 32
GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
GENERATE_KEY = 'python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"'


def parse_key_b64(name: str, value: str) -> bytes:
    """A 256-bit key given base64-encoded in the setting `name`; ValueError saying how to make one."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError(
            f"{name} must be 32 bytes of randomness, base64-encoded (44 characters); make one with: {GENERATE_KEY}"
        )
    return key


def check_secrets(settings: Settings) -> None:
    """Refuse settings whose keys would protect nothing (ValueError that says what to do).

    SECRET_KEY signs every session and every other key is derived from it (dashboard/crypto.py), so it
    needs at least 32 bytes. Only the embedded demo on the loopback address tolerates a short one, with a
    warning (left unset, it is 64 random characters kept in DATA_DIR).
    """
    if len(settings.secret_key.encode()) < MIN_SECRET_BYTES:
        message = (
            f"SECRET_KEY is {len(settings.secret_key.encode())} bytes; it must be at least "
            f"{MIN_SECRET_BYTES} random bytes. Set SECRET_KEY to the output of: {GENERATE_SECRET}"
        )
        if not settings.embedded_demo:
            raise ValueError(message + " (only the embedded demo on 127.0.0.1 accepts a shorter one)")
        log.warning("%s (accepted only because this is the embedded demo on %s)", message, settings.host)
    if settings.model_encryption_key is not None:
        parse_key_b64("MODEL_ENCRYPTION_KEY", settings.model_encryption_key)
    if settings.data_encryption_key is not None:
        parse_key_b64("DATA_ENCRYPTION_KEY", settings.data_encryption_key)
    for old in settings.data_encryption_key_old:
        parse_key_b64("DATA_ENCRYPTION_KEY_OLD", old)
    if settings.trusted_proxies < 0:
        raise ValueError(f"Setting TRUSTED_PROXIES must be 0 or more, got {settings.trusted_proxies}")


def normalize_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3 for a bare scheme)."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from `env` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    settings = _build(env)
    check_secrets(settings)
    return settings


def _build(env: dict[str, str]) -> Settings:
    provider = (env.get("WEATHER_PROVIDER") or "none").strip().lower()
    if provider not in WEATHER_PROVIDERS:
        raise ValueError(
            f"Setting WEATHER_PROVIDER must be one of {', '.join(WEATHER_PROVIDERS)}, got {provider!r}"
        )
    data_dir = Path(env.get("DATA_DIR") or "./var").resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'aggregator.db'}"
    database_url = normalize_database_url(database_url)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=env.get("REDIS_URL") or None,
        s3_endpoint=env.get("S3_ENDPOINT") or None,
        s3_access_key=env.get("S3_ACCESS_KEY") or None,
        s3_secret_key=env.get("S3_SECRET_KEY") or None,
        s3_bucket=env.get("S3_BUCKET") or "aggregator-models",
        s3_secure=env_bool(env.get("S3_SECURE"), False),
        host=env.get("HOST") or "127.0.0.1",
        port=env_int(env, "PORT", 8050),
        secret_key=env.get("SECRET_KEY") or _persistent_secret(data_dir),
        demo_data=env_bool(env.get("DEMO_DATA"), True),
        demo_days=max(14, env_int(env, "DEMO_DAYS", 365)),
        timezone=env_checked(env, "TIMEZONE", "Europe/Athens", check_timezone),
        holiday_country=env_checked(env, "HOLIDAY_COUNTRY", "GR", check_country),
        latitude=env_float(env, "LATITUDE", 37.98, -90, 90),
        longitude=env_float(env, "LONGITUDE", 23.73, -180, 180),
        weather_provider=provider,
        open_meteo_forecast_url=env.get("OPEN_METEO_FORECAST_URL") or OPEN_METEO_FORECAST_URL,
        open_meteo_archive_url=env.get("OPEN_METEO_ARCHIVE_URL") or OPEN_METEO_ARCHIVE_URL,
        weather_timeout_s=env_int(env, "WEATHER_TIMEOUT_S", 20),
        weather_history_days=env_int(env, "WEATHER_HISTORY_DAYS", 373),
        max_batch_readings=env_int(env, "MAX_BATCH_READINGS", 10_000),
        access_log_retention_days=env_int(env, "ACCESS_LOG_RETENTION_DAYS", 90),
        access_token_minutes=env_int(env, "ACCESS_TOKEN_MINUTES", 30),
        refresh_token_days=env_int(env, "REFRESH_TOKEN_DAYS", 7),
        login_max_failures=env_int(env, "LOGIN_MAX_FAILURES", 5),
        login_window_minutes=env_int(env, "LOGIN_WINDOW_MINUTES", 15),
        derive_energy_max_gap_s=env_int(env, "DERIVE_ENERGY_MAX_GAP_S", 900),
        max_power_w=env_float(env, "MAX_POWER_W", 1e8, 1.0, 1e12),
        simulator_interval_s=env_int(env, "SIMULATOR_INTERVAL_S", 10),
        cookie_secure=env_bool(env.get("COOKIE_SECURE"), False),
        trusted_proxies=env_int(env, "TRUSTED_PROXIES", 0),
        model_encryption_key=env.get("MODEL_ENCRYPTION_KEY") or None,
        data_encryption_key=env.get("DATA_ENCRYPTION_KEY") or None,
        data_encryption_key_old=tuple(
            k.strip() for k in (env.get("DATA_ENCRYPTION_KEY_OLD") or "").split(",") if k.strip()
        ),
        train_wait_s=env_int(env, "TRAIN_WAIT_S", 120),
        forecast_wait_s=env_int(env, "FORECAST_WAIT_S", 10),
        password_hash_time_cost=max(1, env_int(env, "PASSWORD_HASH_TIME_COST", 3)),
        password_hash_memory_kib=max(32, env_int(env, "PASSWORD_HASH_MEMORY_KIB", 65536)),
        min_aggregate_houses=max(1, env_int(env, "MIN_AGGREGATE_HOUSES", 5)),
        raw_retention_days=env_optional_days(env, "RAW_RETENTION_DAYS"),
        **tls_files(env),
        **mqtt_settings(env),
        currency=env_currency(env),
        grid_co2_g_per_kwh=env_float(env, "GRID_CO2_G_PER_KWH", 0.0, 0.0, 5000.0)
        if env.get("GRID_CO2_G_PER_KWH")
        else None,
        **alert_settings(env),
        reset_link_ttl_h=env_reset_link_ttl(env),
        retrain_cron=env_cron(env, "RETRAIN_CRON", "30 2 * * *"),
        retrain_max_jobs=max(1, env_int(env, "RETRAIN_MAX_JOBS", 100)),
    )


# ---- place values (pure: the settings, the API and the CLI share them) -----------------------------------


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(value: str) -> str:
    """An IANA zone name (e.g. Europe/Athens); raises ValueError with a readable message."""
    if not isinstance(value, str) or value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Athens)")
    return value


@lru_cache(maxsize=1)
def _countries() -> dict[str, list[str]]:
    import holidays

    return holidays.list_supported_countries()


def check_country(value: str) -> str:
    """ISO 3166-1 alpha-2 (GR) or ISO 3166-2 (AU-VIC) that the `holidays` package has a calendar for;
    returned in its canonical spelling."""
    if not isinstance(value, str):
        raise ValueError("must be a string such as GR or AU-VIC")
    match = re.fullmatch(r"([A-Za-z]{2})(?:-(.+))?", value.strip())
    supported = _countries()
    if match is None or match.group(1).upper() not in supported:
        raise ValueError(f"{value!r} is not a country with public holidays (ISO 3166-1 alpha-2, e.g. GR)")
    country, subdivision = match.group(1).upper(), match.group(2)
    if subdivision is None:
        return country
    known = {s.upper(): s for s in supported[country]}
    if subdivision.upper() not in known:
        listed = ", ".join(supported[country][:12]) or "none"
        raise ValueError(f"{value!r}: {country} has no subdivision {subdivision!r} (known: {listed})")
    return f"{country}-{known[subdivision.upper()]}"


def check_latitude(value: float) -> float:
    if not -90 <= value <= 90:
        raise ValueError("must be within [-90, 90] degrees")
    return float(value)


def check_longitude(value: float) -> float:
    if not -180 <= value <= 180:
        raise ValueError("must be within [-180, 180] degrees")
    return float(value)
