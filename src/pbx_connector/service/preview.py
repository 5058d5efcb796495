"""Looking at a profile's source before running it: its first rows as they come (preview),
and those rows through a pre-filter and variables that need not be saved (evaluate).

Both read the source (a file, a directory server) and so are called outside any store
transaction: a slow server must not hold a write lock. Both stop after the rows asked for
and close the source's generator, which releases an LDAP connection at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, TargetSpec, clean_record, parse_extension_digits
from pbx_connector.errors import ConfigError, ExpressionError, RecordError, RowError, UsageError
from pbx_connector.mapping import Expression, compile_prefilter, compile_variable
from pbx_connector.models.profiles import (
    EvaluatedRow,
    EvaluateResult,
    FieldValue,
    PreviewResult,
    RowProblem,
)
from pbx_connector.sources.base import Source, SourceRow
from pbx_connector.sources.registry import open_source
from pbx_connector.store.profiles import Profile
from pbx_connector.sync.runner import configures_authentication, normaliser_for

#: A preview is for reading on a screen; more rows than this belong in a run.
MAX_PREVIEW_ROWS = 10_000
#: Evaluation runs every expression on every row, as often as an administrator types.
MAX_EVALUATE_ROWS = 100
#: Unreadable rows reported at most; a file that is nothing but these says so quickly.
MAX_PROBLEMS = 100
PREFILTER = "pre-filter"


def check_limit(limit: int, most: int) -> int:
    if not 1 <= limit <= most:
        raise UsageError(f"the number of rows must be from 1 to {most}, not {limit}")
    return limit


@contextmanager
def _first_rows(
    source: Source, limit: int, problems: list[RowProblem]
) -> Iterator[Iterator[SourceRow]]:
    """The source's first `limit` readable rows; unreadable ones go to `problems` (the
    first MAX_PROBLEMS of them). The generator is closed on leaving, not left to the
    garbage collector, so that a directory connection ends with the preview."""
    rows = source.rows()

    def readable() -> Iterator[SourceRow]:
        taken = 0
        for row in rows:
            if row.error is not None:
                if len(problems) < MAX_PROBLEMS:
                    problems.append(RowProblem(line=row.line, message=row.error))
                continue
            yield row
            taken += 1
            if taken >= limit:
                return

    try:
        yield readable()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _open(profile: Profile, attributes: list[str] | None) -> Source:
    """The profile's source, not read yet. Secrets that cannot be decrypted are said to be
    so, rather than sent to a server as an empty password."""
    if profile.secrets_unreadable:
        raise ConfigError(
            "the profile's stored secrets cannot be decrypted with this instance key "
            "(was secret.key lost or replaced?); set them again"
        )
    return open_source(
        profile.source, profile.settings, profile.secrets, attributes, owner=profile.id
    )


def preview(profile: Profile, limit: int) -> PreviewResult:
    """The first rows exactly as the source gives them: every field it has."""
    check_limit(limit, MAX_PREVIEW_ROWS)
    source = _open(profile, None)
    fields = source.fields()
    problems: list[RowProblem] = []
    with _first_rows(source, limit, problems) as rows:
        data = [dict(row.data) for row in rows]
    return PreviewResult(source=source.name, fields=fields, rows=data, problems=problems)


# --- evaluate ------------------------------------------------------------------------------


def effective_variables(profile: Profile, unsaved: Mapping[str, str] | None) -> dict[str, str]:
    """The profile's variables with the unsaved ones over them, in the target's order. A
    name that is not a field of the target is the caller's mistake, not a row's."""
    spec = TARGETS[profile.target]
    given = dict(unsaved or {})
    for name in given:
        if name not in spec.field_names:
            raise UsageError(
                f"{name!r} is not a field of a {spec.label}; fields: {', '.join(spec.field_names)}",
                field=name,
            )
    return {n: given.get(n, profile.variables.get(n, "")) for n in spec.field_names}


@dataclass
class _Compiled:
    """Expressions that compiled, by field; and what is wrong with the others."""

    variables: dict[str, Expression]
    prefilter: Expression | None
    errors: dict[str, str]


def _compile(
    spec: TargetSpec, variables: Mapping[str, str], prefilter: str, auth_ldap: bool
) -> _Compiled:
    """Compile each expression on its own, so that one being typed (and so, for a moment,
    broken) does not hide what all the others give. Like a run, a users profile that sets
    up directory authentication gives `auth` the value `ldap` when its variable is empty."""
    compiled: dict[str, Expression] = {}
    errors: dict[str, str] = {}
    for name, text in variables.items():
        if not text.strip():
            if name == "auth" and auth_ldap:
                compiled[name] = compile_variable(name, "ldap")
            elif spec.spec(name).required:
                errors[name] = "is required, but its variable is empty"
            continue
        try:
            compiled[name] = compile_variable(name, text)
        except ExpressionError as exc:
            errors[name] = exc.message
    try:
        compiled_prefilter = compile_prefilter(prefilter)
    except ExpressionError as exc:
        compiled_prefilter = None
        errors[PREFILTER] = exc.message
    return _Compiled(compiled, compiled_prefilter, errors)


@dataclass
class _Judge:
    """Checks one field's value as a run's validation would, on its own."""

    spec: TargetSpec
    normaliser: PhoneNormaliser
    extension_digits: int | None

    def field(self, name: str, value: str) -> FieldValue:
        hidden = name in self.spec.secret_fields
        try:
            clean = clean_record(
                self.spec,
                {name: value},
                self.normaliser,
                partial=True,
                extension_digits=self.extension_digits,
            )
        except RecordError as exc:
            # Messages of secret fields name a length or a position, never the value.
            return FieldValue(value=None if hidden else value, error=exc.message)
        warnings = [text for field, text in clean.warnings if field == name]
        if hidden:
            return FieldValue(hidden=bool(value.strip()), warnings=warnings)
        return FieldValue(value=value, warnings=warnings)


def _evaluate_row(
    row: SourceRow, compiled: _Compiled, judge: _Judge, spec: TargetSpec
) -> EvaluatedRow:
    passes, prefilter_error = True, compiled.errors.get(PREFILTER)
    if prefilter_error is not None:
        passes = False
    elif compiled.prefilter is not None:
        try:
            passes = bool(compiled.prefilter.render(row.data))
        except RowError as exc:
            passes, prefilter_error = False, exc.message
    fields: dict[str, FieldValue] = {}
    for name in spec.field_names:
        expression = compiled.variables.get(name)
        if expression is None:
            fields[name] = FieldValue(error=compiled.errors.get(name))
            continue
        try:
            value = expression.render(row.data)
        except RowError as exc:
            fields[name] = FieldValue(error=exc.message)
            continue
        fields[name] = judge.field(name, value)
    return EvaluatedRow(
        line=row.line, passes=passes, prefilter_error=prefilter_error, fields=fields
    )


def evaluate(
    profile: Profile,
    instance: Mapping[str, str],
    *,
    variables: Mapping[str, str] | None,
    prefilter: str | None,
    limit: int,
) -> EvaluateResult:
    """Run variables and a pre-filter (the profile's own where none are given) over the
    first `limit` readable rows of the profile's source. Nothing is saved. An expression
    that does not compile, or fails on a row, is that field's error only; a row the
    pre-filter rejects is still evaluated, and marked."""
    check_limit(limit, MAX_EVALUATE_ROWS)
    spec = TARGETS[profile.target]
    chosen = effective_variables(profile, variables)
    prefilter_text = profile.prefilter if prefilter is None else prefilter.strip()
    compiled = _compile(spec, chosen, prefilter_text, configures_authentication(profile))
    judge = _Judge(
        spec,
        normaliser_for(profile, instance),
        parse_extension_digits(profile.settings.get("extension_digits", "")),
    )
    used: set[str] = set()
    for expression in [*compiled.variables.values(), compiled.prefilter]:
        if expression is not None:
            used |= expression.fields
    # Only the fields the expressions read, as a run asks a directory for them: an entry
    # without one of them then gives "" as in the run, not an undefined field.
    source = _open(profile, sorted(used))
    source_fields = source.fields()
    problems: list[RowProblem] = []
    with _first_rows(source, limit, problems) as rows:
        evaluated = [_evaluate_row(row, compiled, judge, spec) for row in rows]
    return EvaluateResult(
        profile=profile.name,
        source=source.name,
        source_fields=source_fields,
        variables=chosen,
        prefilter=prefilter_text,
        errors=compiled.errors,
        rows=evaluated,
        problems=problems,
    )
