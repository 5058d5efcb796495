"""Records of the three targets by hand: list (search, owner, order, paging), get, add,
edit, delete, and a user's password or PIN.

Every rule of a hand edit lives here so that the command line, the API and the pages
apply the same ones: which fields exist, that secrets are set one at a time and never
with the other fields, how a record is named (an id, or a username spelt any way a user
may type it), validation and phone numbers under the instance's settings, and the
warning that an imported record gets its source's values back on the next run.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from sqlalchemy import Connection

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import AUTH_METHODS, TARGETS, TargetSpec, clean_record
from pbx_connector.errors import ConfigError, NotFoundError, UsageError
from pbx_connector.models.base import Page
from pbx_connector.models.records import (
    RECORD_MODELS,
    EditResult,
    Origin,
    PhonebookEntry,
    PhonebookOwner,
    Record,
    RecordField,
    RecordTarget,
    SpeedDial,
    User,
)
from pbx_connector.store import record_queries
from pbx_connector.store import records as record_store
from pbx_connector.store.record_queries import RecordFilter, RecordOrder
from pbx_connector.store.settings import get_settings

if TYPE_CHECKING:
    from pbx_connector.service.app import App

#: The largest page a list returns; a face that shows everything asks for `limit=None`.
MAX_LIMIT = 1000
#: The largest id or offset the stores take (a signed 64-bit integer).
MAX_INT = 2**63 - 1
#: A search term longer than any searched field cannot match.
MAX_SEARCH = 255
#: Kinds of field that cannot be sorted by: secrets are not shown, roles are lists.
_UNSORTABLE_KINDS = frozenset({"secret", "pin", "roles"})
#: Characters no searched field can hold: control characters but the tab, and lone
#: surrogates (which no database encoding takes).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0a-\x1f\ud800-\udfff]")

Secret = Literal["password", "pin"]

#: The page of each target's records (a model of its own, for the API's JSON Schema).
_PAGES: dict[str, type[Page[Any]]] = {
    "users": Page[User],
    "phonebook": Page[PhonebookEntry],
    "speeddials": Page[SpeedDial],
}


def record_target(name: str) -> RecordTarget:
    """A target's name, label and fields, for a face that offers them (help, forms)."""
    spec = _spec(name)
    return RecordTarget(
        name=spec.name,
        label=spec.label,
        fields=[f for f in spec.field_names if f not in spec.secret_fields],
        secret_fields=list(spec.secret_fields),
    )


def record_fields(name: str) -> list[RecordField]:
    """The fields of a target that are given by hand, in their order, with what each
    takes: what a form needs to offer them. Secrets are left out (see `set_secret`)."""
    spec = _spec(name)
    return [
        RecordField(
            name=f.name,
            kind=f.kind,
            required=f.required,
            max_length=f.max_length,
            multiline=f.multiline,
            choices=list(AUTH_METHODS) if f.kind == "auth" else [],
            description=f.description,
        )
        for f in spec.fields
        if f.name not in spec.secret_fields
    ]


def orderable_fields(target: str) -> tuple[str, ...]:
    """What a list can be sorted by: the id and every shown field but lists."""
    spec = _spec(target)
    return ("id", *(f.name for f in spec.fields if f.kind not in _UNSORTABLE_KINDS))


def imported_warning(origin: Origin) -> str:
    """What an edit of an imported record must say: the edit does not last."""
    return (
        f"imported by profile {origin.profile!r}: its next run will overwrite hand edits "
        "of managed fields"
    )


#: A search counts its matches up to this many; beyond, the page says "200+". Counting
#: reads every match it counts: 1,000 took half the time of a search request.
SEARCH_COUNT_LIMIT = 200


class RecordsService:
    """Users, phonebook entries and speed dials, as made or changed by hand."""

    def __init__(self, app: App) -> None:
        self.app = app

    # The overloads give a caller that names its target the model of that target.

    @overload
    def list(
        self,
        target: Literal["users"],
        *,
        search: str | None = ...,
        owner: str | None = ...,
        limit: int | None = ...,
        offset: int = ...,
        order: str | None = ...,
    ) -> Page[User]: ...

    @overload
    def list(
        self,
        target: Literal["phonebook"],
        *,
        search: str | None = ...,
        owner: str | None = ...,
        limit: int | None = ...,
        offset: int = ...,
        order: str | None = ...,
    ) -> Page[PhonebookEntry]: ...

    @overload
    def list(
        self,
        target: Literal["speeddials"],
        *,
        search: str | None = ...,
        owner: str | None = ...,
        limit: int | None = ...,
        offset: int = ...,
        order: str | None = ...,
    ) -> Page[SpeedDial]: ...

    @overload
    def list(
        self,
        target: str,
        *,
        search: str | None = ...,
        owner: str | None = ...,
        limit: int | None = ...,
        offset: int = ...,
        order: str | None = ...,
    ) -> Page[Record]: ...

    def list(
        self,
        target: str,
        *,
        search: str | None = None,
        owner: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
        order: str | None = None,
    ) -> Page[Any]:
        """One page of records and how many match in all.

        `search` is looked for inside the names, username, organisation, e-mail, codes
        and numbers, without regard to case; a number matches also by its digits
        against the E.164 forms. `owner` selects one user's private phonebook ('' the
        global one). `order` is a field, '-field' for descending; ties go by id.
        `limit=None` returns every match (for a face that prints a whole list)."""
        _spec(target)
        where = RecordFilter(search=_search(search), owner=_owner(target, owner))
        sort = _order(target, order)
        _check_page(limit, offset)
        if where.search is not None and _UNSTORABLE.search(where.search):
            # No record holds such a character (each is refused on the way in), and
            # PostgreSQL would not even take some of them as a parameter.
            return _PAGES[target](items=[], total=0)
        # A page of a search counts its matches up to a bound: three common letters
        # match a sixth of a large phonebook, and counting them all costs more than the
        # page. A face asking for every record (limit=None) gets the exact count.
        bound = SEARCH_COUNT_LIMIT + 1 if where.search and limit is not None else None
        with self.app.reading() as conn:
            rows = record_queries.find_records(
                conn, target, where, sort, limit=limit, offset=offset
            )
            if limit is not None and offset == 0 and len(rows) < limit:
                total = len(rows)  # a first page that is not full holds every match
            else:
                total = record_queries.count_records(conn, target, where, up_to=bound)
        exact = bound is None or total < bound
        return _PAGES[target](
            items=[_model(target, row) for row in rows],
            total=total if exact else SEARCH_COUNT_LIMIT,
            total_exact=exact,
        )

    @overload
    def get(self, target: Literal["users"], ref: int | str) -> User: ...

    @overload
    def get(self, target: Literal["phonebook"], ref: int | str) -> PhonebookEntry: ...

    @overload
    def get(self, target: Literal["speeddials"], ref: int | str) -> SpeedDial: ...

    @overload
    def get(self, target: str, ref: int | str) -> Record: ...

    def get(self, target: str, ref: int | str) -> Record:
        """One record by id, or a user also by username."""
        _spec(target)
        with self.app.reading() as conn:
            return _record(conn, target, _resolve(conn, target, ref))

    @overload
    def add(self, target: Literal["users"], values: Mapping[str, str]) -> User: ...

    @overload
    def add(self, target: Literal["phonebook"], values: Mapping[str, str]) -> PhonebookEntry: ...

    @overload
    def add(self, target: Literal["speeddials"], values: Mapping[str, str]) -> SpeedDial: ...

    @overload
    def add(self, target: str, values: Mapping[str, str]) -> Record: ...

    def add(self, target: str, values: Mapping[str, str]) -> Record:
        """Add a record. Fields not given are empty (or their default); a password or
        PIN is refused here and set with `set_secret`."""
        spec = _spec(target)
        _check_fields(spec, values)
        with self.app.transaction() as conn:
            clean = clean_record(spec, values, _normaliser(conn))
            record_id = record_store.insert_record(conn, target, clean)
            return _record(conn, target, record_id)

    def edit(self, target: str, ref: int | str, values: Mapping[str, str]) -> EditResult:
        """Change some fields of a record. A record that a profile imported keeps its
        origin, and the result warns that the profile's next run writes its source's
        values again."""
        spec = _spec(target)
        with self.app.transaction() as conn:
            record_id = _resolve(conn, target, ref)
            _check_fields(spec, values)
            if not values:
                raise UsageError("nothing to change")
            clean = clean_record(spec, values, _normaliser(conn), partial=True)
            record_store.update_record(conn, target, record_id, clean)
            record = _record(conn, target, record_id)
        warnings = [imported_warning(record.origin)] if record.origin is not None else []
        return EditResult(record=record, warnings=warnings)

    @overload
    def delete(self, target: Literal["users"], ref: int | str) -> User: ...

    @overload
    def delete(self, target: Literal["phonebook"], ref: int | str) -> PhonebookEntry: ...

    @overload
    def delete(self, target: Literal["speeddials"], ref: int | str) -> SpeedDial: ...

    @overload
    def delete(self, target: str, ref: int | str) -> Record: ...

    def delete(self, target: str, ref: int | str) -> Record:
        """Delete a record (never the built-in admin user). Returns the record as it was,
        so that a face can say which one went when it was named by username."""
        _spec(target)
        with self.app.transaction() as conn:
            record = _record(conn, target, _resolve(conn, target, ref))
            record_store.delete_record(conn, target, record.id)
        return record

    def phonebook_owners(self) -> builtins.list[PhonebookOwner]:  # `list` is a method here
        """The users who have a private phonebook, by username, with the number of its
        entries (users without one are not listed)."""
        with self.app.reading() as conn:
            found = record_queries.phonebook_owners(conn)
        return [PhonebookOwner(username=name, entries=count) for name, count in found]

    def private_phonebooks(self) -> builtins.list[PhonebookOwner]:
        """Every private phonebook one may open, by username: each user's, with the
        number of its entries (0 while it has none), and that of any owner who is no
        user any more. What a face offers to open, or to start, a private phonebook."""
        with self.app.reading() as conn:
            counts = dict(record_queries.phonebook_owners(conn))
            names = record_store.usernames(conn)
        return [
            PhonebookOwner(username=name, entries=counts.get(name, 0))
            for name in sorted(names | counts.keys())
        ]

    def set_secret(self, ref: int | str, which: Secret, value: str) -> None:
        """Set a user's local password or PIN; it is stored only as a hash and never
        shown again. An empty one is refused: it would not remove the secret but lock
        the user out in a way nobody could see."""
        if which not in ("password", "pin"):
            raise ConfigError(f"{which!r} is not a secret of a user (password, pin)")
        what = "PIN" if which == "pin" else "password"
        if not value.strip():
            raise UsageError(f"an empty {what} is not allowed")
        spec = TARGETS["users"]
        with self.app.transaction() as conn:
            record_id = _resolve(conn, "users", ref)
            clean = clean_record(spec, {which: value}, _normaliser(conn), partial=True)
            record_store.update_record(conn, "users", record_id, clean)


# --- the rules ----------------------------------------------------------------------------


def _spec(target: str) -> TargetSpec:
    try:
        return TARGETS[target]
    except KeyError:
        raise NotFoundError(
            f"no target {target!r}; targets: {', '.join(TARGETS)}", field="target"
        ) from None


def _check_fields(spec: TargetSpec, values: Mapping[str, str]) -> None:
    """Only the target's fields, and no secret among them: a secret given with other
    fields would travel and be logged with them, so it has its own way in."""
    for name in values:
        if name not in spec.field_names:
            raise UsageError(
                f"{name!r} is not a field of a {spec.label}; fields: {', '.join(spec.field_names)}",
                field=name,
            )
        if name in spec.secret_fields:
            raise UsageError(
                f"{name} is write-only and not set with the other fields: set it on its own",
                field=name,
            )


def _resolve(conn: Connection, target: str, ref: int | str) -> int:
    """The id a reference names: ASCII digits are an id (one the stores can hold), any
    other text a username (users only), compared in its folded spelling."""
    label = TARGETS[target].label
    if isinstance(ref, int):
        if not 0 <= ref <= MAX_INT:
            raise NotFoundError(f"no {label} {ref}")
        return ref
    if ref.isascii() and ref.isdigit():
        if int(ref) > MAX_INT:
            raise NotFoundError(f"no {label} {ref}")
        return int(ref)
    if target == "users" and not _UNSTORABLE.search(ref):  # no store holds such a name
        found = record_queries.user_id_by_username(conn, ref)
        if found is not None:
            return found
    raise NotFoundError(f"no {label} {ref!r}")


def _search(search: str | None) -> str | None:
    """The term to look for; blank means no search."""
    if search is None or not search.strip():
        return None
    term = search.strip()
    if len(term) > MAX_SEARCH:
        raise ConfigError(f"the search is longer than {MAX_SEARCH} characters", field="search")
    return term


def _owner(target: str, owner: str | None) -> str | None:
    if owner is not None and target != "phonebook":
        raise ConfigError("only phonebook entries have an owner", field="owner")
    return None if owner is None else owner.strip()


def _order(target: str, order: str | None) -> RecordOrder:
    if order is None or not order.strip():
        return RecordOrder()
    text = order.strip()
    descending = text.startswith("-")
    name = text.removeprefix("-")
    allowed = orderable_fields(target)
    if name not in allowed:
        raise ConfigError(
            f"cannot sort {TARGETS[target].label} records by {name!r}; "
            f"sort by one of: {', '.join(allowed)} (with '-' in front for descending)",
            field="order",
        )
    return RecordOrder(field=name, descending=descending)


def _check_page(limit: int | None, offset: int) -> None:
    if limit is not None and not 0 <= limit <= MAX_LIMIT:
        raise ConfigError(f"the limit must be a number from 0 to {MAX_LIMIT}", field="limit")
    if not 0 <= offset <= MAX_INT:
        raise ConfigError(f"the offset must be a number from 0 to {MAX_INT}", field="offset")


def _normaliser(conn: Connection) -> PhoneNormaliser:
    """Numbers given by hand are read as the instance reads them (region, prefix)."""
    s = get_settings(conn)
    return PhoneNormaliser(s["default_region"], s["outside_line_prefix"])


def _record(conn: Connection, target: str, record_id: int) -> Record:
    return _model(target, record_store.get_record(conn, target, record_id))


def _model(target: str, row: Mapping[str, object]) -> Record:
    return RECORD_MODELS[target].model_validate(row)
