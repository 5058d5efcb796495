"""Expressions that try to exhaust the machine: nested loops, huge widths and precisions,
strings doubled in a loop, towers of powers, runaway macros, expressions nested too deep
to compile. Each must fail on its row (RowError) or when it is compiled (ExpressionError),
with a message that says what was too much; never hang, never crash, never a traceback.

Every attack runs in a forked child with about 1 GiB more address space than this process
uses and a 20 s timeout, so that a regression fails its test instead of hanging CI or
swapping the machine. The budget itself is a second per expression and row, so an attack
that passes is done long before the timeout.
"""

from __future__ import annotations

import multiprocessing
import resource
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_connector.errors import ExpressionError, RowError
from pbx_connector.expression_budget import MAX_TEXT
from pbx_connector.mapping import RowMapper, check_expression

TIMEOUT = 20.0
MEMORY = 1 << 30
#: What an evaluation may add to the peak memory: the budget keeps it to a few MiB.
GROWTH = 128 << 20

ROW: dict[str, Any] = {
    "givenname": "Max",
    "surname": "Muster",
    "mail": ["max@example.com", "m.muster@example.com"],
    "company": "",
    "phone": "+49 991 12345-100",
}

Outcome = tuple[str, str, str]  # (what happened, in which phase, message or value)


def _limit_memory() -> None:
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = used + MEMORY if hard == resource.RLIM_INFINITY else min(used + MEMORY, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _evaluate(variables: dict[str, str], prefilter: str) -> Outcome:
    phase = "compile"
    try:
        mapper = RowMapper.compile(variables, prefilter)
        phase = "evaluate"
        values = mapper.apply(ROW) if mapper.accepts(ROW) else {}
        return ("ok", phase, repr(values)[:300])
    except (ExpressionError, RowError) as exc:
        return (type(exc).__name__, phase, str(exc)[:2000])


def _check(name: str, text: str) -> Outcome:
    try:
        check_expression(name, text)
        return ("ok", "compile", "")
    except ExpressionError as exc:
        return ("ExpressionError", "compile", str(exc)[:2000])


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(conn: Connection, work: Callable[..., Outcome], args: tuple[Any, ...]) -> None:
    try:
        _limit_memory()
        before = _peak_rss()
        outcome = work(*args)
        grown = _peak_rss() - before
        if grown > GROWTH:
            outcome = ("memory", outcome[1], f"the peak memory grew by {grown >> 20} MiB")
    except BaseException as exc:  # what the test is about: anything else is a failure
        outcome = ("crash", "", f"{type(exc).__name__}: {exc}"[:500] + traceback.format_exc())
    conn.send(outcome)
    conn.close()


def isolated(work: Callable[..., Outcome], *args: Any, timeout: float = TIMEOUT) -> Outcome:
    """Run `work(*args)` in a forked child with limited memory; its outcome, "memory" when
    its peak memory grew by more than GROWTH, or what went wrong with the child (it hung
    or died)."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, work, args), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            return ("hang", "", f"no answer within {timeout:g} s")
        try:
            outcome: Outcome = receive.recv()
        except EOFError:
            child.join(5)
            return ("died", "", f"the child exited with {child.exitcode}")
        return outcome
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


def variable(text: str) -> Outcome:
    return isolated(_evaluate, {"displayname": text}, "")


def prefilter(text: str) -> Outcome:
    return isolated(_evaluate, {"displayname": "{{ surname }}"}, text)


TOO_LARGE = "too large"
LOOPS = "loops ran too often"
DEEP = "nested too deeply"
BUILT = "built too much"
SLOW = "took longer than"

# (id, variable, what the error says); each must fail when evaluated, not compiled.
VARIABLE_ATTACKS = [
    (
        "nested-ranges",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        LOOPS,
    ),
    (
        "nested-loops-over-one-range",
        "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% for k in r %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        LOOPS,
    ),
    ("tower-of-powers", "{{ (((10**100)**100)**100)**100 }}", TOO_LARGE),
    (
        "squaring-in-a-loop",
        "{% set ns = namespace(n=10**100) %}{% for i in range(20) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}{{ ns.n }}",
        TOO_LARGE,
    ),
    ("exponent", "{{ 2 ** 1000000000 }}", TOO_LARGE),
    ("lipsum-paragraphs", "{{ lipsum(1000000000) }}", TOO_LARGE),
    ("lipsum-words", "{{ lipsum(1, false, 1, 1000000000) }}", TOO_LARGE),
    ("lipsum-many-small", "{{ lipsum(50000, false, 1, 2) }}", TOO_LARGE),
    ("ljust", "{{ 'a'.ljust(1500000000) }}", TOO_LARGE),
    ("rjust", "{{ givenname.rjust(1000000000, '*') }}", TOO_LARGE),
    ("str-center", "{{ 'a'.center(1000000000) }}", TOO_LARGE),
    ("zfill", "{{ '1'.zfill(1000000000) }}", TOO_LARGE),
    ("expandtabs-width", "{{ 'a\\tb'.expandtabs(1000000000) }}", TOO_LARGE),
    ("expandtabs-many-tabs", "{{ ('\\t' * 100000).expandtabs(99999) }}", TOO_LARGE),
    ("bytes-ljust", "{{ 'a'.encode().ljust(1000000000) }}", TOO_LARGE),
    ("to-bytes", "{{ (5).to_bytes(1000000000, 'big') }}", TOO_LARGE),
    ("center-filter", "{{ 'a'|center(1500000000) }}", TOO_LARGE),
    ("indent-width", "{{ 'a\\nb'|indent(1500000000, true) }}", TOO_LARGE),
    ("indent-many-lines", "{{ ('a\\n' * 50000)|indent(100) }}", TOO_LARGE),
    ("indent-with-a-long-string", "{{ ('a\\n' * 50000)|indent('x' * 1000) }}", TOO_LARGE),
    ("format-filter-width", "{{ '%1000000000s'|format('x') }}", TOO_LARGE),
    ("format-filter-precision", "{{ '%.1000000000f'|format(1) }}", TOO_LARGE),
    ("percent-precision", "{{ '%.1000000000f' % 1 }}", TOO_LARGE),
    ("percent-zero-padding", "{{ '%01000000000d' % 1 }}", TOO_LARGE),
    ("percent-star-width", "{{ '%*d' % (1000000000, 1) }}", TOO_LARGE),
    ("percent-repeated-key", "{{ '%(a)s' * 20 % {'a': 'x' * 100000} }}", TOO_LARGE),
    ("str-format-width", "{{ '{:>1000000000}'.format(1) }}", TOO_LARGE),
    ("str-format-nested-width", "{{ '{:{}}'.format(1, 1000000000) }}", TOO_LARGE),
    ("str-format-precision", "{{ '{:.1000000000f}'.format(1) }}", TOO_LARGE),
    ("str-format-repeated-field", "{{ ('{0}' * 20).format('x' * 100000) }}", BUILT),
    ("format-map-repeated-key", "{{ ('{a}' * 20).format_map({'a': 'x' * 90000}) }}", BUILT),
    (
        "namespace-doubling",
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        TOO_LARGE,
    ),
    (
        "set-doubling",
        "{% set a = 'x' * 100000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c|length }}",
        TOO_LARGE,
    ),
    (
        "long-concatenation",
        "{% set a = 'x' * 50000 %}{{ (a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a)|length }}",
        TOO_LARGE,
    ),
    (
        "concatenation-in-a-loop",
        "{% set ns = namespace(s='') %}{% for i in range(100000) %}"
        "{% set ns.s = ns.s ~ 'x' * 100 %}{% endfor %}{{ ns.s|length }}",
        BUILT,
    ),
    (
        "list-doubling",
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}"
        "{% endfor %}{{ ns.l|length }}",
        TOO_LARGE,
    ),
    (
        "list-nesting",
        "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}"
        "{% endfor %}{{ ns.l }}",
        DEEP,
    ),
    ("list-of-references", "{{ ['x' * 100000] * 100000 }}", TOO_LARGE),
    (
        "list-literal-of-references",
        "{% set a = 'x' * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a, a]|join }}",
        TOO_LARGE,
    ),
    ("list-of-a-string", "{{ ('x' * 100000)|list|string }}", TOO_LARGE),
    ("fromkeys", "{{ {}.fromkeys(range(100000), 'x' * 100000) }}", TOO_LARGE),
    ("recursive-macro", "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", DEEP),
    (
        "macro-fan-out",
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}"
        "{{ m(19) }}",
        SLOW,
    ),
    (
        "caller-recursion",
        "{% macro m() %}{{ caller() }}{% endmacro %}"
        "{% macro r() %}{% call m() %}{{ r() }}{% endcall %}{% endmacro %}{{ r() }}",
        DEEP,
    ),
    (
        "recursive-loop",
        "{% for x in range(3) recursive %}{{ loop(range(3)) }}{% endfor %}",
        DEEP,
    ),
    (
        "block-recursion",
        "{% block b %}{{ self.b() }}{% endblock %}",
        DEEP,
    ),
    ("range-list", "{{ range(10**12)|list }}", "Range too big"),
    ("range-as-list", "{{ range(100000)|list }}", TOO_LARGE),
    ("batch-fill", "{{ 'x'|batch(1000000000, 'y')|list }}", TOO_LARGE),
    ("slice-count", "{{ range(10)|slice(1000000000)|list }}", TOO_LARGE),
    ("join-separator", "{{ range(100000)|join('x' * 100000) }}", TOO_LARGE),
    ("join-lazy-items", "{{ range(100000)|map('string')|join('x' * 1000) }}", TOO_LARGE),
    ("str-join", "{{ ('x' * 1000).join(range(100000)|map('string')) }}", TOO_LARGE),
    ("wordwrap-width", "{{ 'a b c'|wordwrap(1000000000) }}", TOO_LARGE),
    (
        "wordwrap-wrapstring",
        "{{ ('x ' * 50000)|wordwrap(1, wrapstring='y' * 100000) }}",
        TOO_LARGE,
    ),
    ("str-replace", "{{ ('x' * 100000).replace('', 'y' * 1000) }}", TOO_LARGE),
    ("replace-filter", "{{ ('x' * 100000)|replace('x', 'y' * 1000) }}", TOO_LARGE),
    ("translate", "{{ ('x' * 100000).translate({120: 'y' * 100000}) }}", TOO_LARGE),
    ("tojson-indent", "{{ [1, [2, [3]]]|tojson(1000000000) }}", TOO_LARGE),
    ("urlize-target", "{{ ('x ' * 50000)|urlize(target='y' * 100000) }}", TOO_LARGE),
    ("sum-of-lists", "{{ range(2000)|batch(1)|list|sum(start=[]) }}", BUILT),
    (
        "output-in-a-loop",
        "{% for i in range(100000) %}{{ 'x'|center(99999) }}{% endfor %}",
        BUILT,
    ),
    ("text-in-a-loop", "{% for i in range(100000) %}" + "X" * 1000 + "{% endfor %}", BUILT),
    (
        "captured-loop",
        "{% set x %}{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}"
        "{{ x|length }}",
        BUILT,
    ),
    (
        "filter-block-loop",
        "{% filter upper %}{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}{% endfilter %}",
        BUILT,
    ),
    (
        "slow-loop-body",
        "{% for i in range(50000) %}{{ range(100000)|sum % 2 }}{% endfor %}",
        SLOW,
    ),
    ("result-too-long", "{% for i in range(60000) %}{{ i }}{% endfor %}", TOO_LARGE),
    (
        "folded-at-compile-time",
        "{% autoescape 'a'|center(1500000000) %}x{% endautoescape %}",
        TOO_LARGE,
    ),
]


@pytest.mark.parametrize(
    ("text", "says"), [a[1:] for a in VARIABLE_ATTACKS], ids=[a[0] for a in VARIABLE_ATTACKS]
)
def test_variable_attack_fails_on_its_row(text: str, says: str) -> None:
    kind, phase, message = variable(text)
    assert (kind, phase) == ("RowError", "evaluate"), message
    assert message.startswith('field "displayname": ')
    assert says in message


PREFILTER_ATTACKS = [
    ("tower-of-powers", "(((10**100)**100)**100)**100 > 0", TOO_LARGE),
    ("ljust", "'a'.ljust(1500000000) == ''", TOO_LARGE),
    ("percent-precision", "('%.1000000000f' % 1) == ''", TOO_LARGE),
    ("str-format-width", "'{:>1000000000}'.format(1) != ''", TOO_LARGE),
    ("range-list", "range(10**12)|list|length > 0", "Range too big"),
    ("lipsum", "lipsum(1000000000) != ''", TOO_LARGE),
    ("join-lazy-items", "(range(100000)|map('string')|join('x' * 1000)) != ''", TOO_LARGE),
    ("concatenation", "('x' * 100000) ~ ('x' * 100000) == ''", TOO_LARGE),
    ("center", "surname|center(1000000000) == ''", TOO_LARGE),
    ("list-of-references", "(['x' * 100000] * 100000)|length > 0", TOO_LARGE),
]


@pytest.mark.parametrize(
    ("text", "says"), [a[1:] for a in PREFILTER_ATTACKS], ids=[a[0] for a in PREFILTER_ATTACKS]
)
def test_prefilter_attack_fails_on_its_row(text: str, says: str) -> None:
    kind, phase, message = prefilter(text)
    assert (kind, phase) == ("RowError", "evaluate"), message
    assert message.startswith('field "pre-filter": ')
    assert says in message


@pytest.mark.parametrize(
    "text",
    [
        "{{ 'a'|center(1500000000) }}",
        "{{ '%.1000000000f' % 1 }}",
        "{{ 'a'.ljust(1500000000) }}",
        "{{ (((10**100)**100)**100)**100 }}",
        "{{ lipsum(1000000000) }}",
        "{{ ('a'|center(99999) ~ 'b'|center(99999))|length }}",
        "{{ ('a'|center(99999)|center(99999)|center(99999)|center(99999))|length }}",
        "{% autoescape 'a'|center(1500000000) %}x{% endautoescape %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        # Fits in the memory limit, so only the growth check sees it being folded.
        "{{ 'a'|center(400000000) }}",
        "{{ ('%.400000000f' % 1)|length }}",
    ],
)
def test_setting_a_variable_does_not_evaluate_it(text: str) -> None:
    # Jinja folds constant parts of an expression while compiling it; here that must not
    # run the attack (or anything unbounded) when the variable is set.
    assert isolated(_check, "displayname", text) == ("ok", "compile", "")


@pytest.mark.parametrize(
    "text",
    [
        "'a'|center(1500000000) == ''",
        "('%.1000000000f' % 1) == ''",
        "(((10**100)**100)**100)**100 > 0",
        "'a'.ljust(1500000000) == ''",
    ],
)
def test_setting_a_prefilter_does_not_evaluate_it(text: str) -> None:
    assert isolated(_check, "pre-filter", text) == ("ok", "compile", "")


NESTED = 300

# (id, variable, what the error says); each must fail when it is compiled.
COMPILE_ATTACKS = [
    ("parentheses", "{{ " + "(" * NESTED + "x" + ")" * NESTED + " }}", DEEP),
    ("list-literals", "{{ " + "[" * NESTED + "]" * NESTED + " }}", DEEP),
    ("filter-chain", "{{ x" + "|lower" * NESTED + " }}", DEEP),
    ("additions", "{{ " + " + ".join(["x"] * 2000) + " }}", DEEP),
    ("attributes", "{{ x" + ".a" * 2000 + " }}", DEEP),
    ("negations", "{{ " + "not " * 2000 + "x }}", DEEP),
    ("ifs", "{% if x %}" * NESTED + "{% endif %}" * NESTED, DEEP),
    ("loops", "{% for a in x %}" * 30 + "{% endfor %}" * 30, DEEP),
    ("macros", "{% macro m() %}" * NESTED + "{% endmacro %}" * NESTED, DEEP),
    ("number-literal", "{{ " + "9" * 9000 + " }}", "number in it is too long"),
    ("long-text", "{{ x }}" * 2000, "too long"),
]


@pytest.mark.parametrize(
    ("text", "says"), [a[1:] for a in COMPILE_ATTACKS], ids=[a[0] for a in COMPILE_ATTACKS]
)
def test_compile_attack_is_refused_when_set(text: str, says: str) -> None:
    kind, phase, message = isolated(_check, "displayname", text)
    assert (kind, phase) == ("ExpressionError", "compile"), message
    assert message.startswith('field "displayname": ')
    assert says in message
    assert len(message) < 1000  # the expression is quoted, shortened
    # And the same from the mapper a run compiles.
    kind, phase, message = isolated(_evaluate, {"displayname": text}, "")
    assert (kind, phase) == ("ExpressionError", "compile"), message


@pytest.mark.parametrize(
    "text",
    ["(" * NESTED + "x" + ")" * NESTED, "not " * 2000 + "x", " or ".join(["x"] * 1500)],
    ids=["parentheses", "negations", "alternatives"],
)
def test_prefilter_compile_attack_is_refused_when_set(text: str) -> None:
    kind, phase, message = isolated(_check, "pre-filter", text)
    assert (kind, phase) == ("ExpressionError", "compile"), message
    assert message.startswith('field "pre-filter": ')
    assert DEEP in message


@pytest.mark.parametrize(
    "text",
    [
        " ~ ".join(["f(x)"] * (MAX_TEXT // 7 - 1)),
        "[" + ", ".join(["x"] * (MAX_TEXT // 3 - 3)) + "]",
        "f(" + ", ".join(["x|lower"] * (MAX_TEXT // 9 - 1)) + ")",
    ],
    ids=["concatenations", "list", "arguments"],
)
def test_the_longest_expression_compiles_within_the_budget(text: str) -> None:
    # Long is not deep: a thousand `~` are one node. Compiling costs memory in proportion
    # to the text, so the text has a limit; at that limit it stays within GROWTH.
    assert len(text) <= MAX_TEXT
    assert isolated(_check, "pre-filter", text) == ("ok", "compile", "")
    assert isolated(_check, "displayname", "{{ " + text + " }}") == ("ok", "compile", "")


def test_a_longer_expression_is_refused() -> None:
    kind, _, message = isolated(_check, "displayname", "{{ " + " ~ ".join(["x"] * 20000) + " }}")
    assert kind == "ExpressionError"
    assert "too long (80003 characters, at most 10000)" in message


def test_the_isolation_reports_a_hang_or_a_crash() -> None:
    # Without this the tests above could pass against a harness that hides failures.
    assert isolated(_crash)[0] == "crash"
    assert isolated(_big, 2 * MEMORY)[0] == "crash"  # MemoryError under the limit
    assert isolated(_big, 2 * GROWTH)[0] == "memory"
    assert isolated(_hang, timeout=0.5)[0] == "hang"


def _crash() -> Outcome:
    raise RuntimeError("boom")


def _big(size: int) -> Outcome:
    blob = b"x" * size
    return ("ok", "", str(len(blob)))


def _hang() -> Outcome:
    while True:
        pass


def test_expressions_within_the_budget_still_work_in_a_child() -> None:
    kind, _, values = variable("{{ 'x' * 9 }}{{ '%5.1f' % 2.25 }}{{ '{:>4}'.format(givenname) }}")
    assert (kind, values) == ("ok", repr({"displayname": "xxxxxxxxx  2.2 Max"}))


# --- random expressions ------------------------------------------------------------------

FIELDS = ["givenname", "surname", "mail", "company", "phone", "row['givenname']", "x"]
NUMBERS = ["0", "1", "3", "-1", "100", "99999", "100001", "10**5", "10**9", "2**62", "10**100"]
STRINGS = ["''", "'a'", "'x ' * 40", "'a\\tb\\n'", "'%s'", "'%.3f'", "'{}'", "'{:>7}'", "'-'"]
ATOMS = (
    FIELDS
    + NUMBERS
    + STRINGS
    + [
        "range(10)",
        "range(100000)",
        "[givenname, mail]",
        "{'a': surname}",
        "lipsum(2)",
        "('y' * 99999)",
    ]
)
ARGS = NUMBERS + STRINGS + ["givenname"]
FILTERS = [
    "lower", "upper", "list", "first", "last", "length", "string", "reverse", "sort", "unique",
    "sum", "tojson", "title", "trim", "int", "float", "abs", "first_value", "values",
    "digits", "extension", "striptags", "wordcount", "e", "forceescape", "urlencode",
    "pprint", "dictsort", "items", "max", "min", "safe", "capitalize", "urlize",
]  # fmt: skip
FILTERS_WITH_AN_ARG = [
    "center", "indent", "wordwrap", "truncate", "batch", "slice", "join", "format",
    "default", "tojson", "round", "map", "select", "reject", "sum",
]  # fmt: skip
METHODS = [
    "ljust", "rjust", "center", "zfill", "expandtabs", "split", "join", "format", "replace",
    "count", "startswith", "strip", "upper", "splitlines", "encode", "to_bytes", "index",
]  # fmt: skip
OPERATORS = ["~", "+", "-", "*", "**", "%", "//", "/", "==", "in", "and", "or"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    arg = st.one_of(st.sampled_from(ARGS), inner)
    return st.one_of(
        st.builds("({})|{}".format, inner, st.sampled_from(FILTERS)),
        st.builds("({})|{}({})".format, inner, st.sampled_from(FILTERS_WITH_AN_ARG), arg),
        st.builds("({}).{}({})".format, inner, st.sampled_from(METHODS), arg),
        st.builds("({}).{}()".format, inner, st.sampled_from(METHODS)),
        st.builds("({} {} {})".format, inner, st.sampled_from(OPERATORS), inner),
        st.builds("[{}, {}]".format, inner, inner),
        st.builds("({} if {} else {})".format, inner, inner, inner),
        st.builds("({})[{}:{}]".format, inner, st.sampled_from(NUMBERS), arg),
        st.builds("({})[{}]".format, inner, arg),
    )


expressions = st.recursive(st.sampled_from(ATOMS), _extend, max_leaves=6)

templates = st.one_of(
    st.builds("{{{{ {} }}}}".format, expressions),
    st.builds("{{% for x in {} %}}{{{{ {} }}}}{{% endfor %}}".format, expressions, expressions),
    st.builds(
        "{{% for x in {} %}}{{% for y in {} %}}{{{{ {} }}}}{{% endfor %}}{{% endfor %}}".format,
        expressions,
        expressions,
        expressions,
    ),
    st.builds(
        "{{% set ns = namespace(s={}) %}}{{% for i in range({}) %}}"
        "{{% set ns.s = ns.s ~ {} %}}{{% endfor %}}{{{{ ns.s }}}}".format,
        expressions,
        st.sampled_from(NUMBERS),
        expressions,
    ),
    st.builds(
        "{{% macro m(n) %}}{{{{ {} }}}}{{{{ m(n) if {} else '' }}}}{{% endmacro %}}"
        "{{{{ m({}) }}}}".format,
        expressions,
        expressions,
        expressions,
    ),
)


def _assert_bounded(outcome: Outcome, text: str) -> None:
    kind, _, message = outcome
    assert kind in {"ok", "RowError", "ExpressionError"}, f"{text}\n{message}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=templates)
def test_random_variables_render_or_fail_on_their_row(text: str) -> None:
    _assert_bounded(isolated(_evaluate, {"displayname": text}, ""), text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=expressions)
def test_random_prefilters_pass_or_fail_on_their_row(text: str) -> None:
    _assert_bounded(isolated(_evaluate, {"displayname": "{{ surname }}"}, text), text)
