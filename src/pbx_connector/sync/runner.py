"""Running a profile: lock, plan, safety, apply, and the run record — in that order.

A run that fails or is aborted changes no record; every run, dry or not, is recorded.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from pbx_connector import interrupts
from pbx_connector.authentication import settings_from_profile
from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS
from pbx_connector.errors import ConfigError, PbxConnectorError, RunLocked, SourceNotModified
from pbx_connector.mapping import RowMapper
from pbx_connector.sources.base import KeepsState, Source, describe_fields, state_keeper
from pbx_connector.sources.ldap import DIRECTORY_KINDS
from pbx_connector.sources.registry import open_source
from pbx_connector.store import auth_store, runs, source_state
from pbx_connector.store.db import import_cache
from pbx_connector.store.profiles import Profile, get_profile
from pbx_connector.store.secrets import hash_key
from pbx_connector.store.settings import get_settings
from pbx_connector.sync.apply import apply_plan
from pbx_connector.sync.plan import Plan, PlanInput, build_plan, parse_key, remove_stale_spools

#: Bump when the meaning of stored content hashes changes, to force one full rewrite.
HASH_VERSION = "1"


@dataclass
class Progress:
    """Callbacks for long runs; the CLI draws a bar with them, other callers need none."""

    reading: Callable[[int], None] | None = None
    writing: Callable[[int, int], None] | None = None


def configures_authentication(profile: Profile) -> bool:
    return (
        profile.target == "users"
        and profile.source in DIRECTORY_KINDS
        and profile.settings.get("configure_authentication", "no") == "yes"
    )


def compile_mapper(profile: Profile) -> RowMapper:
    managed = {k: v for k, v in profile.variables.items() if v.strip()}
    if configures_authentication(profile) and "auth" not in managed:
        # Users imported to be checked against their directory get method ldap.
        managed["auth"] = "ldap"
    return RowMapper.compile(managed, profile.prefilter)


def check_profile(profile: Profile, mapper: RowMapper, source: Source) -> None:
    """Everything that can be known wrong before reading a row."""
    spec = TARGETS[profile.target]
    for f in spec.fields:
        if f.required and f.name not in mapper.variables:
            raise ConfigError(
                f"the {spec.label} field {f.name!r} is required but its variable is empty",
                field=f.name,
            )
    fields = source.fields()
    missing = [] if source.open_ended else mapper.missing_fields(fields)
    if missing:
        name, column = missing[0]
        others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(
            f"{name} uses the column {column!r}, which {source.name} does not have{others}; "
            f"its columns are: {describe_fields(fields)}",
            field=name,
        )
    for k in parse_key(profile.settings.get("key", ""), spec):
        if k not in mapper.variables and k not in fields:
            raise ConfigError(
                f"the key field {k!r} is neither a variable with a value nor a column of "
                f"{source.name}",
                field="key",
            )


def normaliser_for(profile: Profile, instance: Mapping[str, str]) -> PhoneNormaliser:
    """The phone-number rules of a profile: its own region and prefix, else the
    instance's."""
    region = profile.settings.get("region") or instance["default_region"]
    prefix = profile.settings.get("outside_line_prefix") or instance["outside_line_prefix"]
    try:
        return PhoneNormaliser(region, prefix)
    except ValueError as exc:
        raise ConfigError(str(exc), field="region") from None


def run_profile(
    engine: Engine,
    name: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    trigger: str = "cli",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run a profile now and return its run report (also stored): `request_run` and
    `execute_run` in one go. A run refused because another holds the lock is recorded
    as failed, and its report returned."""
    run_id = begin_run(engine, name, dry_run=dry_run, force=force, trigger=trigger)
    return execute_run(engine, run_id, progress, started=True)


def begin_run(engine: Engine, name: str, *, dry_run: bool, force: bool, trigger: str) -> int:
    """Record a run of a profile as running, with its lock, in one transaction (see
    `store.runs.begin_run`). A run refused because another holds the lock is recorded as
    failed: its id is returned all the same, and `execute_run(..., started=True)` then
    only returns its report."""
    with engine.connect() as conn:
        profile = get_profile(conn, name)
    assert profile.id is not None
    try:
        return runs.begin_run(
            engine, profile.id, profile.name, dry_run=dry_run, trigger=trigger, force=force
        )
    except RunLocked as exc:
        if exc.run_id is None:
            raise
        return exc.run_id


def request_run(
    engine: Engine,
    name: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    trigger: str = "cli",
    refuse_running: bool = False,
) -> int:
    """Record a run of a profile as `queued` and return its id; `execute_run` runs it
    (now, or in a worker). With `refuse_running`, a profile that a live run holds is
    refused at once with RunLocked naming that run, and nothing is recorded."""
    with engine.begin() as conn:
        profile = get_profile(conn, name)
        assert profile.id is not None
        if refuse_running and (held := runs.live_lock(conn, profile.id)) is not None:
            raise RunLocked(
                f"profile {name!r} is already running (run {held.run_id})",
                running_run_id=held.run_id,
            )
        return runs.queue_run(
            conn, profile.id, profile.name, dry_run=dry_run, force=force, trigger=trigger
        )


def execute_run(
    engine: Engine, run_id: int, progress: Progress | None = None, *, started: bool = False
) -> dict[str, Any]:
    """Carry out a queued run and return its report (also stored).

    The run's outcome is written in the transaction that writes its changes, so that a
    kill at any moment leaves either no change and a run without outcome (shown as
    `interrupted`), or the changes and their outcome. Nothing here lives only in this
    process: any process that can reach the store may execute a queued run."""
    progress = progress or Progress()
    with engine.connect() as conn:
        queued = runs.get_run(conn, run_id)
    dry_run, force = queued["dry_run"], queued["force"]
    with engine.begin() as conn:
        profile = get_profile(conn, queued["profile"])
        instance = get_settings(conn)
    assert profile.id is not None
    remove_stale_spools()
    if started and queued["status"] != runs.RUNNING:
        return _stored(engine, run_id)  # begun as refused (another run held the lock)
    if not started:
        try:
            runs.start_run(engine, run_id)
        except RunLocked:
            return _stored(engine, run_id)
    report: dict[str, Any] = {
        "status": "failed",
        "message": "",
        "counts": {},
        "errors": [],
        "warnings": [],
        "changes": [],
    }
    plan: Plan | None = None
    try:
        with runs.LeaseKeeper(engine, profile.id, run_id) as keeper:
            tracked = _tracked(progress, keeper)
            plan, kept = _plan_with_state(engine, profile, instance, dry_run, force, tracked)
            report.update(_plan_report(plan))
            if plan.abort_reason and not force:
                report["status"] = "aborted"
                report["message"] = f"aborted, nothing changed: {plan.abort_reason}"
            elif dry_run:
                report["status"] = "ok"
                report["message"] = "dry run: nothing changed"
            else:
                report["status"] = "ok"
                report["message"] = "applied" + (" (forced)" if plan.abort_reason else "")
                if configures_authentication(profile):
                    report["message"] += "; authentication settings taken from this profile"
                _apply(engine, profile, plan, run_id, report, tracked, kept)
                return _stored(engine, run_id)
    except SourceNotModified:
        # Nothing to read, so nothing to write or delete; the kept state stays.
        report.update(status="ok", counts={}, errors=[], warnings=[], changes=[])
        report["message"] = (
            "dry run: source not modified, nothing changed" if dry_run else "source not modified"
        )
    except PbxConnectorError as exc:
        # Line and field go into their own keys; the message keeps only the source.
        message = f"{exc.source}: {exc.message}" if exc.source else exc.message
        _failed(report, message, exc.line, exc.field)
    except SQLAlchemyError as exc:
        # The transaction rolled back; say what the database said, not a traceback.
        _failed(report, f"database error: {getattr(exc, 'orig', None) or exc}", None, None)
    except BaseException:
        # Ctrl-C, a signal turned into SystemExit: the changes were not committed (or
        # were, with their outcome); say so for this run and let the caller stop.
        runs.abandon(engine, run_id, "interrupted, nothing changed: the run was stopped")
        raise
    finally:
        if plan is not None:
            plan.close()
    with engine.begin() as conn:
        runs.end_run(conn, profile.id, run_id, _normalised(report), require_lock=False)
    return _stored(engine, run_id)


def _tracked(progress: Progress, keeper: runs.LeaseKeeper) -> Progress:
    """The caller's progress callbacks, plus the run's progress in the store."""

    def reading(n: int) -> None:
        interrupts.check()
        keeper.report("reading", n, None)
        if progress.reading is not None:
            progress.reading(n)

    def writing(done: int, total: int) -> None:
        interrupts.check()
        keeper.report("writing", done, total)
        if progress.writing is not None:
            progress.writing(done, total)

    return Progress(reading, writing)


@dataclass
class _KeptState:
    """A source's state between runs (see `sources.base.KeepsState`), stored with a key
    of the profile it was kept for."""

    keeper: KeepsState
    key: str


def _state_key(profile: Profile, fingerprint: str) -> str:
    """What a kept source state is valid for: the profile as it is now (source, settings,
    secrets, variables, pre-filter, mode, phone rules). After any change, e.g. another
    URL or password, or another variable, the next run reads the source fully. Keyed
    with the instance's hash key, so that the secrets cannot be guessed from it."""
    data = json.dumps(
        [
            profile.source,
            profile.target,
            profile.mode,
            profile.settings,
            profile.secrets,
            profile.variables,
            profile.prefilter,
            fingerprint,
        ],
        sort_keys=True,
    )
    return hmac.new(hash_key(), data.encode(), "sha256").hexdigest()


def _kept_state(
    engine: Engine, profile: Profile, source: Source, fingerprint: str, force: bool
) -> _KeptState | None:
    """The source's state kept by an earlier run, handed to the source (unless the run
    is forced: then the source is read fully)."""
    assert profile.id is not None
    keeper = state_keeper(source)
    if keeper is None:
        return None
    kept = _KeptState(keeper, _state_key(profile, fingerprint))
    if not force:
        with engine.connect() as conn:
            stored = source_state.get_state(conn, profile.id, keeper.state_name)
        if stored is not None and stored.get("key") == kept.key:
            keeper.previous_state = stored.get("state")
    return kept


def _keep_state(conn: Connection, profile_id: int, kept: _KeptState | None) -> None:
    if kept is None:
        return
    state = kept.keeper.new_state()
    if state is None:
        source_state.clear_state(conn, profile_id, kept.keeper.state_name)
    else:
        source_state.set_state(
            conn, profile_id, kept.keeper.state_name, {"key": kept.key, "state": state}
        )


def _plan(
    engine: Engine,
    profile: Profile,
    instance: dict[str, str],
    dry_run: bool,
    progress: Progress,
) -> Plan:
    return _plan_with_state(engine, profile, instance, dry_run, True, progress)[0]


def _plan_with_state(
    engine: Engine,
    profile: Profile,
    instance: dict[str, str],
    dry_run: bool,
    force: bool,
    progress: Progress,
) -> tuple[Plan, _KeptState | None]:
    """The plan of a run, and the source's state to keep when it is applied. A source
    that has not changed since the state was kept raises SourceNotModified."""
    assert profile.id is not None
    if profile.secrets_unreadable:
        raise ConfigError(
            "the profile's stored secrets cannot be decrypted with this instance key "
            "(was secret.key lost or replaced?); set them again"
        )
    mapper = compile_mapper(profile)
    source = open_source(
        profile.source,
        profile.settings,
        profile.secrets,
        sorted(mapper.fields_used()),
        owner=profile.id,
    )
    normaliser = normaliser_for(profile, instance)
    fingerprint = _fingerprint(profile, normaliser)
    kept = _kept_state(engine, profile, source, fingerprint, force)
    check_profile(profile, mapper, source)
    plan_input = PlanInput(
        profile_id=profile.id,
        target=profile.target,
        mode=profile.mode,
        settings=profile.settings,
        mapper=mapper,
        normaliser=normaliser,
        hash_key=hash_key(),
        fingerprint=fingerprint,
        source_fingerprint=_source_fingerprint(profile, mapper, fingerprint),
        # A forced run maps every row, whether its source row changed or not.
        match_digests=not force,
        # A dry run writes nothing: its spool needs no secrets; a real one spools them
        # hashed, so that a spool left behind by a kill holds no password.
        secrets="drop" if dry_run else "hash",
    )
    with engine.connect() as conn:
        return build_plan(conn, source, plan_input, progress.reading), kept


def _fingerprint(profile: Profile, normaliser: PhoneNormaliser) -> str:
    """Everything besides the row that shapes a record: a change re-derives them all."""
    parts = [HASH_VERSION, normaliser.region, normaliser.outside_line_prefix]
    if digits := profile.settings.get("extension_digits", "").strip():
        parts.append(f"ext{digits}")  # only when set: profiles without it keep their hashes
    return "|".join(parts)


#: Profile settings that decide when a profile runs and how much it may delete, never
#: what a row becomes: changing them keeps the stored source row digests.
_NOT_MAPPING = frozenset({"schedule", "schedule_timezone", "max_delete"})


def _source_fingerprint(profile: Profile, mapper: RowMapper, fingerprint: str) -> str:
    """Everything besides a source row that decides what the row becomes (see
    `sync.plan.SourceDigests`): the profile's template, source, target, mode and
    settings (all but `_NOT_MAPPING`), its variables and pre-filter as compiled (with an
    `auth` the profile adds), the phone rules and the content hash's fingerprint. (The
    plan keeps no digests at all when an expression may give another result for the
    same row, `RowMapper.pure`.)"""
    settings = {k: v for k, v in profile.settings.items() if k not in _NOT_MAPPING}
    return json.dumps(
        [
            profile.template,
            profile.source,
            profile.target,
            profile.mode,
            settings,
            {name: e.text for name, e in mapper.variables.items()},
            mapper.prefilter.text if mapper.prefilter is not None else "",
            fingerprint,
        ],
        sort_keys=True,
    )


def _apply(
    engine: Engine,
    profile: Profile,
    plan: Plan,
    run_id: int,
    report: dict[str, Any],
    progress: Progress,
    kept: _KeptState | None = None,
) -> None:
    """Write the plan, the run's outcome, the source's state and the lock's release in
    one transaction."""
    assert profile.id is not None
    total = plan.counts["created"] + plan.counts["updated"]
    writing = progress.writing

    def tick(done: int) -> None:
        if writing is not None:
            writing(done, total)

    with engine.begin() as conn, import_cache(conn):
        runs.end_run(conn, profile.id, run_id, _normalised(report))
        apply_plan(conn, plan, profile.id, tick)
        _keep_state(conn, profile.id, kept)
        if configures_authentication(profile):
            auth_store.save(
                conn, settings_from_profile(profile.source, profile.settings, profile.secrets)
            )


def _failed(report: dict[str, Any], message: str, line: int | None, field: str | None) -> None:
    report["status"] = "failed"
    report["message"] = f"failed, nothing changed: {message}"
    report["counts"] = {}
    report["changes"] = []
    report["errors"] = [{"line": line, "field": field, "message": message}]


def _plan_report(plan: Plan) -> dict[str, Any]:
    return {
        "counts": dict(plan.counts),
        "errors": plan.errors,
        "warnings": plan.warnings,
        "changes": [c.as_dict() for c in plan.changes],
    }


def _normalised(report: dict[str, Any]) -> dict[str, Any]:
    counts = {
        k: report["counts"].get(k, 0)
        for k in ("created", "updated", "deleted", "unchanged", "invalid", "conflicts", "skipped")
    }
    return {**report, "counts": counts}


def _stored(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return runs.get_run(conn, run_id)
