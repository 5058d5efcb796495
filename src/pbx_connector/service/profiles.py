"""Profiles: create, change, inspect, export and import them; preview and evaluate them
over their source.

The rules of what a valid profile is live in `pbx_connector.profiles`; this module owns
the transactions around them. Checking a setting may read the source (a CSV file's
header, to know whether the key names one of its columns), and reading a source never
happens inside a write transaction: a change is prepared on a copy read before, and
written only if the stored profile did not change in between (else it is prepared again).
"""

from __future__ import annotations

import builtins
import copy
import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from pbx_connector import profiles as rules
from pbx_connector.errors import ConflictError, PbxConnectorError, UsageError
from pbx_connector.models.base import Page
from pbx_connector.models.profiles import (
    CreatedProfile,
    EvaluateResult,
    PreviewResult,
    ProfileView,
)
from pbx_connector.service import preview as looking
from pbx_connector.service.schedules import schedule_view
from pbx_connector.sources import upload
from pbx_connector.store.profiles import (
    Profile,
    delete_profile,
    get_profile,
    insert_profile,
    list_profiles,
    profile_exists,
    save_profile,
)
from pbx_connector.store.settings import get_settings
from pbx_connector.store.tables import profiles as profiles_table
from pbx_connector.store.timestamps import aware

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: An export is a few KiB; a face reading one from a file stops after this many bytes.
MAX_EXPORT_SIZE = rules.MAX_EXPORT_SIZE
#: The name `check` gives the pre-filter among the fields it reports on.
PREFILTER = looking.PREFILTER
#: How often a change is prepared again when another writer changed the profile meanwhile.
_ATTEMPTS = 3


def profile_view(
    profile: Profile, conn: Connection, instance: Mapping[str, str] | None = None
) -> ProfileView:
    """What may be shown of a profile: everything but secret values, and its schedule
    (the next runs, whether its scheduled runs keep failing). `instance` is the
    instance's settings when the caller read them already (a list reads them once)."""
    assert profile.id is not None, "only a stored profile has a view"
    settings = get_settings(conn) if instance is None else instance
    schedule = schedule_view(conn, profile, settings)
    return ProfileView(
        id=profile.id,
        name=profile.name,
        template=profile.template,
        target=profile.target,
        source=profile.source,
        mode=profile.mode,
        settings=dict(profile.settings),
        secrets_set=sorted(profile.secrets),
        secrets_unreadable=profile.secrets_unreadable,
        prefilter=profile.prefilter,
        variables=dict(profile.variables),
        created_at=aware(profile.created_at),
        updated_at=aware(profile.updated_at),
        schedule=schedule,
    )


def _state(profile: Profile) -> tuple[Any, ...]:
    """Everything a change may depend on, copied: equal states mean nobody wrote between."""
    return (
        profile.id,
        profile.mode,
        dict(profile.settings),
        dict(profile.variables),
        profile.prefilter,
        dict(profile.secrets),
        profile.secrets_unreadable,
        profile.updated_at,
    )


def _lock(conn: Connection, name: str) -> None:
    """Hold the profile's row until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway), so that the check before a write stays true until it."""
    conn.execute(select(profiles_table.c.id).where(profiles_table.c.name == name).with_for_update())


#: How a list of profiles may be ordered.
PROFILE_ORDERS = ("name", "-name", "template")


class ProfilesService:
    """Every use case of profiles. Names are profile names; a missing one is a
    `NotFoundError`, a taken one a `ConflictError`, an invalid value a `UsageError` or
    `ConfigError` naming its field."""

    def __init__(self, app: App) -> None:
        self.app = app

    # --- reading ---------------------------------------------------------------------

    def list(self) -> builtins.list[ProfileView]:
        """Every profile, by name."""
        with self.app.reading() as conn:
            instance = get_settings(conn)
            return [profile_view(p, conn, instance) for p in list_profiles(conn)]

    def page(
        self,
        *,
        search: str | None = None,
        order: str = "name",
        limit: int = 50,
        offset: int = 0,
    ) -> Page[ProfileView]:
        """One page of profiles whose name or template holds `search` (ignoring case),
        ordered by `name`, `-name` or `template` (then name)."""
        if order not in PROFILE_ORDERS:
            raise UsageError(f"order must be one of {', '.join(PROFILE_ORDERS)}", field="order")
        if limit < 0 or offset < 0:
            raise UsageError("limit and offset cannot be negative", field="limit")
        items = self.list()
        if search:
            needle = search.casefold()
            items = [
                p for p in items if needle in p.name.casefold() or needle in p.template.casefold()
            ]
        if order == "template":
            items.sort(key=lambda p: (p.template, p.name))
        else:
            items.sort(key=lambda p: p.name, reverse=order == "-name")
        return Page[ProfileView](items=items[offset : offset + limit], total=len(items))

    def get(self, name: str) -> ProfileView:
        with self.app.reading() as conn:
            return profile_view(get_profile(conn, name), conn)

    def export(self, name: str) -> str:
        """The profile as JSON to import elsewhere; secrets are left out, only named."""
        return rules.export_profile(self._load(name))

    def secret_setting_names(self, template: str) -> set[str]:
        """The settings of a template that are secrets: a face asks for them without
        echoing them (a hidden prompt, standard input, a password field)."""
        return rules.secret_setting_names(template)

    # --- writing ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        template: str,
        mode: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> CreatedProfile:
        """A profile from a template (mode `mirror` unless given). Default variables that
        name columns the CSV file lacks are emptied; the notes say which."""
        try:
            profile, notes = rules.new_profile(name, template, mode, settings or {})
        except UsageError as exc:
            if exc.field is None and not rules._NAME.fullmatch(name):
                # The name is the field a form shows this next to.
                raise UsageError(exc.message, field="name") from None
            raise
        return CreatedProfile(profile=self._insert(profile), notes=notes)

    def import_(self, text: str, name: str | None = None, origin: str = "import") -> ProfileView:
        """A profile from an export (`origin` names where the text came from, for
        messages). Secrets are not in an export: they must be set again."""
        return self._insert(rules.import_profile(text, name, origin))

    def import_with_notes(
        self, text: str, name: str | None = None, origin: str = "import"
    ) -> CreatedProfile:
        """`import_`, and the notes worth telling whoever imported it: which secrets the
        export named as left out, to be set again."""
        view = self.import_(text, name, origin)
        listed = json.loads(text).get("secrets_not_exported")
        secret_names = rules.secret_setting_names(view.template)
        missing = (
            sorted({n for n in listed if isinstance(n, str) and n in secret_names})
            if isinstance(listed, builtins.list)
            else []
        )
        notes = [f"the secret {n!r} is not in an export: set it again" for n in missing]
        return CreatedProfile(profile=view, notes=notes)

    def update(self, name: str, settings: Mapping[str, str]) -> ProfileView:
        """Change settings (`mode` among them); each is checked before any is kept."""
        return self._change(name, lambda p: rules.apply_settings(p, settings))

    def set_variables(self, name: str, assignments: Mapping[str, str]) -> ProfileView:
        """Set variables (target field -> expression); an empty one stops managing the
        field. Each expression is compiled now, so that a typo fails here, not mid-run."""
        return self._change(name, lambda p: rules.set_variables(p, assignments))

    def set_prefilter(self, name: str, text: str) -> ProfileView:
        """Set the pre-filter; empty lets every row through."""
        return self._change(name, lambda p: rules.set_prefilter(p, text))

    def check(
        self,
        name: str,
        *,
        settings: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        prefilter: str | None = None,
    ) -> dict[str, str]:
        """Everything wrong with these changes, by the field each is about (a setting,
        `mode`, a target field, `pre-filter`), without saving anything. Each value is
        checked on its own, so that a form can show every mistake at once; empty means
        `save` takes them. Reads the source when a check needs its fields."""
        profile = self._load(name)
        # What `save` takes is fine, even where one setting alone is not (switching from
        # a URL to a share empties `url` and sets `use_share` in one change).
        if _try({}, "settings", _all_of(settings, variables, prefilter), profile):
            return {}
        errors: dict[str, str] = {}
        for field, text in (variables or {}).items():
            _try(errors, field, partial(rules.set_variables, assignments={field: text}), profile)
        if prefilter is not None:
            _try(errors, PREFILTER, partial(rules.set_prefilter, text=prefilter), profile)
        base = copy.deepcopy(profile)
        good = {k: v for k, v in (variables or {}).items() if k not in errors}
        if _try(errors, "variables", partial(rules.set_variables, assignments=good), base, True):
            for key, value in (settings or {}).items():
                trial = copy.deepcopy(base)
                one = partial(rules.apply_settings, assignments={key: value})
                if _try(errors, key, one, trial, in_place=True):
                    base = trial
        if not errors:
            # Settings that are fine alone may not be together (a key naming an emptied
            # variable): the whole change, as `save` makes it.
            _try(errors, "settings", _all_of(settings, variables, prefilter), profile)
        return errors

    def save(
        self,
        name: str,
        *,
        settings: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        prefilter: str | None = None,
    ) -> ProfileView:
        """Change settings (`mode` among them), variables and the pre-filter together:
        all are kept, or none (the first error is raised; `check` names every one)."""
        return self._change(name, _all_of(settings, variables, prefilter))

    def delete(self, name: str, purge: bool = False) -> int:
        """Delete a profile; its records stay, as if made by hand, unless `purge`.
        Returns how many records were deleted."""
        with self.app.transaction() as conn:
            profile = get_profile(conn, name)
            deleted = delete_profile(conn, profile, purge=purge)
        # Its uploaded files go too: a later profile may be given the same id.
        if profile.id is not None:
            upload.remove_other_uploads(profile.id, None)
        self.app.schedules.changed()
        return deleted

    # --- looking at the source ---------------------------------------------------------

    def preview(self, name: str, limit: int = 10) -> PreviewResult:
        """The first `limit` rows as the source gives them, before pre-filter and
        variables, with the lines it could not read."""
        return looking.preview(self._load(name), limit)

    def evaluate(
        self,
        name: str,
        *,
        variables: Mapping[str, str] | None = None,
        prefilter: str | None = None,
        limit: int = 5,
    ) -> EvaluateResult:
        """Variables and a pre-filter, saved or not, over the first `limit` rows: each
        row's line, whether it passes the pre-filter, and each target field's value or
        its error. Nothing is saved."""
        with self.app.reading() as conn:
            profile = get_profile(conn, name)
            instance = get_settings(conn)
        return looking.evaluate(
            profile, instance, variables=variables, prefilter=prefilter, limit=limit
        )

    # --- helpers -----------------------------------------------------------------------

    def _load(self, name: str) -> Profile:
        with self.app.reading() as conn:
            return get_profile(conn, name)

    def _insert(self, profile: Profile) -> ProfileView:
        with self.app.transaction() as conn:
            if profile_exists(conn, profile.name):
                raise ConflictError(
                    f"a profile named {profile.name!r} exists already", field="name"
                )
            view = profile_view(insert_profile(conn, profile), conn)
        self.app.schedules.changed()
        return view

    def _change(self, name: str, change: Callable[[Profile], None]) -> ProfileView:
        """Apply `change` to the stored profile and save it. `change` runs outside any
        write transaction (it may read the source); the result is written only if the
        profile is still as it was read, and prepared again otherwise."""
        for _ in range(_ATTEMPTS):
            profile = self._load(name)
            before = _state(profile)
            change(profile)
            with self.app.transaction() as conn:
                _lock(conn, name)
                if _state(get_profile(conn, name)) == before:
                    view = profile_view(save_profile(conn, profile), conn)
                    break
        else:
            raise ConflictError(
                f"the profile {name!r} kept changing while this change was made; try again"
            )
        self.app.schedules.changed()
        return view


def _all_of(
    settings: Mapping[str, str] | None,
    variables: Mapping[str, str] | None,
    prefilter: str | None,
) -> Callable[[Profile], None]:
    """One change of a profile: variables first (a key may name a new one), then the
    pre-filter, then the settings, which are checked together at the end."""

    def change(profile: Profile) -> None:
        rules.set_variables(profile, variables or {})
        if prefilter is not None:
            rules.set_prefilter(profile, prefilter)
        rules.apply_settings(profile, settings or {})

    return change


def _try(
    errors: dict[str, str],
    field: str,
    change: Callable[[Profile], None],
    profile: Profile,
    in_place: bool = False,
) -> bool:
    """Apply `change` (to a copy, unless `in_place`); on an error, note it under the
    field it names (else `field`), once per field, and say it failed."""
    try:
        change(profile if in_place else copy.deepcopy(profile))
    except PbxConnectorError as exc:
        errors.setdefault(exc.field or field, exc.message)
        return False
    return True
