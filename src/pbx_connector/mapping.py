"""Pre-filter and variables: Jinja2 expressions over a row, compiled once, run per row.

Expressions run in Jinja2's sandbox: user input is never given to eval/exec, and the
sandbox refuses attribute tricks that reach Python internals. A row's fields are visible
by name (`{{ givenname }}`) and the whole row as `row` (`{{ row["Telefon geschäftlich"] }}`)
for names that are not identifiers.

Each evaluation of an expression on a row has a budget of time, size and work, checked
from the sandbox's hooks (expression_budget.py): going over it is that row's RowError,
never a hang or an exhausted machine. Compiling runs no part of an expression.

Most variables are plain references (`{{ phone }}`) or references joined by text
(`{{ givenname }} {{ surname }}`). Rendering those through Jinja costs microseconds a
field, which dominates a large import, so they are compiled to direct lookups; anything
else (filters, conditions) renders through the sandbox. Both give the same strings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pbx_connector.errors import ExpressionError, RowError
from pbx_connector.expression_budget import (
    MAX_BUILT,
    MAX_DEPTH,
    MAX_SIZE,
    MAX_TEXT,
    LimitExceeded,
    built_too_much,
    check_binop,
    check_call,
    current,
    guard,
    guard_filters,
    lipsum,
    loop,
    size_of,
    str_format,
    too_large,
)
from pbx_connector.expression_budget import start as budget_start
from pbx_connector.expression_budget import stop as budget_stop

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


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox (an expression cannot change the row, `mail.pop()`, that later
    ones read), with every hook also checking the evaluation's budget (see
    expression_budget): operators, calls, attribute and item access, `str.format`."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        check_binop(operator, left, right)
        return budget.take(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (loop(args[0], budget.loop_charge), *args[1:])
        args = check_call(__obj, args, kwargs)
        if budget.depth >= MAX_DEPTH:
            raise LimitExceeded(f"calls are nested too deeply (over {MAX_DEPTH} levels)")
        budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return budget.take(result)

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        return str_format(self, value)


@jinja2.pass_eval_context
def _output(eval_ctx: Any, value: Any) -> str:
    """`{{ … }}` in the sandbox: the text of the value, counted against the budget. Taking
    the evaluation context also keeps Jinja from running expressions while compiling."""
    if value.__class__ is not str:
        if size_of(value) > MAX_SIZE:
            raise too_large("the output")
        value = _as_text(value)
    budget = current()
    budget.built += len(value)
    if budget.built > MAX_BUILT:
        raise built_too_much()
    return value  # type: ignore[no-any-return]


_ENV = _Sandbox(
    undefined=jinja2.StrictUndefined,
    finalize=_output,
    autoescape=False,
    keep_trailing_newline=False,
    # Constant folding would run parts of an expression while compiling it, outside any
    # budget: `'a'|center(10**9)` must fail on a row, not when the variable is set.
    optimized=False,
)
_ENV.globals["lipsum"] = lipsum


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
#: The filters themselves, for the fast path (plain functions of the row's own values).
_PLAIN_FILTERS = dict(_ENV.filters)
_ENV.filters.update(guard_filters(_PLAIN_FILTERS))


@dataclass
class Expression:
    """One compiled variable: its source text, the row fields it reads, and how to render."""

    name: str
    text: str
    fields: set[str]
    render: Callable[[Mapping[str, Any]], str]
    #: False when the result may differ between two evaluations of the same row (see
    #: `_IMPURE_FILTERS`, `_IMPURE_NAMES`).
    pure: bool = True


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 200 else repr(text[:200]) + "…"


def _compile_error(what: str, text: str, exc: jinja2.TemplateSyntaxError) -> ExpressionError:
    return ExpressionError(f"{exc.message} (in {_shown(text)})", field=what)


#: What else compiling can raise: the parser or Python's compiler going too deep, a number
#: literal too long to read (and, as a TemplateError, a budget limit on nesting).
_COMPILE_LIMITS = (RecursionError, MemoryError, SyntaxError, ValueError)


def _limit_error(what: str, text: str, exc: BaseException) -> ExpressionError:
    if isinstance(exc, jinja2.TemplateError):
        message = str(exc)
    elif isinstance(exc, ValueError):
        message = "a number in it is too long" if "digits" in str(exc) else str(exc)
    elif isinstance(exc, MemoryError):
        message = "the expression is too large to compile"
    else:  # RecursionError, or SyntaxError from Python's compiler: too many nested blocks
        message = "the expression is nested too deeply"
    return ExpressionError(f"{message} (in {_shown(text)})", field=what)


@contextmanager
def _compiling(what: str, text: str) -> Iterator[None]:
    """Compile under a budget too, and report any failure as an ExpressionError."""
    if len(text) > MAX_TEXT:
        message = f"the expression is too long ({len(text)} characters, at most {MAX_TEXT})"
        raise ExpressionError(message, field=what)
    token = budget_start()
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        raise _compile_error(what, text, exc) from None
    except (jinja2.TemplateError, *_COMPILE_LIMITS) as exc:
        raise _limit_error(what, text, exc) from None
    finally:
        budget_stop(token)


#: What evaluating an expression on a row can raise; each is that row's error.
_ROW_ERRORS = (
    jinja2.TemplateError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,  # a filter given the wrong kind of value: `givenname|dictsort`
)


def _evaluation_error(what: str, exc: Exception) -> RowError:
    if isinstance(exc, jinja2.UndefinedError):
        return RowError(str(exc.message), field=what)
    if isinstance(exc, RecursionError):
        return RowError("the expression is nested too deeply", field=what)
    if isinstance(exc, MemoryError):
        return RowError("the expression needs too much memory", field=what)
    return RowError(str(exc), field=what)


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


def _undeclared(ast: nodes.Template) -> set[str]:
    """meta.find_undeclared_variables without its constant folding, which would run parts
    of the expression (and can fail on them) while compiling."""
    codegen = meta.TrackingCodeGenerator(ast.environment)  # type: ignore[arg-type]
    codegen.optimizer = None
    codegen.visit(ast)
    return codegen.undeclared_identifiers


#: What makes an expression give another result for the same row: Jinja's `random`
#: filter and the `lipsum` global (random words). A field named `lipsum` counts too.
_IMPURE_FILTERS = frozenset({"random"})
_IMPURE_NAMES = frozenset({"lipsum"})


def _is_pure(ast: nodes.Node) -> bool:
    """Whether the expression is a function of the row alone: evaluated twice on the same
    row, it gives the same text (or the same error). A sync relies on it to leave a
    record alone when its source row has not changed."""
    if any(f.name in _IMPURE_FILTERS for f in ast.find_all(nodes.Filter)):
        return False
    return not any(n.name in _IMPURE_NAMES for n in ast.find_all(nodes.Name))


def _referenced_fields(ast: nodes.Template) -> set[str]:
    names = _undeclared(ast) - {ROW_NAME}
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


class _Missing(Exception):
    """A fast path read a field the row does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _fast_filter(node: nodes.Node) -> Callable[[Any], Any] | None:
    """The plain function behind `… | name` when it takes nothing but the value."""
    if not (
        isinstance(node, nodes.Filter)
        and node.name in _FAST_FILTERS
        and node.node is not None
        and not node.args
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    ):
        return None
    func = _PLAIN_FILTERS.get(node.name)
    if func is None or getattr(func, "jinja_pass_arg", None) is not None:
        return None
    return func  # type: ignore[no-any-return]


def _fast_field(node: nodes.Node) -> str | None:
    """The field a node reads, when a direct lookup means the same as Jinja's: a bare
    name that is also one of Jinja's globals (`range`, `lipsum`, …) is that global in a
    row without such a field, so it is left to the sandbox."""
    name = _field_of(node)
    if name is not None and isinstance(node, nodes.Name) and name in _ENV.globals:
        return None
    return name


def _lookup(name: str) -> Value:
    def get(row: Mapping[str, Any]) -> Any:
        try:
            return row[name]
        except KeyError:
            raise _Missing(name) from None

    return get


def _filtered(inner: Value, funcs: list[Callable[[Any], Any]]) -> Value:
    if not funcs:
        return inner

    def apply(row: Mapping[str, Any]) -> Any:
        value = inner(row)
        for func in funcs:
            value = func(value)
        return value

    return apply


def _fast_expr(node: nodes.Node) -> Value | None:
    """A direct Python evaluation of the common expression shapes: a field, `row["x"]`,
    a string, `a or b`, each with arg-less filters such as `| lower` or `| first_value`.
    None for anything else, which then renders through the sandbox."""
    funcs: list[Callable[[Any], Any]] = []
    while (func := _fast_filter(node)) is not None:
        funcs.append(func)
        node = node.node  # type: ignore[attr-defined]
    funcs.reverse()  # innermost first
    field_name = _fast_field(node)
    if field_name is not None:
        return _filtered(_lookup(field_name), funcs)
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        const = node.value
        return _filtered(lambda row: const, funcs)
    if isinstance(node, nodes.Or):
        left, right = _fast_expr(node.left), _fast_expr(node.right)
        if left is None or right is None:
            return None
        return _filtered(lambda row: left(row) or right(row), funcs)
    return None


def _chain_of(ast: nodes.Template) -> tuple[str, list[Callable[[Any], Any]]] | None:
    """(field, filters innermost first) of a template that is exactly one `{{ field | f
    | g … }}`, the shape of nearly every variable."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    if len(ast.body[0].nodes) != 1:
        return None
    node = ast.body[0].nodes[0]
    funcs: list[Callable[[Any], Any]] = []
    while (func := _fast_filter(node)) is not None:
        funcs.append(func)
        node = node.node  # type: ignore[attr-defined]
    funcs.reverse()
    field_name = _fast_field(node)
    return None if field_name is None else (field_name, funcs)


def _compose(funcs: list[Callable[[Any], Any]]) -> Callable[[Any], Any] | None:
    if not funcs:
        return None
    if len(funcs) == 1:
        return funcs[0]

    def composed(value: Any) -> Any:
        for func in funcs:
            value = func(value)
        return value

    return composed


def _undefined(field_name: str) -> str:
    """What a variable says of a field its row lacks (the fast paths and the sandbox alike)."""
    return f"{field_name!r} is undefined (the row has no such field)"


def _render_chain(
    variable: str,
    field_name: str,
    funcs: list[Callable[[Any], Any]],
    fallback: Callable[[Mapping[str, Any]], str],
) -> Callable[[Mapping[str, Any]], str]:
    """`{{ field | f | g … }}` as one function of the row: it runs once per variable and
    row, the bulk of a large import's own work. `first_value`, the most common filter,
    is written out in place (the same test and result as `_first_value`)."""
    first = bool(funcs) and funcs[0] is _first_value
    then = _compose(funcs[1:] if first else funcs)
    missing = _undefined(field_name)

    def render(row: Mapping[str, Any]) -> str:
        try:
            value = row[field_name]
        except KeyError:
            raise RowError(missing, field=variable) from None
        if first and isinstance(value, list):
            value = value[0] if value else ""
        try:
            if then is not None:
                value = then(value)
            return value if value.__class__ is str else _as_text(value)
        except Exception:
            # A filter given what it cannot take: the sandbox says what that is.
            return fallback(row)

    return render


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


def _text(value: Any) -> str:
    # What `_output` gives for the value (its budget checks aside).
    return value if value.__class__ is str else _as_text(value)


def _fast_renderer(parts: list[str | Value]) -> Callable[[Mapping[str, Any]], str]:
    """The text of the parts; raises what the parts raise."""
    if not parts:
        return lambda row: ""
    if len(parts) == 1:
        only = parts[0]
        if isinstance(only, str):
            return lambda row: only
        return lambda row: _text(only(row))
    pieces = [p if isinstance(p, str) else None for p in parts]
    values = [(i, p) for i, p in enumerate(parts) if not isinstance(p, str)]

    def render(row: Mapping[str, Any]) -> str:
        out = pieces.copy()
        for i, value in values:
            out[i] = _text(value(row))
        return "".join(out)  # type: ignore[arg-type]

    return render


def compile_variable(name: str, text: str, *, fast: bool = True) -> Expression:
    """Compile one variable template; a syntax error names the variable.

    Templates made only of text, fields, `a or b` and arg-less filters (nearly every
    variable there is) are evaluated by plain Python calls instead of a sandboxed
    render, which costs a few microseconds a field and dominates a large import. The
    result is the same text; a row on which the fast path fails in any way other than a
    missing field is rendered through the sandbox, which then gives the value or the
    error. `fast=False` always renders through the sandbox (to compare the two)."""
    with _compiling(name, text):
        ast = _ENV.parse(text)
        loop_charge = guard(ast)
        ast.set_environment(_ENV)
        fields = _referenced_fields(ast)
        pure = _is_pure(ast)
        template = _ENV.from_string(ast)

    def render(row: Mapping[str, Any]) -> str:
        token = budget_start(loop_charge)
        try:
            out = template.render({**row, ROW_NAME: row})
        except (*_ROW_ERRORS, RecursionError, MemoryError) as exc:
            raise _evaluation_error(name, exc) from None
        finally:
            budget_stop(token)
        if len(out) > MAX_SIZE:
            raise RowError(str(too_large()), field=name)
        return out

    chain = _chain_of(ast) if fast else None
    if chain is not None:
        return Expression(name, text, fields, _render_chain(name, *chain, render), pure)
    parts = _fast_parts(ast) if fast else None
    if parts is None:
        return Expression(name, text, fields, render, pure)
    if len(parts) == 1 and not isinstance(parts[0], str):
        # One expression, the usual variable: its value's text without a further call.
        only = parts[0]

        def render_one(row: Mapping[str, Any]) -> str:
            try:
                value = only(row)
                return value if value.__class__ is str else _as_text(value)
            except _Missing as exc:
                raise RowError(_undefined(exc.name), field=name) from None
            except Exception:
                # A filter given what it cannot take: the sandbox says what that is.
                return render(row)

        return Expression(name, text, fields, render_one, pure)
    fast_render = _fast_renderer(parts)

    def render_fast(row: Mapping[str, Any]) -> str:
        try:
            return fast_render(row)
        except _Missing as exc:
            raise RowError(_undefined(exc.name), field=name) from None
        except Exception:
            # A filter given what it cannot take: the sandbox says what that is.
            return render(row)

    return Expression(name, text, fields, render_fast, pure)


def compile_prefilter(text: str) -> Expression | None:
    """Compile the pre-filter: a boolean expression; empty means every row passes."""
    if not text or not text.strip():
        return None
    source = text.strip()
    with _compiling("pre-filter", source):
        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            lineno = parser.stream.current.lineno
            raise jinja2.TemplateSyntaxError("chunk after expression", lineno, None, None)
        # What Environment.compile_expression builds, checked and rewritten for the budget.
        assign = nodes.Assign(nodes.Name("result", "store"), expr)
        tree = nodes.Template([assign], lineno=1)
        loop_charge = guard(tree)  # rewrites assign.node
        tree.set_environment(_ENV)
        output = nodes.Template([nodes.Output([assign.node])])
        output.set_environment(_ENV)
        fields = _referenced_fields(output)
        pure = _is_pure(output)
        evaluate = TemplateExpression(_ENV.from_string(tree), undefined_to_none=False)

    def render(row: Mapping[str, Any]) -> str:
        token = budget_start(loop_charge)
        try:
            return "1" if evaluate({**row, ROW_NAME: row}) else ""
        except (*_ROW_ERRORS, RecursionError, MemoryError) as exc:
            raise _evaluation_error("pre-filter", exc) from None
        finally:
            budget_stop(token)

    return Expression("pre-filter", source, fields, render, pure)


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
        """The compiled mapper of these variables and pre-filter. The same texts give the
        same mapper object, compiled once per process (a scheduled run of an unchanged
        profile would otherwise compile its variables each time, ~10 ms): a mapper is
        never changed after compiling, and evaluations share nothing but it."""
        return _compiled(tuple(variables.items()), prefilter)

    def fields_used(self) -> set[str]:
        used: set[str] = set()
        for e in self.variables.values():
            used |= e.fields
        if self.prefilter:
            used |= self.prefilter.fields
        return used

    @property
    def pure(self) -> bool:
        """Whether every variable and the pre-filter are functions of the row alone."""
        expressions = list(self.variables.values())
        if self.prefilter is not None:
            expressions.append(self.prefilter)
        return all(e.pure for e in expressions)

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


@functools.lru_cache(maxsize=64)
def _compiled(variables: tuple[tuple[str, str], ...], prefilter: str) -> RowMapper:
    return RowMapper(
        {name: compile_variable(name, text) for name, text in variables},
        compile_prefilter(prefilter),
    )


def check_expression(name: str, text: str) -> None:
    """Raise ExpressionError now, when a variable or pre-filter is set, not mid-run."""
    if name == "pre-filter":
        compile_prefilter(text)
    else:
        compile_variable(name, text)
