"""Settings: unset means embedded, URLs are normalised, bad values name the setting."""

import pytest

from dashboard.config import load_settings


def test_unset_services_mean_embedded_defaults(tmp_path):
    s = load_settings({"DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'aggregator.db'}"
    assert s.redis_url is None and s.s3_endpoint is None
    assert (s.host, s.port, s.demo_data) == ("127.0.0.1", 8050, True)
    # a secret is generated once and kept, so restarts keep browser sessions valid
    assert load_settings({"DATA_DIR": str(tmp_path)}).secret_key == s.secret_key
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


def test_postgres_urls_are_pinned_to_psycopg2(tmp_path):
    for url in ("postgres://u@h/db", "postgresql://u@h/db"):
        s = load_settings({"DATA_DIR": str(tmp_path), "DATABASE_URL": url, "SECRET_KEY": "k" * 32})
        assert s.database_url == "postgresql+psycopg2://u@h/db"


def test_demo_data_zero_turns_demo_off(tmp_path):
    assert load_settings({"DATA_DIR": str(tmp_path), "DEMO_DATA": "0"}).demo_data is False


def test_bad_integer_names_the_setting(tmp_path):
    with pytest.raises(ValueError, match="PORT"):
        load_settings({"DATA_DIR": str(tmp_path), "PORT": "eighty"})


def test_the_default_place_and_weather_provider(tmp_path):
    s = load_settings({"DATA_DIR": str(tmp_path)})
    assert (s.timezone, s.holiday_country, s.latitude, s.longitude) == ("Europe/Athens", "GR", 37.98, 23.73)
    assert s.weather_provider == "none"  # offline unless asked
    s = load_settings({"DATA_DIR": str(tmp_path), "HOLIDAY_COUNTRY": "au-vic", "LATITUDE": "-37.81",
                       "LONGITUDE": "144.96", "TIMEZONE": "Australia/Melbourne"})  # fmt: skip
    assert (s.timezone, s.holiday_country, s.latitude, s.longitude) == (
        "Australia/Melbourne",
        "AU-VIC",
        -37.81,
        144.96,
    )


@pytest.mark.parametrize(
    "name, value",
    [("TIMEZONE", "Athens"), ("HOLIDAY_COUNTRY", "XX"), ("HOLIDAY_COUNTRY", "GR-NOPE"), ("LATITUDE", "91"),
     ("LONGITUDE", "east"), ("WEATHER_PROVIDER", "dark-sky")],
)  # fmt: skip
def test_a_bad_place_setting_names_the_setting(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        load_settings({"DATA_DIR": str(tmp_path), name: value})


def test_password_hashes_keep_the_production_cost_unless_set(tmp_path):
    from argon2 import PasswordHasher

    from dashboard import auth

    default = load_settings({"DATA_DIR": str(tmp_path)})
    assert (default.password_hash_time_cost, default.password_hash_memory_kib) == (3, 65536)
    assert (PasswordHasher().time_cost, PasswordHasher().memory_cost) == (3, 65536)  # argon2-cffi's own
    cheap = load_settings({"DATA_DIR": str(tmp_path), "PASSWORD_HASH_TIME_COST": "1",
                           "PASSWORD_HASH_MEMORY_KIB": "32"})  # fmt: skip
    try:
        auth.configure_password_hashing(cheap)
        cheap_hash = auth.hash_password("long-password")
        assert "$m=32,t=1," in cheap_hash
        auth.configure_password_hashing(default)
        assert "$m=65536,t=3," in auth.hash_password("long-password")
        assert auth.verify_password(cheap_hash, "long-password")  # the cost is read from each hash
    finally:
        auth.configure_password_hashing(cheap)  # the suite's cost (tests/conftest.py)
