"""Users, the phonebooks and speed dials over HTTP, and a user's password and PIN.

Each target gets the same five routes, made by one function. Every rule (which fields
exist, what a value must be, that a secret is set on its own, who may be deleted) is the
core's: this face turns JSON values into the text the core reads, and gives the core's
refusals of input the status and the way out that an HTTP client needs.
"""

# No `from __future__ import annotations` here: FastAPI reads the annotations of the
# route functions made inside `_target_routes`, and a string annotation naming a local
# (the target's body model) could not be resolved from the module's globals.

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from pbx_connector.api.deps import Core, Reader, Writer, quick
from pbx_connector.errors import ConfigError, UsageError
from pbx_connector.models.base import Model, Page
from pbx_connector.models.records import EditResult, PhonebookEntry, SpeedDial, User
from pbx_connector.service.records import MAX_INT, MAX_LIMIT, record_target

router = APIRouter()

#: What a field's value may be in a request: the record's own JSON types, so that what a
#: GET answered can be sent back (`enabled: true`, `roles: ["viewer"]`, `extension: null`).
FieldValue = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "boolean"},
                {"type": "integer"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "null"},
            ]
        }
    ),
]

#: A reference to one record: its id, or for a user also the username.
Ref = Annotated[str, Path(description="the record's id (a user: also the username)")]
# The bounds are shown in the OpenAPI description and checked by the core, whose error
# names the parameter as the client wrote it.
Limit = Annotated[int, Query(json_schema_extra={"minimum": 0, "maximum": MAX_LIMIT})]
Offset = Annotated[int, Query(json_schema_extra={"minimum": 0, "maximum": MAX_INT})]
Search = Annotated[
    str | None,
    Query(description="text inside a name, username, organisation, e-mail, code or number"),
]
Order = Annotated[str | None, Query(description="a field, or -field for descending")]
Owner = Annotated[
    str | None,
    Query(description="a username: that user's private phonebook; empty: the global one"),
]


class PasswordBody(Model):
    """A user's new local password; it is stored as a hash and never shown."""

    password: str = Field(min_length=1)


class PinBody(Model):
    """A user's new PIN (4 to 12 digits); it is stored as a hash and never shown."""

    pin: str = Field(min_length=1)


def _body_model(target: str, name: str) -> type[BaseModel]:
    """The request body of a target's POST and PATCH: its fields, for the OpenAPI
    description. Other keys are let through so that the core names what is wrong with
    them (a field that does not exist, a secret that has a route of its own)."""
    info = record_target(target)
    fields: dict[str, Any] = {f: (FieldValue, None) for f in info.fields}
    return create_model(
        name,
        __config__=ConfigDict(extra="allow", title=name),
        __doc__=f"Fields of a {info.label}; a field left out is empty (POST) or kept (PATCH).",
        **fields,
    )


def _text(field: str, value: object) -> str:
    """The text the core reads for one JSON value, as the command line would give it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    raise ConfigError(
        "must be text, a whole number, true or false, a list of text, or null", field=field
    )


def _values(body: BaseModel) -> dict[str, str]:
    """The fields a request gave (not the ones it left out), as text."""
    given: Mapping[str, object] = body.model_dump(exclude_unset=True)
    return {name: _text(name, value) for name, value in given.items()}


@contextmanager
def _invalid_input(target: str, field: str | None = None) -> Iterator[None]:
    """The core refuses input it cannot use as asked with a plain usage error; over HTTP
    that is invalid input (422), naming `field` when the core does not name one. A secret
    among the fields gets this face's way to set it. Not found, conflicts and protected
    records keep their own status."""
    secrets = record_target(target).secret_fields
    try:
        yield
    except UsageError as exc:
        if type(exc) is not UsageError:
            raise
        message = exc.message
        if exc.field in secrets:
            message = (
                f"{exc.field} is write-only and not set with the other fields: "
                f"PUT /api/v1/users/{{ref}}/{exc.field}"
            )
        raise ConfigError(message, field=exc.field or field) from None


def _json(page: BaseModel) -> Response:
    """A page the core already typed, serialised by pydantic in the same thread. Returned
    as a model, FastAPI would validate it again and serialise it in another thread hop;
    the most-asked list need not pay for that on every request."""
    return Response(page.model_dump_json(), media_type="application/json")


def _target_routes(
    target: str,
    plural: str,
    record_model: type[BaseModel],
    page_model: type[BaseModel],
    body_name: str,
) -> APIRouter:
    """List, add, get, edit and delete for one target, at `/{target}`."""
    body_model = _body_model(target, body_name)
    label = record_target(target).label
    routes = APIRouter(prefix=f"/{target}", tags=[target])

    # A phonebook list also takes `owner`; the other lists do not offer it at all.
    if target == "phonebook":

        @routes.get("", response_model=page_model, summary=f"List {plural}")
        async def list_phonebook(
            request: Request,
            app: Core,
            _: Reader,
            search: Search = None,
            owner: Owner = None,
            limit: Limit = 50,
            offset: Offset = 0,
            order: Order = None,
        ) -> Any:
            """One page of entries and how many match in all."""
            return await quick(
                request,
                lambda: _json(
                    app.records.list(
                        target, search=search, owner=owner, limit=limit, offset=offset, order=order
                    )
                ),
            )

    else:

        @routes.get("", response_model=page_model, summary=f"List {plural}")
        async def list_records(
            request: Request,
            app: Core,
            _: Reader,
            search: Search = None,
            limit: Limit = 50,
            offset: Offset = 0,
            order: Order = None,
        ) -> Any:
            """One page of records and how many match in all."""
            return await quick(
                request,
                lambda: _json(
                    app.records.list(target, search=search, limit=limit, offset=offset, order=order)
                ),
            )

    @routes.post("", status_code=201, response_model=record_model, summary=f"Add a {label}")
    def add_record(body: body_model, response: Response, app: Core, _: Writer) -> Any:  # type: ignore[valid-type]
        """Add a record; 201 with it and its `Location`."""
        with _invalid_input(target):
            record = app.records.add(target, _values(body))
        response.headers["Location"] = f"/api/v1/{target}/{record.id}"
        return record

    @routes.get("/{ref}", response_model=record_model, summary=f"One {label}")
    def get_record(ref: Ref, app: Core, _: Reader) -> Any:
        return app.records.get(target, ref)

    @routes.patch("/{ref}", response_model=EditResult, summary=f"Change a {label}")
    def edit_record(ref: Ref, body: body_model, app: Core, _: Writer) -> Any:  # type: ignore[valid-type]
        """Change the fields given. An imported record answers with a warning naming its
        profile: the profile's next run writes the source's values again."""
        with _invalid_input(target):
            return app.records.edit(target, ref, _values(body))

    @routes.delete("/{ref}", status_code=204, summary=f"Delete a {label}")
    def delete_record(ref: Ref, app: Core, _: Writer) -> Response:
        app.records.delete(target, ref)
        return Response(status_code=204)

    return routes


router.include_router(_target_routes("users", "users", User, Page[User], "UserFields"))
router.include_router(
    _target_routes(
        "phonebook", "phonebook entries", PhonebookEntry, Page[PhonebookEntry], "PhonebookFields"
    )
)
router.include_router(
    _target_routes("speeddials", "speed dials", SpeedDial, Page[SpeedDial], "SpeedDialFields")
)


@router.put("/users/{ref}/password", status_code=204, tags=["users"], summary="Set a password")
def set_password(ref: Ref, body: PasswordBody, app: Core, _: Writer) -> Response:
    """Set a user's local password. Write-only: no response ever holds it; the user
    shows `password_set`."""
    with _invalid_input("users", "password"):
        app.records.set_secret(ref, "password", body.password)
    return Response(status_code=204)


@router.put("/users/{ref}/pin", status_code=204, tags=["users"], summary="Set a PIN")
def set_pin(ref: Ref, body: PinBody, app: Core, _: Writer) -> Response:
    """Set a user's PIN. Write-only: no response ever holds it; the user shows `pin_set`."""
    with _invalid_input("users", "pin"):
        app.records.set_secret(ref, "pin", body.pin)
    return Response(status_code=204)
