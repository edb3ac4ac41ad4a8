"""What each `python -m dashboard` command does (dashboard/__main__.py holds the parser and dispatch).

Each command imports the services it runs inside its function, so `--help` and the light commands start
without loading pandas, pvlib or the forecasting stack."""

from __future__ import annotations

import getpass
import logging
import sys
import threading
from pathlib import Path

from dashboard.db import make_engine, make_session_factory, migrate, session_scope


def _factory(settings):
    engine = make_engine(settings)
    migrate(engine)
    return make_session_factory(engine)


def cmd_init_db(settings, _args) -> None:
    _factory(settings)
    print(f"Database ready: {settings.database_url.split('@')[-1]}")


def cmd_create_user(settings, args) -> None:
    from dashboard.auth import create_user

    password = args.password or getpass.getpass("Password: ")
    with session_scope(_factory(settings)) as session:
        user = create_user(session, args.username, password, args.role, args.house or [])
        print(f"Created {user.role} {user.username!r} (id {user.id})")


def cmd_create_api_key(settings, args) -> None:
    from dashboard.auth import create_api_key

    with session_scope(_factory(settings)) as session:
        row, key = create_api_key(session, args.name, args.role, args.house or [])
    houses = f" for houses {', '.join(map(str, sorted(set(args.house))))}" if args.house else ""
    print(f"{row.role} API key {row.id} {row.name!r}{houses} (shown once, send as X-API-Key):\n{key}")


def cmd_seed_demo(settings, args) -> None:
    from dashboard.seed import database_is_empty, seed_demo

    factory = _factory(settings)
    with factory() as session:
        if not database_is_empty(session) and not args.force:
            sys.exit("The database already has houses; seed-demo only fills an empty database.")
    logins = seed_demo(factory, settings.timezone, houses=args.houses, days=args.days)
    print(logins.text())


def cmd_import_csv(settings, args) -> None:
    from dashboard.csv_import import import_csv, import_weather_csv
    from dashboard.csv_layout import Layout, given_flags
    from dashboard.scope import system_scope

    given = given_flags(args)
    if args.kind == "weather":
        if given or args.dry_run:
            sys.exit("--device, --*-column, --unit, --interval, --timezone, --timestamp-marks and --dry-run "
                     "are for readings; --kind weather reads timestamp,temperature_c[,...] as they are")  # fmt: skip
        if args.latitude is None or args.longitude is None:
            sys.exit(
                "import-csv --kind weather needs --latitude and --longitude (the observations' location)"
            )
        name, inserted, updated = import_weather_csv(_factory(settings), Path(args.file), args.latitude,
                                                     args.longitude)  # fmt: skip
        print(f"Imported weather at {name}: {inserted} new hours, {updated} replaced")
        return
    if args.latitude is not None or args.longitude is not None:
        sys.exit("--latitude and --longitude belong to --kind weather")
    report = import_csv(
        _factory(settings),
        system_scope(),
        Path(args.file),
        settings.timezone,
        settings.derive_energy_max_gap_s,
        progress=not args.quiet,
        max_power_w=settings.max_power_w,
        retention_days=settings.raw_retention_days,
        layout=Layout(**given),
        dry_run=args.dry_run,
    )
    print(report.text())
    if report.problems:
        sys.exit(2)


def cmd_fetch_weather(settings, args) -> None:
    from datetime import timedelta

    from dashboard.places import default_place
    from dashboard.weather import provider_from_settings
    from dashboard.weather.fetch import refresh_weather

    provider = provider_from_settings(settings)
    if provider.name == "none":
        sys.exit("WEATHER_PROVIDER is none (offline): set WEATHER_PROVIDER=open-meteo to fetch weather")
    days = args.days if args.days is not None else settings.weather_history_days
    counts = refresh_weather(_factory(settings), provider, default_place(settings), timedelta(days=days))
    print(f"Weather from {counts['provider']}: {counts['places']} places, {counts['fetches']} fetches, "
          f"{counts['inserted']} hours stored, {counts['updated']} replaced, {counts['failed']} places failed")  # fmt: skip
    if counts["failed"]:
        sys.exit(1)


def cmd_simulate(settings, args) -> None:
    from dashboard import simulator

    factory = _factory(settings)
    plan = simulator.demo_plan_for(factory, settings.timezone)
    if plan is None:
        sys.exit("No demo devices in the database: run seed-demo first.")
    if args.url:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        send = simulator.http_sender(args.url, headers)
    else:
        send = simulator.in_process_sender(factory, settings.timezone, settings.derive_energy_max_gap_s)
    print(f"Simulating {len(plan.devices)} devices every {args.interval}s (Ctrl-C to stop)")
    try:
        simulator.run_loop(send, plan, args.interval, threading.Event(), args.iterations)
    except KeyboardInterrupt:
        pass


def cmd_prune_logs(settings, _args) -> None:
    from dashboard.maintenance import prune_logs

    with session_scope(_factory(settings)) as session:
        n = prune_logs(session, settings.access_log_retention_days, settings.raw_retention_days)
    print(f"Pruned {n['access_log']} access-log rows, {n['model_runs']} model run-log rows, "
          f"{n['revoked_tokens']} expired revoked tokens, {n['sessions']} ended sessions and "
          f"{n['raw_readings']} raw readings")  # fmt: skip


def cmd_erase(settings, args) -> None:
    """GDPR erasure of one user (dashboard/privacy.py): without --yes, only says what would go."""
    from sqlalchemy import func, select

    from dashboard.context import build_services
    from dashboard.privacy import erase_user, purge_models, sole_houses
    from dashboard.schema import Device, Measurement, User

    factory = _factory(settings)
    with factory() as session:
        user = session.scalar(select(User).where(User.username == args.user))
        if user is None:
            sys.exit(f"No user named {args.user!r} (list them with GET /api/v1/users)")
        user_id, houses = user.id, sole_houses(session, user.id)
        readings = session.scalar(select(func.count()).select_from(Measurement).where(
            Measurement.device_id.in_(select(Device.id).where(Device.house_id.in_(houses))))) or 0  # fmt: skip
    if not args.yes:
        print(f"Would erase user {args.user!r} (id {user_id}), houses {houses or 'none'} and their {readings:,} "
              "readings, devices, rollups, models and cached forecasts. Nothing changed: add --yes to erase.")  # fmt: skip
        sys.exit(1)
    services = build_services(settings)
    with services.session_factory() as session:
        erasure = erase_user(session, user_id, settings.secret_key)
        session.commit()
    erasure.failed_objects = purge_models(services.object_store, services.cache, erasure.model_keys)
    print(f"Erased user {args.user!r} (now {erasure.pseudonym} in the access log): {len(erasure.house_ids)} houses, "
          f"{erasure.devices} devices, {erasure.readings:,} readings, {len(erasure.model_keys)} models")  # fmt: skip
    if erasure.failed_objects:
        sys.exit(
            f"Could not delete these model objects (delete them by hand): {', '.join(erasure.failed_objects)}"
        )


def cmd_rotate_keys(settings, args) -> None:
    """Re-encrypt every personal-data column under a new data key, in one transaction."""
    import base64

    from dashboard.config import GENERATE_KEY, parse_key_b64
    from dashboard.fieldcrypt import FieldDecryptionFailed, keyring_for, rotate

    if args.new_key_file:
        try:
            new_b64 = Path(args.new_key_file).read_text().strip()
        except OSError as exc:
            sys.exit(f"Cannot read --new-key-file: {exc}")
    else:
        new_b64 = args.new_key.strip()
    try:
        new_key = parse_key_b64("the new key", new_b64)
    except ValueError as exc:
        sys.exit(str(exc))
    reader = keyring_for(settings)
    engine = make_engine(settings)
    try:
        migrate(engine)  # also checks that the current keys read everything stored
        with engine.begin() as conn:
            rotation = rotate(conn, reader, new_key)
    except FieldDecryptionFailed as exc:
        sys.exit(f"Nothing changed: {exc}")
    finally:
        engine.dispose()
    for column, n in rotation.counts.items():
        print(f"{column}: {n} values re-encrypted")
    print(
        f"Every encrypted column is now under key id {rotation.new_key_id}. Set, in every process's environment,"
    )
    print(f"  DATA_ENCRYPTION_KEY={new_b64}")
    print(
        "and restart them: a process still on the old key cannot read these values. (Without downtime: restart "
        "every process first with the new key in DATA_ENCRYPTION_KEY_OLD, then with it as DATA_ENCRYPTION_KEY "
        "and the old one, below, in DATA_ENCRYPTION_KEY_OLD; then run rotate-keys and drop the old key.)"
    )
    print(f"  old key: {base64.b64encode(reader.current).decode()}")
    print(f"Make a new key with: {GENERATE_KEY}")


def cmd_rebuild_fleet(settings, _args) -> None:
    from dashboard.rollups import rebuild_fleet

    with session_scope(_factory(settings)) as session:
        rows = rebuild_fleet(session)
    print(f"Fleet rollups rebuilt from every house and PV park: {rows:,} rows")


def cmd_backtest(settings, args) -> None:
    """Rolling-origin backtest on the stored rollups: per-lead MAE and MAPE beside the baselines."""
    import warnings
    from dataclasses import replace

    from dashboard import forecasting
    from dashboard.scope import system_scope
    from models.backtest import backtest

    warnings.simplefilter("ignore")
    params = {k: v for k, v in {"horizon": args.horizon, "house_id": args.house_id, "community_id": args.community_id,
                                "as_of": args.as_of}.items() if v is not None}  # fmt: skip
    from dashboard.places import Place, default_place

    task = forecasting.resolve_task(
        system_scope(), args.target, args.product, params, default_place(settings)
    )
    days = forecasting.TRAIN_DAYS[args.product] + args.origins + 1
    with _factory(settings)() as session:
        task = forecasting.with_place(session, task)
        end = task.origin()
        y = forecasting.load_series(session, system_scope(), task, end, days)
        start = end - __import__("pandas").Timedelta(days=days)
        weather = forecasting.load_weather(session, Place.of_config(task.cfg), start, end)
    if y.empty:
        sys.exit("No data for this scope: seed-demo or import-csv first.")
    print(f"{args.target} {args.product} (horizon {task.cfg.horizon}), {args.origins} days of back-to-back origins, "
          f"data {y.index[0]:%Y-%m-%d} to {y.index[-1]:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    for combo in args.models.split(","):
        model, strategy = combo.split(":")
        cfg = replace(task.cfg, model=model, strategy=strategy)  # the scope's place, as training has it
        table = backtest(y, cfg, args.origins, exog=weather)
        overall = table.attrs["overall"]
        print(f"\n{model} {strategy}: MAPE {overall['model']:.3f} | persistence {overall['persistence']:.3f} | "
              f"weekly naive {overall['weekly_naive']:.3f} | better than weekly naive "
              f"{1 - overall['model'] / overall['weekly_naive']:.0%} | better than persistence "
              f"{1 - overall['model'] / overall['persistence']:.0%}")  # fmt: skip
        print("lead  MAE model  MAPE model  MAPE persistence  MAPE weekly naive")
        for lead, row in table.iterrows():
            print(f"{lead:>4}  {row['mae_model']:9.3f}  {row['mape_model']:10.3f}  {row['mape_persistence']:16.3f}  "
                  f"{row['mape_weekly_naive']:17.3f}")  # fmt: skip


def cmd_grafana_role(settings, args) -> None:
    from dashboard.grafana import run_grafana_role

    print(run_grafana_role(settings, args.name, args.password_file))


def _backup_key(settings, args) -> tuple[bytes, int]:
    from dashboard import sealed
    from dashboard.crypto import backup_key

    if args.key_file:
        return sealed.read_key_file(Path(args.key_file)), sealed.KEY_FROM_FILE
    return backup_key(settings.secret_key), sealed.KEY_FROM_SECRET


def cmd_backup(settings, args) -> None:
    from dashboard import backup
    from dashboard.storage import StoreUnavailable

    try:
        key, source = _backup_key(settings, args)
        stats = backup.backup(settings, Path(args.out), key, source, progress=not args.quiet)
    except (backup.BackupError, StoreUnavailable, OSError) as exc:
        sys.exit(f"Error: {exc}")
    print(f"Backup written to {args.out}: {stats['rows']:,} rows, {stats['objects']} objects, "
          f"{stats['size']:,} bytes (AES-256-GCM)")  # fmt: skip


def cmd_restore(settings, args) -> None:
    from dashboard import backup
    from dashboard.storage import StoreUnavailable

    try:
        key, _source = _backup_key(settings, args)
        stats = backup.restore(settings, Path(args.in_file), key, replace=args.yes, progress=not args.quiet)
    except (backup.BackupError, StoreUnavailable, OSError) as exc:
        sys.exit(f"Error: {exc}")
    print(f"Restored {stats['rows']:,} rows and {stats['objects']} objects from {args.in_file}")


def cmd_mqtt_bridge(settings, args) -> None:
    from dashboard.mqtt_bridge import check_heartbeat, run_bridge

    if args.check:
        healthy, why = check_heartbeat(settings)
        print(why, file=sys.stdout if healthy else sys.stderr)
        sys.exit(0 if healthy else 1)
    if not settings.mqtt_url:
        sys.exit(
            "Set MQTT_URL (e.g. mqtt://user:password@127.0.0.1:1883, or mqtts:// for TLS) to run the bridge"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(run_bridge(settings, _factory(settings), args.workers))
