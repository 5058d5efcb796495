"""Pre-filter and variables: Jinja2 expressions over a row, compiled once, run per row.

Expressions run in Jinja2's sandbox: user input is never given to eval/exec, and the
sandbox refuses attribute tricks that reach Python internals. A row's fields are visible
by name (`{{ givenname }}`) and the whole row as `row` (`{{ row["Telefon geschäftlich"] }}`)
for names that are not identifiers.

Most variables are plain references (`{{ phone }}`) or references joined by text
(`{{ givenname }} {{ surname }}`). Rendering those through Jinja costs microseconds a
field, which dominates a large import, so they are compiled to direct lookups; anything
else (filters, conditions) renders through the sandbox. Both give the same strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pbx_connector.errors import ExpressionError, RowError

ROW_NAME = "row"


def _finalize(value: Any) -> Any:
    # Multi-valued attributes arrive as lists; a field wants text.
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def _as_text(value: Any) -> str:
    return str(_finalize(value))


# Immutable: an expression cannot change the row (`mail.pop()`) that later ones read.
#: The largest string or list an expression may build with `*`, and the largest exponent:
#: a variable runs once per row, so `'a' * 10**9` must fail, not exhaust the machine.
MAX_SIZE = 100_000
MAX_EXPONENT = 100


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` checked before they run."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"the exponent {right} is too large (at most {MAX_EXPONENT})")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_SIZE
                ):
                    raise SecurityError(f"the result would be too large (over {MAX_SIZE})")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(
    undefined=jinja2.StrictUndefined,
    finalize=_finalize,
    autoescape=False,
    keep_trailing_newline=False,
)


def _first_value(value: Any) -> Any:
    """The first of a multi-valued field, or the field itself (never its first letter,
    which is what Jinja's `first` gives for a single value)."""
    if isinstance(value, list):
        return value[0] if value else ""
    return value


def _values(value: Any) -> list[Any]:
    """A field as a list, however many values it has."""
    if isinstance(value, list):
        return value
    return [] if value in (None, "") else [value]


def _digits(value: Any) -> str:
    """Only the characters a phone dials: digits, `*`, `#` (and a leading `+`)."""
    text = _as_text(value).strip()
    kept = "".join(ch for ch in text if ch in "0123456789*#")
    return "+" + kept if text.startswith("+") else kept


def _extension(value: Any) -> str:
    """The internal extension in a directory's phone number: the value itself when it is
    only digits, else the direct-dial suffix after the last `-` (DIN 5008 writes
    `+49 991 12345-100` for extension 100), else nothing."""
    text = _as_text(_first_value(value)).strip()
    if text and all(ch in "0123456789*#" for ch in text):
        return text
    head, sep, tail = text.rpartition("-")
    tail = tail.strip()
    if sep and head.strip() and tail and tail.isascii() and tail.isdigit():
        return tail
    return ""


_ENV.filters.update(first_value=_first_value, values=_values, digits=_digits, extension=_extension)

Part = Callable[[Mapping[str, Any]], str]


@dataclass
class Expression:
    """One compiled variable: its source text, the row fields it reads, and how to render."""

    name: str
    text: str
    fields: set[str]
    render: Callable[[Mapping[str, Any]], str]


def _compile_error(what: str, text: str, exc: jinja2.TemplateSyntaxError) -> ExpressionError:
    return ExpressionError(f"{exc.message} (in {text!r})", field=what)


def _field_of(node: nodes.Node) -> str | None:
    """The row field a node reads directly: `field` or `row["field"]`."""
    if isinstance(node, nodes.Name) and node.name != ROW_NAME:
        return node.name
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name == ROW_NAME
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    return None


def _referenced_fields(ast: nodes.Template) -> set[str]:
    names = set(meta.find_undeclared_variables(ast)) - {ROW_NAME}
    for node in ast.find_all(nodes.Getitem):
        field_name = _field_of(node)
        if field_name is not None:
            names.add(field_name)
    # `row.mail` reads the field too; `row.keys`, `row.get`, … are the dict's own.
    for attr in ast.find_all(nodes.Getattr):
        if (
            isinstance(attr.node, nodes.Name)
            and attr.node.name == ROW_NAME
            and not hasattr(dict, attr.attr)
        ):
            names.add(attr.attr)
    return names


#: Filters a compiled fast path may call directly: plain functions of one value, no
#: context, environment or arguments (so calling them equals what the sandbox does).
_FAST_FILTERS = frozenset(
    {"lower", "upper", "trim", "title", "capitalize", "string",
     "first_value", "values", "digits", "extension"}
)  # fmt: skip

Value = Callable[[Mapping[str, Any]], Any]


def _lookup_value(name: str) -> Value:
    def get(row: Mapping[str, Any]) -> Any:
        try:
            return row[name]
        except KeyError:
            raise RowError(f"{name!r} is undefined (the row has no such field)") from None

    return get


def _fast_expr(node: nodes.Node) -> Value | None:
    """A direct Python evaluation of the common expression shapes: a field, `row["x"]`,
    a string, `a or b`, and arg-less filters such as `| lower` or `| first_value`. None
    for anything else, which then renders through the sandbox."""
    field_name = _field_of(node)
    if field_name is not None:
        return _lookup_value(field_name)
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        const = node.value
        return lambda row: const
    if isinstance(node, nodes.Or):
        left, right = _fast_expr(node.left), _fast_expr(node.right)
        if left is None or right is None:
            return None
        return lambda row: left(row) or right(row)
    if (
        isinstance(node, nodes.Filter)
        and node.name in _FAST_FILTERS
        and node.node is not None
        and not node.args
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    ):
        inner = _fast_expr(node.node)
        func = _ENV.filters.get(node.name)
        if inner is None or func is None or getattr(func, "jinja_pass_arg", None) is not None:
            return None
        return lambda row: func(inner(row))
    return None


def _fast_parts(ast: nodes.Template) -> list[str | Value] | None:
    """Text pieces and fast expressions, when the template is nothing more than that."""
    if len(ast.body) == 0:
        return []
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    parts: list[str | Value] = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
            continue
        expr = _fast_expr(node)
        if expr is None:
            return None
        parts.append(expr)
    return parts


def _text_of(expr: Value) -> Part:
    return lambda row: _as_text(expr(row))


def _constant(text: str) -> Part:
    return lambda row: text


def _fast_renderer(parts: list[str | Value]) -> Callable[[Mapping[str, Any]], str]:
    pieces = [_constant(p) if isinstance(p, str) else _text_of(p) for p in parts]
    if not pieces:
        return lambda row: ""
    if len(pieces) == 1:
        return pieces[0]
    return lambda row: "".join(piece(row) for piece in pieces)


def _plain_field(ast: nodes.Template) -> str | None:
    """The field of a template that is exactly `{{ field }}` or `{{ row["field"] }}`."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    out = ast.body[0].nodes
    return _field_of(out[0]) if len(out) == 1 else None


def _render_field(variable: str, field_name: str) -> Part:
    """`{{ field }}`, the most common variable of all, in as few steps as possible."""

    def render(row: Mapping[str, Any]) -> str:
        try:
            value = row[field_name]
        except KeyError:
            raise RowError(
                f"{field_name!r} is undefined (the row has no such field)", field=variable
            ) from None
        return value if value.__class__ is str else _as_text(value)

    return render


def compile_variable(name: str, text: str) -> Expression:
    """Compile one variable template; a syntax error names the variable."""
    try:
        ast = _ENV.parse(text)
        template = _ENV.from_string(ast)
    except jinja2.TemplateSyntaxError as exc:
        raise _compile_error(name, text, exc) from None
    fields = _referenced_fields(ast)
    plain = _plain_field(ast)
    if plain is not None:
        return Expression(name, text, fields, _render_field(name, plain))
    parts = _fast_parts(ast)
    if parts is not None:
        fast = _fast_renderer(parts)

        def render_fast(row: Mapping[str, Any]) -> str:
            try:
                return fast(row)
            except RowError as exc:
                raise RowError(exc.message, field=name) from None
            except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
                raise RowError(str(exc), field=name) from None

        return Expression(name, text, fields, render_fast)

    def render(row: Mapping[str, Any]) -> str:
        try:
            return template.render({**row, ROW_NAME: row})
        except jinja2.UndefinedError as exc:
            raise RowError(str(exc.message), field=name) from None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as e:
            raise RowError(str(e), field=name) from None

    return Expression(name, text, fields, render)


def compile_prefilter(text: str) -> Expression | None:
    """Compile the pre-filter: a boolean expression; empty means every row passes."""
    if not text or not text.strip():
        return None
    source = text.strip()
    try:
        ast = _ENV.parse("{{ (" + source + ") }}")
        evaluate = _ENV.compile_expression(source, undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise _compile_error("pre-filter", source, exc) from None
    fields = _referenced_fields(ast)

    def render(row: Mapping[str, Any]) -> str:
        try:
            return "1" if evaluate({**row, ROW_NAME: row}) else ""
        except jinja2.UndefinedError as exc:
            raise RowError(str(exc.message), field="pre-filter") from None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as e:
            raise RowError(str(e), field="pre-filter") from None

    return Expression("pre-filter", source, fields, render)


@dataclass
class RowMapper:
    """A profile's pre-filter and variables, compiled once per run."""

    variables: dict[str, Expression]
    prefilter: Expression | None = None
    _items: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = field(
        init=False, repr=False, default_factory=list
    )

    def __post_init__(self) -> None:
        self._items = [(n, e.render) for n, e in self.variables.items()]

    @classmethod
    def compile(cls, variables: Mapping[str, str], prefilter: str = "") -> RowMapper:
        return cls(
            {name: compile_variable(name, text) for name, text in variables.items()},
            compile_prefilter(prefilter),
        )

    def fields_used(self) -> set[str]:
        used: set[str] = set()
        for e in self.variables.values():
            used |= e.fields
        if self.prefilter:
            used |= self.prefilter.fields
        return used

    def missing_fields(self, available: Iterable[str]) -> list[tuple[str, str]]:
        """(expression name, field) for each field an expression reads that the source lacks."""
        have = set(available)
        missing: list[tuple[str, str]] = []
        expressions = list(self.variables.values())
        if self.prefilter:
            expressions.append(self.prefilter)
        for e in expressions:
            missing.extend((e.name, f) for f in sorted(e.fields - have))
        return missing

    def accepts(self, row: Mapping[str, Any]) -> bool:
        return self.prefilter is None or bool(self.prefilter.render(row))

    def apply(self, row: Mapping[str, Any]) -> dict[str, str]:
        return {name: render(row) for name, render in self._items}


def check_expression(name: str, text: str) -> None:
    """Raise ExpressionError now, when a variable or pre-filter is set, not mid-run."""
    if name == "pre-filter":
        compile_prefilter(text)
    else:
        compile_variable(name, text)
