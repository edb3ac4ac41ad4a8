"""Command line: `python -m dashboard COMMAND`. Run with --help for the commands and their options.

Each command imports the services it runs inside its function, so `--help` and the light commands start
without loading pandas, pvlib or the forecasting stack."""

from __future__ import annotations

import argparse
import sys

from dashboard import commands
from dashboard.auth import configure_password_hashing
from dashboard.config import load_settings
from dashboard.errors import DomainError
from dashboard.policy import KEY_ROLES, ROLES, THIRD_PARTY


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description="Aggregator Web App commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init-db", help="create or migrate the database").set_defaults(func=commands.cmd_init_db)
    p = sub.add_parser("create-user", help="create a login")
    p.add_argument("--username", required=True)
    p.add_argument("--password", help="prompted for when omitted")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--house", type=int, action="append", help="house id the user may see (repeat)")
    p.set_defaults(func=commands.cmd_create_user)
    p = sub.add_parser("create-api-key", help="create an API key (shown once): a third-party app's or a gateway's")  # fmt: skip
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=KEY_ROLES, default=THIRD_PARTY, help="third_party (default): reads aggregates; "
                   "gateway: writes the readings of its houses' devices and reads nothing")  # fmt: skip
    p.add_argument("--house", type=int, action="append", help="gateway: a house whose devices it writes (repeat)")  # fmt: skip
    p.set_defaults(func=commands.cmd_create_api_key)
    p = sub.add_parser("seed-demo", help="fill an empty database with demo data and demo logins")
    p.add_argument("--houses", type=int, default=20)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=commands.cmd_seed_demo)
    from dashboard.csv_layout import HELP_EPILOG, add_readings_flags

    p = sub.add_parser(
        "import-csv",
        help="import readings (the native layout device_id,timestamp,power_w[,energy_wh,...], or a meter's "
        "export with --value-column/--unit/--interval) or, with --kind weather, one location's weather "
        "(timestamp,temperature_c[,irradiance_wm2,cloud_cover])",
        description="Readings: the native layout, or a meter's export described by the flags (see below).\n"
        "Weather (--kind weather --latitude LAT --longitude LON): hourly observations at that point, columns\n"
        "timestamp,temperature_c[,irradiance_wm2,cloud_cover] (timestamps ISO 8601 with an offset, the start\n"
        "of the hour; C, W/m2 mean over the hour, percent). The whole file is validated first: any bad row\n"
        "imports nothing. Importing again is idempotent (weather: replaces the hours).",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file")
    p.add_argument("--kind", choices=["readings", "weather"], default="readings")
    p.add_argument("--latitude", type=float, help="weather: the observations' latitude (degrees)")
    p.add_argument("--longitude", type=float, help="weather: the observations' longitude (degrees)")
    add_readings_flags(p)
    p.set_defaults(func=commands.cmd_import_csv)
    p = sub.add_parser(
        "fetch-weather",
        help="fetch missing weather hours and the next 48 h forecast from WEATHER_PROVIDER for every place",
    )
    p.add_argument("--days", type=int, help="history to complete (default WEATHER_HISTORY_DAYS)")
    p.set_defaults(func=commands.cmd_fetch_weather)
    p = sub.add_parser("simulate", help="send live demo readings (in-process, or to --url over HTTP)")
    p.add_argument("--url", help="post to this server's API instead of writing directly")
    p.add_argument("--token", help="access token for --url (a consumer's or an admin's)")
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--iterations", type=int, help="stop after this many ticks")
    p.set_defaults(func=commands.cmd_simulate)
    p = sub.add_parser("backtest", help="rolling-origin backtest of the forecasters on stored data")
    p.add_argument("--target", choices=["consumption", "production"], default="consumption")
    p.add_argument("--product", choices=["next-24-hours", "short-term"], default="next-24-hours")
    p.add_argument("--horizon", type=int, help="short-term steps (1-20)")
    p.add_argument("--origins", type=int, default=28)
    p.add_argument("--house-id", type=int)
    p.add_argument("--community-id", type=int)
    p.add_argument("--as-of", help="ISO 8601: the backtest ends here")
    p.add_argument("--models", default="xgboost:direct,xgboost:recursive,sarima:direct")
    p.set_defaults(func=commands.cmd_backtest)
    p = sub.add_parser(
        "erase",
        help="erase a user for good (GDPR): their sole houses, devices, readings, rollups, models, cached "
        "forecasts; access-log rows keep a pseudonym",
    )
    p.add_argument("--user", required=True, help="the username")
    p.add_argument("--yes", action="store_true", help="really erase (without it: only say what would go)")
    p.set_defaults(func=commands.cmd_erase)
    p = sub.add_parser(
        "rotate-keys",
        help="re-encrypt the personal data at rest (house names and addresses, users' names and e-mails) "
        "under a new DATA_ENCRYPTION_KEY, in one transaction",
    )
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--new-key-file", help="a file holding the new key (32 random bytes, base64)")
    key.add_argument("--new-key", help="the new key (32 random bytes, base64); prefer --new-key-file")
    p.set_defaults(func=commands.cmd_rotate_keys)
    sub.add_parser(
        "rebuild-fleet", help="recompute the pre-summed fleet rollups from the houses' and parks'"
    ).set_defaults(func=commands.cmd_rebuild_fleet)
    sub.add_parser("prune-logs", help="delete access-log rows past the retention").set_defaults(
        func=commands.cmd_prune_logs
    )
    key_help = (
        "32 random bytes, base64, in a file (openssl rand -base64 32); default: derived from SECRET_KEY"
    )
    p = sub.add_parser(
        "backup", help="write an AES-256-GCM encrypted archive of the database and object store"
    )
    p.add_argument("--out", required=True, help="the archive to write (0600; replaced atomically)")
    p.add_argument("--key-file", help=key_help)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=commands.cmd_backup)
    p = sub.add_parser(
        "restore",
        help="restore an encrypted archive into the (migrated) database and the object store",
        description="The whole archive is authenticated before anything is written; the database is loaded in "
        "one transaction. A database or object store with content is refused unless --yes.",
    )
    p.add_argument("--in", dest="in_file", required=True, help="the archive to read")
    p.add_argument("--key-file", help=key_help)
    p.add_argument("--yes", action="store_true", help="replace every row and object of a non-empty target")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=commands.cmd_restore)
    p = sub.add_parser("grafana-role", help="create or update the read-only PostgreSQL login of the optional "
                       "Grafana: SELECT on the aggregate views of schema grafana, nothing else")  # fmt: skip
    p.add_argument("--name", default="aggregator_grafana", help="the role (default aggregator_grafana)")
    p.add_argument("--password-file", help="its password in a file (default: env GRAFANA_DB_PASSWORD)")
    p.set_defaults(func=commands.cmd_grafana_role)
    p = sub.add_parser("mqtt-bridge", help="store readings published over MQTT (MQTT_URL) until SIGTERM")
    p.add_argument("--check", action="store_true", help="exit 0 when the running bridge's heartbeat is fresh")
    p.add_argument("--workers", type=int, default=2, help="writer processes (default 2; 0: a thread)")
    p.set_defaults(func=commands.cmd_mqtt_bridge)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as exc:  # a wrong or unsafe setting: say which and how to fix it, no traceback
        print(f"Configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_password_hashing(settings)  # users created here hash at the settings' cost, as in the app
    try:
        args.func(settings, args)
    except DomainError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        for detail in exc.details[:20]:
            print(f"  {detail}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
