"""The budget of an expression: how much time, memory and work one evaluation may use.

A pre-filter or variable runs once per row in Jinja2's sandbox. The sandbox keeps an
expression away from Python's internals, not from the machine's limits: a `range` inside
a `range`, `'a'.ljust(10**9)`, `'%.1000000000f' % 1` or a string doubled in a loop would
hang a run or exhaust the memory. So every evaluation gets a budget, checked from the
sandbox's hooks (calls, attribute and item access, operators, filters, loop steps and
output) and from a few rewrites of the parsed expression (loops, `~`, list literals):

- time: at most MAX_SECONDS of wall-clock time;
- size: no string, list or mapping over MAX_SIZE (characters, counting a list by the text
  of its items), no integer over MAX_INT_BITS bits, no width or count over MAX_SIZE;
- work: at most MAX_BUILT characters built in all, at most MAX_ITERATIONS loop steps;
- depth: calls (macros) nested at most MAX_DEPTH deep, data nested at most MAX_DEPTH deep,
  the expression itself nested at most MAX_NESTING deep and at most MAX_TEXT long.

Where the cost of a step can be known before it runs (widths, `%` and `str.format`
specifications, joins, replacements, powers), it is checked before; otherwise the result
is checked after. Going over a limit raises LimitExceeded, a SecurityError of the sandbox,
which mapping.py reports as a RowError (or an ExpressionError while compiling).
"""

from __future__ import annotations

import re
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar, Token
from functools import wraps
from string import Formatter
from time import monotonic
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import FilterArgumentError, SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

#: Wall-clock seconds one expression may take on one row.
MAX_SECONDS = 1.0
#: The largest string, list or mapping any step may build: characters, with a list
#: counted by its length plus the sizes of its items. Also the largest width or count.
MAX_SIZE = 100_000
#: Everything one evaluation builds, added up (output included).
MAX_BUILT = 1_000_000
#: Loop steps one evaluation may take, all loops together.
MAX_ITERATIONS = 100_000
#: The largest integer, in bits (below the 4300 digits Python still prints).
MAX_INT_BITS = 14_000
#: The largest exponent of `**`.
MAX_EXPONENT = 100
#: How deep calls (macros, recursive loops) and data (lists in lists) may nest.
MAX_DEPTH = 20
#: How deep the parsed expression may nest (brackets, filters, operators, blocks).
MAX_NESTING = 60
#: The longest expression, in characters: compiling costs time and memory in proportion
#: (some milliseconds and a few MiB per thousand characters).
MAX_TEXT = 10_000

#: Internal filters the compiled expression calls; the names cannot be written as filters.
LOOP_FILTER = "budget loop"
CONCAT_FILTER = "budget concat"
CHECK_FILTER = "budget check"


class LimitExceeded(SecurityError):
    """An expression went over its budget: time, size, loop steps or depth."""


def _number(value: int) -> str:
    """An integer for a message (printing a huge one would itself fail)."""
    return str(value) if value.bit_length() <= 64 else f"a {value.bit_length()}-bit number"


def too_large(what: str = "the result") -> LimitExceeded:
    return LimitExceeded(f"{what} would be too large (over {MAX_SIZE})")


def built_too_much() -> LimitExceeded:
    return LimitExceeded(f"the expression built too much (over {MAX_BUILT} characters)")


class Budget:
    """What one evaluation of one expression has used so far."""

    __slots__ = ("built", "deadline", "depth", "iterations", "loop_charge")

    def __init__(self, loop_charge: int = 0) -> None:
        self.deadline = monotonic() + MAX_SECONDS
        self.built = 0
        self.iterations = 0
        self.depth = 0
        #: Characters of template text a recursive loop step may output.
        self.loop_charge = loop_charge

    def tick(self) -> None:
        if monotonic() > self.deadline:
            raise LimitExceeded(f"the expression took longer than {MAX_SECONDS:g} s")

    def charge(self, size: int) -> None:
        self.built += size
        if self.built > MAX_BUILT:
            raise built_too_much()

    def take(self, value: Any) -> Any:
        """Check and count a value a step built; a lazy sequence is checked item by item."""
        cls = value.__class__
        if cls is str:
            size = len(value)
        elif cls not in _PLAIN and isinstance(value, Iterator):
            if isinstance(value, _Items | LoopContext):
                return value
            return _Items(value)
        else:
            size = size_of(value)
        if size > MAX_SIZE:
            raise too_large()
        self.built += size
        if self.built > MAX_BUILT:
            raise built_too_much()
        return value

    def step(self, charge: int) -> None:
        """One loop step, which may output `charge` characters of template text."""
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise LimitExceeded(f"the loops ran too often (over {MAX_ITERATIONS} steps)")
        if monotonic() > self.deadline:
            self.tick()
        if charge:
            self.charge(charge)


_PLAIN = frozenset({str, bytes, int, float, bool, list, tuple, dict, type(None)})

_ACTIVE: ContextVar[Budget | None] = ContextVar("pbx_connector_expression_budget", default=None)


def start(loop_charge: int = 0) -> Token[Budget | None]:
    """Give the evaluation about to run (in this thread or task) a fresh budget."""
    return _ACTIVE.set(Budget(loop_charge))


def stop(token: Token[Budget | None]) -> None:
    _ACTIVE.reset(token)


def current() -> Budget:
    """The running evaluation's budget (a fresh one for a step run outside of any)."""
    return _ACTIVE.get() or Budget()


# --- sizes -------------------------------------------------------------------------------


def _int_size(value: int) -> int:
    bits = value.bit_length()
    if bits > MAX_INT_BITS:
        raise LimitExceeded(f"the number would be too large (over {MAX_INT_BITS} bits)")
    return bits // 3 + 1  # about its decimal digits


def _items_size(items: Iterable[Any], count: int, depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise LimitExceeded(f"the value is nested too deeply (over {MAX_DEPTH} levels)")
    total = count
    for item in items:
        total += len(item) if item.__class__ is str else size_of(item, depth + 1)
        if total > MAX_SIZE:
            break  # too large already: no need to look further
    return total


def _mapping_size(mapping: Mapping[Any, Any], depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise LimitExceeded(f"the value is nested too deeply (over {MAX_DEPTH} levels)")
    total = len(mapping)
    for key, item in mapping.items():
        total += size_of(key, depth + 1) + size_of(item, depth + 1)
        if total > MAX_SIZE:
            break
    return total


def size_of(value: Any, depth: int = 0) -> int:
    """About the length of a value's text: a list counts its items and their sizes, so a
    list that refers to one large string many times is large. Raises LimitExceeded for an
    integer over MAX_INT_BITS or data nested over MAX_DEPTH deep."""
    cls = value.__class__
    if cls is str or cls is bytes:
        return len(value)
    if cls is int:
        return _int_size(value)
    if cls is list or cls is tuple:
        return _items_size(value, len(value), depth)
    if cls is dict:
        return _mapping_size(value, depth)
    if value is None or cls is bool or cls is float:
        return 1
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, int):
        return _int_size(value)
    if isinstance(value, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
        return _items_size(value, len(value), depth)
    if isinstance(value, Mapping):
        return _mapping_size(value, depth)
    if isinstance(value, Namespace):
        attrs = getattr(value, "_Namespace__attrs", None)
        return _mapping_size(attrs, depth) if isinstance(attrs, Mapping) else 1
    return 1


def need(size: int, what: str = "the result") -> None:
    if size > MAX_SIZE:
        raise too_large(what)


def check_width(value: Any, what: str = "width") -> int:
    """A width, count or length argument: an int at most MAX_SIZE (others pass through)."""
    if isinstance(value, int) and not -MAX_SIZE <= value <= MAX_SIZE:
        raise LimitExceeded(f"the {what} {_number(value)} is too large (at most {MAX_SIZE})")
    return value if isinstance(value, int) else 0


# --- operators ---------------------------------------------------------------------------

_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.DOTALL)


def _spec_number(digits: str) -> int:
    return int(digits) if len(digits) <= 9 else 10**9


def printf_size(fmt: str | bytes, values: Any) -> int:
    """An upper estimate of the length of `fmt % values`, widths and precisions included."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    args = values if isinstance(values, tuple) else (values,)
    total = len(text) + size_of(values)  # each positional value is used once
    biggest = -1  # the largest value of a mapping, found when a `%(key)s` needs it
    used = 0
    for match in _PRINTF.finditer(text):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        for part in (width, precision):
            if part == "*":
                star = args[used] if used < len(args) else 0
                used += 1
                total += abs(star) if isinstance(star, int) else 0
            elif part:
                total += _spec_number(part)
        if key is None:
            used += 1
        else:
            if biggest < 0:
                items = values.values() if isinstance(values, Mapping) else ()
                biggest = max((size_of(item) for item in items), default=0)
            total += biggest
        if total > MAX_SIZE:
            break
    return total


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `*`, `**` and `%` whose result would be too large, before they run."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if (
                isinstance(seq, str | bytes | list | tuple)
                and isinstance(times, int)
                and times > 0
                and size_of(seq) * times > MAX_SIZE
            ):
                raise too_large()
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS
        ):
            raise LimitExceeded(f"the number would be too large (over {MAX_INT_BITS} bits)")
    elif operator == "**":
        if isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise LimitExceeded(
                f"the exponent {_number(right)} is too large (at most {MAX_EXPONENT})"
            )
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and left.bit_length() * right > MAX_INT_BITS
        ):
            raise LimitExceeded(f"the number would be too large (over {MAX_INT_BITS} bits)")
    elif operator == "%" and isinstance(left, str | bytes):
        need(printf_size(left, right), "the formatted text")


# --- str.format --------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


class _FieldBudget(Formatter):
    """`str.format` with each field's width and precision checked and its text counted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = current()
        budget.tick()
        if sum(_spec_number(d) for d in _DIGITS.findall(str(format_spec))) > MAX_SIZE:
            raise too_large(f"the field {{:{format_spec}}}")
        text = super().format_field(value, format_spec)
        budget.charge(len(text))
        return text


class _BudgetFormatter(_FieldBudget, SandboxedFormatter):
    pass


class _BudgetEscapeFormatter(_FieldBudget, SandboxedEscapeFormatter):
    pass


def str_format(environment: Any, value: Any) -> Callable[..., str] | None:
    """The sandbox's `str.format` / `format_map` wrapper, with a budget formatter."""
    if not isinstance(value, MethodType | BuiltinMethodType) or value.__name__ not in (
        "format",
        "format_map",
    ):
        return None
    owner = value.__self__
    if not isinstance(owner, str):
        return None
    formatter: SandboxedFormatter
    if isinstance(owner, Markup):
        formatter = _BudgetEscapeFormatter(environment, escape=owner.escape)
    else:
        formatter = _BudgetFormatter(environment)
    str_type = type(owner)
    is_format_map = value.__name__ == "format_map"

    @wraps(value)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_format_map:
            if kwargs:
                raise TypeError("format_map() takes no keyword arguments")
            if len(args) != 1:
                raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
            kwargs = args[0]
            args = ()
        return str_type(formatter.vformat(owner, args, kwargs))

    return wrapper


# --- lazy sequences and loops ------------------------------------------------------------


class _Items:
    """A lazy sequence a filter returned (`map`, `select`, `batch`…), checked per item."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items

    def __iter__(self) -> _Items:
        return self

    def __next__(self) -> Any:
        item = next(self._items)
        budget = current()
        budget.tick()
        return budget.take(item)

    def __repr__(self) -> str:
        return repr(self._items)


class _Loop:
    """What a `{% for %}` iterates: the sequence, one budget step per item."""

    __slots__ = ("_charge", "_items")

    def __init__(self, items: Any, charge: int) -> None:
        self._items = items
        self._charge = charge

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        budget = current()
        charge = self._charge
        for item in self._items:
            budget.step(charge)
            yield item

    def __repr__(self) -> str:
        return repr(self._items)


def loop(items: Any, charge: int = 0) -> _Loop:
    return _Loop(items, charge)


def _materialise(items: Any) -> Any:
    """A list of an iterable's items (sequences as they are), at most MAX_SIZE of them."""
    if isinstance(items, str | bytes | list | tuple):
        return items
    out = []
    budget = current()
    for item in items:
        out.append(item)
        if len(out) > MAX_SIZE:
            raise too_large("the list")
        if len(out) % 1024 == 0:
            budget.tick()
    return out


def concat(*values: Any) -> str:
    """`a ~ b ~ c`, stopping as soon as the text would be too large."""
    budget = current()
    budget.tick()
    parts = []
    total = 0
    for value in values:
        text = str(value)
        total += len(text)
        if total > MAX_SIZE:
            raise too_large("the joined text")
        parts.append(text)
    budget.charge(total)
    return "".join(parts)


def check(value: Any) -> Any:
    """A list, tuple or dict literal with computed items."""
    return current().take(value)


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's `lipsum`, refused when it would write too much."""
    paragraphs = check_width(n, "number of paragraphs")
    words = check_width(max, "number of words")
    need(paragraphs * words * 12 if paragraphs > 0 and words > 0 else 0, "the lorem ipsum")
    return generate_lorem_ipsum(n, html, min, max)


# --- method calls ------------------------------------------------------------------------


def _replace_size(text: Any, old: Any, new: Any, count: Any) -> int:
    times = len(text) // len(old) if len(old) else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * len(new)


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a method of a string, bytes or integer before it runs: widths,
    counts and lengths at most MAX_SIZE, and the size of what `replace`, `join`,
    `expandtabs` and `translate` build. Returns the arguments to call with."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str | bytes | int):
        return args
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int):
            check_width(arg, "argument")
    if isinstance(owner, int):
        return args
    name = getattr(obj, "__name__", "")
    if name == "replace" and len(args) >= 2:
        count = _arg(args, kwargs, 2, "count")
        need(_replace_size(owner, args[0], args[1], count), "the replaced text")
    elif name == "join" and args:
        items = _materialise(args[0])
        sizes = sum(size_of(item) for item in items)
        need(len(items) * len(owner) + sizes, "the joined text")
        return (items, *args[1:])
    elif name == "expandtabs":
        tabsize = _arg(args, kwargs, 0, "tabsize")
        tabs = owner.count("\t" if isinstance(owner, str) else b"\t")  # type: ignore[arg-type]
        need(len(owner) + tabs * (tabsize if isinstance(tabsize, int) else 8), "the text")
    elif name == "translate" and args:
        table = args[0]
        values = table.values() if isinstance(table, Mapping) else table
        longest = 1
        if isinstance(values, Iterable) and not isinstance(values, str | bytes):
            longest = max((size_of(v) for v in values), default=1)
        need(len(owner) * longest, "the translated text")
    return args


# --- filters -----------------------------------------------------------------------------

Args = tuple[Any, ...]
#: Checks a filter's arguments before it runs; the arguments to run it with instead, if any.
Precheck = Callable[[Args, dict[str, Any]], Args | None]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _center(args: Args, kwargs: dict[str, Any]) -> Args | None:
    check_width(_arg(args, kwargs, 1, "width"))
    return None


def _indent(args: Args, kwargs: dict[str, Any]) -> Args | None:
    text, width = args[0], _arg(args, kwargs, 1, "width")
    size = len(width) if isinstance(width, str) else check_width(width) if width else 4
    if isinstance(text, str):
        need(len(text) + (text.count("\n") + 2) * size, "the indented text")
    return None


def _wordwrap(args: Args, kwargs: dict[str, Any]) -> Args | None:
    text = args[0]
    width = check_width(_arg(args, kwargs, 1, "width"))
    wrapstring = _arg(args, kwargs, 3, "wrapstring")
    if isinstance(text, str) and width > 0:
        lines = min(len(text), 2 * len(text) // width + text.count("\n")) + 1
        need(len(text) + lines * len(_text(wrapstring or "\n")), "the wrapped text")
    return None


def _replace(args: Args, kwargs: dict[str, Any]) -> Args | None:
    if len(args) >= 3:
        text, new = args[0], args[2]
        small = isinstance(text, str) and isinstance(new, str)
        if small and (len(text) + 1) * (len(new) + 1) <= MAX_SIZE:
            return None  # small enough whatever is replaced
        count = _arg(args, kwargs, 3, "count")
        text, old, new = _text(args[0]), _text(args[1]), _text(args[2])
        need(_replace_size(text, old, new, count), "the replaced text")
    return None


def _truncate(args: Args, kwargs: dict[str, Any]) -> Args | None:
    # Jinja checks these with `assert`; say it as an error of the expression instead.
    length, end = _arg(args, kwargs, 1, "length"), _arg(args, kwargs, 3, "end")
    leeway = _arg(args, kwargs, 4, "leeway")
    shortest = len(end) if isinstance(end, str) else 3
    if isinstance(length, int) and length < shortest:
        raise FilterArgumentError(f"truncate: the length must be at least {shortest}")
    if isinstance(leeway, int) and leeway < 0:
        raise FilterArgumentError("truncate: the leeway must not be negative")
    return None


def _join(args: Args, kwargs: dict[str, Any]) -> Args | None:
    items = _materialise(args[0])
    separator = _arg(args, kwargs, 1, "d")
    sizes = sum(size_of(item) for item in items)
    need(len(items) * len(_text(separator or "")) + sizes, "the joined text")
    return (items, *args[1:])


def _format(args: Args, kwargs: dict[str, Any]) -> Args | None:
    need(printf_size(_text(args[0]), kwargs or args[1:]), "the formatted text")
    return None


def _batch(args: Args, kwargs: dict[str, Any]) -> Args | None:
    check_width(_arg(args, kwargs, 1, "linecount"), "batch size")
    return None


def _slice(args: Args, kwargs: dict[str, Any]) -> Args | None:
    check_width(_arg(args, kwargs, 1, "slices"), "number of slices")
    return None


def _depth_of(value: Any, depth: int = 0) -> int:
    if depth >= MAX_DEPTH:
        return depth
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple) and value:
        return max(_depth_of(item, depth + 1) for item in value[:MAX_SIZE])
    return depth


def _tojson(args: Args, kwargs: dict[str, Any]) -> Args | None:
    indent = _arg(args, kwargs, 1, "indent")
    if indent is not None:
        size = len(indent) if isinstance(indent, str) else check_width(indent, "indent")
        value = args[0]
        need(size_of(value) * (2 + size * (_depth_of(value) + 1)), "the JSON text")
    return None


def _urlize(args: Args, kwargs: dict[str, Any]) -> Args | None:
    text = _text(args[0])
    extra = sum(len(_text(_arg(args, kwargs, i, n) or "")) for i, n in ((3, "target"), (4, "rel")))
    need(6 * len(text) + (len(text.split()) + 1) * (80 + extra), "the text with links")
    return None


def _sum(args: Args, kwargs: dict[str, Any]) -> Args | None:
    start = _arg(args, kwargs, 2, "start")
    if start is None or isinstance(start, int | float):
        return None
    # Adding lists copies the sum so far each time: count that work.
    items = _materialise(args[0])
    total = size_of(start) + sum(size_of(item) for item in items)
    need(total, "the sum")
    current().charge(len(items) * total)
    return (items, *args[1:])


_PRECHECKS: dict[str, Precheck] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": _replace,
    "truncate": _truncate,
    "join": _join,
    "format": _format,
    "batch": _batch,
    "slice": _slice,
    "tojson": _tojson,
    "urlize": _urlize,
    "sum": _sum,
}


#: Filters that need no budget: quick, with a result at most a few times the size of their
#: value and no larger when applied again (so a chain of them cannot grow either).
_PLAIN_FILTERS = frozenset(
    {"lower", "upper", "trim", "title", "capitalize", "string", "safe", "e", "escape",
     "striptags", "length", "count", "wordcount", "int", "float", "abs", "round",
     "first", "last", "default", "d", "first_value", "values", "digits", "extension"}
)  # fmt: skip


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    if name in _PLAIN_FILTERS:
        return func
    precheck = _PRECHECKS.get(name)
    # A filter marked pass_context/pass_eval_context/pass_environment gets that first.
    skip = 0 if getattr(func, "jinja_pass_arg", None) is None else 1

    if precheck is None:

        @wraps(func)  # copies jinja_pass_arg too
        def run(*args: Any, **kwargs: Any) -> Any:
            budget = _ACTIVE.get() or Budget()
            if monotonic() > budget.deadline:
                budget.tick()
            return budget.take(func(*args, **kwargs))

        return run

    @wraps(func)
    def run_checked(*args: Any, **kwargs: Any) -> Any:
        budget = _ACTIVE.get() or Budget()
        if monotonic() > budget.deadline:
            budget.tick()
        if len(args) > skip:
            checked = precheck(args[skip:], kwargs)
            if checked is not None:
                args = (*args[:skip], *checked)
        return budget.take(func(*args, **kwargs))

    return run_checked


def guard_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Each filter checked: its width and count arguments before it runs, the time, and
    the size of its result after (a lazy result item by item); plus the internal filters
    the rewritten expression calls."""
    guarded = {name: _guarded(name, func) for name, func in filters.items()}
    guarded.update({LOOP_FILTER: loop, CONCAT_FILTER: concat, CHECK_FILTER: check})
    return guarded


# --- the parsed expression ---------------------------------------------------------------


def _filter(node: nodes.Node, name: str, args: list[nodes.Expr]) -> nodes.Filter:
    return nodes.Filter(node, name, args, [], None, None, lineno=node.lineno)


def _literal(node: nodes.Node) -> bool:
    """A literal made only of constants (its size is bounded by the expression's text)."""
    if isinstance(node, nodes.Const):
        return True
    if isinstance(node, nodes.List | nodes.Tuple | nodes.Dict | nodes.Pair):
        return all(_literal(child) for child in node.iter_child_nodes())
    return False


def _text_size(node: nodes.Node) -> int:
    return sum(len(data.data) for data in node.find_all(nodes.TemplateData))


class _Guard(NodeTransformer):
    """Route what the sandbox has no hook for through the budget: each loop step, each
    `~` concatenation, and each list, tuple or dict literal with computed items."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        # Each step may output the loop's text again: count that against the budget.
        node.iter = _filter(node.iter, LOOP_FILTER, [nodes.Const(_text_size(node))])
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        first, *rest = node.nodes
        return _filter(first, CONCAT_FILTER, rest)

    def _checked(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return node if _literal(node) else _filter(node, CHECK_FILTER, [])

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._checked(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._checked(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":  # an assignment target
            return self.generic_visit(node)
        return self._checked(node)


def nesting(tree: nodes.Node) -> int:
    """How deep a parsed expression nests (counted without recursion)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def guard(tree: nodes.Template) -> int:
    """Check how deep the parsed expression nests and rewrite it in place for the budget;
    the number of characters of text it holds (what a recursive loop step may output)."""
    if nesting(tree) > MAX_NESTING:
        raise LimitExceeded(f"the expression is nested too deeply (over {MAX_NESTING} levels)")
    _Guard().visit(tree)
    return _text_size(tree)
