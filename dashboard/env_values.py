"""Settings values read from the environment: typed, bounded and named in every error (dashboard/config.py
builds Settings from them). Split out of config.py for its size; the ground floor, importing nothing of ours."""

from __future__ import annotations

from pathlib import Path


def env_bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"Setting {name} must be an integer, got {raw!r}") from exc


def env_float(env: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"Setting {name} must be a number, got {raw!r}") from exc
    if not low <= value <= high:
        raise ValueError(f"Setting {name} must be within [{low:g}, {high:g}], got {raw!r}")
    return value


def env_checked(env: dict[str, str], name: str, default: str, check) -> str:
    """A place setting checked like the API checks a house's (dashboard/places.py)."""
    raw = env.get(name) or default
    try:
        return check(raw)
    except ValueError as exc:
        raise ValueError(f"Setting {name}: {exc}") from exc


def env_reset_link_ttl(env: dict[str, str]) -> int:
    """RESET_LINK_TTL_H: 1 to 720 hours (a month); a reset link is as good as a password while it lives."""
    hours = env_int(env, "RESET_LINK_TTL_H", 24)
    if not 1 <= hours <= 720:
        raise ValueError(f"Setting RESET_LINK_TTL_H must be 1 to 720 hours, got {hours}")
    return hours


def env_currency(env: dict[str, str]) -> str:
    """CURRENCY: an ISO 4217 code (three letters), shown beside every cost."""
    raw = (env.get("CURRENCY") or "EUR").strip().upper()
    if len(raw) != 3 or not raw.isalpha() or not raw.isascii():
        raise ValueError(f"Setting CURRENCY must be an ISO 4217 code such as EUR or USD, got {raw!r}")
    return raw


def env_cron(env: dict[str, str], name: str, default: str) -> str:
    """A five-field cron line (croniter), or "" / "off" for none."""
    raw = env.get(name)
    value = default if raw is None else raw.strip()
    if value.lower() in ("", "off", "none"):
        return ""
    from croniter import croniter

    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(
            f"Setting {name} must be a cron line of five fields like '30 2 * * *' (or off), got {raw!r}"
        )
    return value


def env_optional_days(env: dict[str, str], name: str) -> int | None:
    """Unset or empty: None (keep for ever); else a positive number of days."""
    if not env.get(name):
        return None
    days = env_int(env, name, 0)
    if days < 1:
        raise ValueError(f"Setting {name} must be a positive number of days (or unset to keep for ever)")
    return days


def tls_files(env: dict[str, str]) -> dict[str, str | None]:
    """TLS_CERT_FILE and TLS_KEY_FILE: both or neither, each a readable file."""
    cert, key = env.get("TLS_CERT_FILE") or None, env.get("TLS_KEY_FILE") or None
    if bool(cert) != bool(key):
        raise ValueError("Set both TLS_CERT_FILE and TLS_KEY_FILE to serve HTTPS, or neither")
    for name, value in (("TLS_CERT_FILE", cert), ("TLS_KEY_FILE", key)):
        if value and not Path(value).is_file():
            raise ValueError(f"Setting {name}: {value!r} is not a readable file (a PEM file)")
    return {"tls_cert_file": cert, "tls_key_file": key}


def mqtt_settings(env: dict[str, str]) -> dict:
    """MQTT_URL (mqtt:// or mqtts://, optional user:password@), MQTT_TOPIC_PREFIX, MQTT_CLIENT_ID, MQTT_CA_FILE."""
    from urllib.parse import urlsplit

    url = env.get("MQTT_URL") or None
    if url:
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or not port_ok:
            raise ValueError(
                f"Setting MQTT_URL must look like mqtt://user:password@host:1883 (or mqtts:// for TLS), got {parts.scheme}://..."
            )
    prefix = (env.get("MQTT_TOPIC_PREFIX") or "aggregator").strip()
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or set(prefix) & {"+", "#", "\x00"}:
        raise ValueError(
            f"Setting MQTT_TOPIC_PREFIX must be a topic without wildcards or leading/trailing '/', got {prefix!r}"
        )
    client_id = (env.get("MQTT_CLIENT_ID") or "aggregator-bridge").strip()
    if not 1 <= len(client_id.encode()) <= 65535:
        raise ValueError("Setting MQTT_CLIENT_ID must be a non-empty string")
    ca_file = env.get("MQTT_CA_FILE") or None
    if ca_file and not Path(ca_file).is_file():
        raise ValueError(f"Setting MQTT_CA_FILE: {ca_file!r} is not a readable file (PEM CA certificates)")
    return {
        "mqtt_url": url,
        "mqtt_topic_prefix": prefix,
        "mqtt_client_id": client_id,
        "mqtt_ca_file": ca_file,
    }


def alert_settings(env: dict[str, str]) -> dict:
    """ALERT_* and SMTP_* (README, "Alerts"): positive cadence and bounds; SMTP_HOST unset means no e-mail."""
    values = {
        "alert_interval_s": env_int(env, "ALERT_INTERVAL_S", 60),
        "alert_max_rules_per_run": env_int(env, "ALERT_MAX_RULES_PER_RUN", 500),
        "alert_delivery_timeout_s": env_int(env, "ALERT_DELIVERY_TIMEOUT_S", 10),
        "alert_delivery_attempts": env_int(env, "ALERT_DELIVERY_ATTEMPTS", 5),
    }
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"Setting {name.upper()} must be at least 1, got {value}")
    return values | {
        "alert_webhook_allow_link_local": env_bool(env.get("ALERT_WEBHOOK_ALLOW_LINK_LOCAL"), False),
        "smtp_host": env.get("SMTP_HOST") or None,
        "smtp_port": env_int(env, "SMTP_PORT", 587),
        "smtp_user": env.get("SMTP_USER") or None,
        "smtp_password": env.get("SMTP_PASSWORD") or None,
        "smtp_starttls": env_bool(env.get("SMTP_STARTTLS"), True),
        "smtp_from": env.get("SMTP_FROM") or "aggregator@localhost",
    }
