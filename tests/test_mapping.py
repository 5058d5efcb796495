"""Variables and pre-filter: Jinja2 expressions over a row, in the sandbox."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_connector.errors import ConfigError, ExpressionError, RowError
from pbx_connector.mapping import (
    RowMapper,
    check_expression,
    compile_prefilter,
    compile_variable,
)

ROW: dict[str, Any] = {
    "givenname": "Max",
    "surname": "Muster",
    "Telefon geschäftlich": "0991 12345",
    "mail": ["max@example.com", "m.muster@example.com"],
    "company": "",
    "pager": None,
}


def render(text: str, row: dict[str, Any] = ROW) -> str:
    return compile_variable("v", text).render(row)


# --- rendering ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ givenname }} {{ surname }}", "Max Muster"),
        ("{{givenname}}", "Max"),
        ('{{ row["Telefon geschäftlich"] }}', "0991 12345"),
        ("{{ row['surname'] }}, {{ givenname }}", "Muster, Max"),
        ("{{ surname }} [{{ givenname }}]", "Muster [Max]"),
        ("plain text", "plain text"),
        ("", ""),
        ("  {{ givenname }}  ", "  Max  "),
        ("{{ givenname ~ surname }}", "MaxMuster"),
        ("{{ givenname|lower }}", "max"),
        ("{{ surname|upper }}", "MUSTER"),
        ("{{ givenname|replace('a', 'ä') }}", "Mäx"),
        ("{{ company|default('none', true) }}", "none"),
        ("{{ absent|default('fallback') }}", "fallback"),
        ("{{ pager }}", ""),
        ("{{ mail }}", "max@example.com, m.muster@example.com"),
        ("{{ mail|join('; ') }}", "max@example.com; m.muster@example.com"),
        ("{{ mail|first_value }}", "max@example.com"),
        ("{{ givenname|first_value }}", "Max"),
        ("{{ mail|values|length }}", "2"),
        ("{{ givenname|values|length }}", "1"),
        ("{{ company|values|length }}", "0"),
        ("{{ 'Sales' if company == '' else company }}", "Sales"),
        ("{% if surname %}{{ surname }}{% endif %}", "Muster"),
        ("{{ row['Telefon geschäftlich']|digits }}", "099112345"),
        ("{{ '+49 (991) 123-45 *7#'|digits }}", "+4999112345*7#"),
    ],
)
def test_render(text: str, expected: str) -> None:
    assert render(text) == expected


def test_empty_multi_valued_field_gives_empty_text() -> None:
    assert render("{{ mail|first_value }}", {"mail": []}) == ""
    assert render("{{ mail }}", {"mail": []}) == ""


def test_field_values_are_data_not_templates() -> None:
    row = {"f": "{{ 7 * 7 }} {% if true %}x{% endif %}", "g": "{{ f }}"}
    assert render("{{ f }}", row) == row["f"]
    assert render("{{ f|trim }}", row) == row["f"]
    assert render("{{ g }}-{{ g|lower }}", row) == "{{ f }}-{{ f }}"


def test_fields_named_like_jinja_globals_are_row_fields() -> None:
    row = {"range": "r", "namespace": "n", "cycler": "c"}
    assert render("{{ range }} {{ namespace }} {{ cycler }}", row) == "r n c"
    assert render("{{ range|upper }}", row) == "R"


# The fast path must render exactly as Jinja would; a value that is a list joins with ", ".
field_values = st.one_of(
    st.text(),
    st.sampled_from(["{{ x }}", "{%", "}}", "'", '"', "\\", "Zoë O'Brien", "Müller & Söhne"]),
    st.lists(st.text(max_size=10), max_size=4),
    st.none(),
)


@settings(max_examples=150, deadline=None)
@given(value=field_values, other=st.text(max_size=10))
def test_fast_path_and_jinja_render_the_same(value: Any, other: str) -> None:
    row = {"f": value, "Feld mit Leerzeichen": other}
    fast = compile_variable("v", '{{ f }} - {{ row["Feld mit Leerzeichen"] }}')
    # An `if` is no plain lookup, so this one renders through the sandbox.
    full = compile_variable(
        "v", '{% if true %}{{ f }} - {{ row["Feld mit Leerzeichen"] }}{% endif %}'
    )
    if value is None:
        text = ""
    elif isinstance(value, list):
        text = ", ".join(value)
    else:
        text = value
    assert fast.render(row) == full.render(row) == f"{text} - {other}"


def test_plain_lookups_do_not_render_through_jinja(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without this the test above could compare Jinja with itself.
    fast = compile_variable("v", "{{ givenname }} {{ row['surname'] }}!")
    full = compile_variable("v", "{{ givenname|replace('a', 'b') }}")

    def refuse(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("rendered through Jinja")

    monkeypatch.setattr(jinja2.Template, "render", refuse)
    assert fast.render(ROW) == "Max Muster!"
    with pytest.raises(AssertionError, match="through Jinja"):
        full.render(ROW)


# --- fields an expression reads ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("{{ givenname }} {{ surname }}", {"givenname", "surname"}),
        ('{{ row["Telefon geschäftlich"] }}', {"Telefon geschäftlich"}),
        ("{{ row.mail }}", {"mail"}),
        ("{{ mail|first_value|lower }}", {"mail"}),
        ("{% if company %}{{ company }}{% else %}{{ sn }}{% endif %}", {"company", "sn"}),
        ("{% for m in mail %}{{ m }}{% endfor %}", {"mail"}),
        ("{% set x = givenname %}{{ x }}", {"givenname"}),
        ("{% for i in range(2) %}{{ i }}{% endfor %}", set()),
        ("{{ row.keys()|list|length }}", set()),
        ("static", set()),
    ],
)
def test_fields_an_expression_reads(text: str, fields: set[str]) -> None:
    assert compile_variable("v", text).fields == fields


def test_row_attribute_renders_the_field() -> None:
    assert render("{{ row.givenname }}") == "Max"


def test_mapper_fields_used_and_missing() -> None:
    mapper = RowMapper.compile(
        {
            "displayname": "{{ givenname }} {{ surname }}",
            "phone": '{{ row["Telefon geschäftlich"] }}',
            "email": "{{ mail|first_value }}",
        },
        "department == 'Sales'",
    )
    assert mapper.fields_used() == {
        "givenname",
        "surname",
        "Telefon geschäftlich",
        "mail",
        "department",
    }
    assert mapper.missing_fields(["givenname", "surname", "mail"]) == [
        ("phone", "Telefon geschäftlich"),
        ("pre-filter", "department"),
    ]
    assert mapper.missing_fields(mapper.fields_used()) == []


def test_mapper_applies_every_variable_in_order() -> None:
    mapper = RowMapper.compile(
        {"displayname": "{{ surname }}, {{ givenname }}", "email": "{{ mail|first_value }}"}
    )
    values = mapper.apply(ROW)
    assert values == {"displayname": "Muster, Max", "email": "max@example.com"}
    assert list(values) == ["displayname", "email"]
    assert mapper.accepts(ROW)  # no pre-filter: every row


# --- errors ------------------------------------------------------------------------------


def test_missing_field_in_a_plain_lookup_names_the_field() -> None:
    expression = compile_variable("displayname", "{{ givenname }} {{ nickname }}")
    with pytest.raises(RowError) as info:
        expression.render(ROW)
    assert "nickname" in info.value.message


def test_missing_field_through_jinja_names_the_variable_and_the_field() -> None:
    expression = compile_variable("displayname", "{{ nickname|upper }}")
    with pytest.raises(RowError) as info:
        expression.render(ROW)
    assert info.value.field == "displayname"
    assert "'nickname' is undefined" in info.value.message


def test_runtime_error_in_an_expression_is_a_row_error() -> None:
    with pytest.raises(RowError) as info:
        render("{{ givenname + 1 }}")
    assert info.value.field == "v"


@pytest.mark.parametrize(
    "text",
    [
        "{{ givenname ",
        "{{ givenname }",
        "{% if %}",
        "{{ }}",
        "{% for x in %}{% endfor %}",
        "{{ a b }}",
    ],
)
def test_syntax_error_names_the_variable_at_compile_time(text: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_variable("displayname", text)
    assert info.value.field == "displayname"
    assert repr(text) in info.value.message
    assert str(info.value).startswith('field "displayname": ')
    assert isinstance(info.value, ConfigError)


def test_mapper_compile_reports_the_bad_variable() -> None:
    with pytest.raises(ExpressionError) as info:
        RowMapper.compile({"displayname": "{{ givenname }}", "phone": "{{ phone"})
    assert info.value.field == "phone"


def test_check_expression() -> None:
    check_expression("displayname", "{{ givenname }}")
    check_expression("pre-filter", "surname != ''")
    with pytest.raises(ExpressionError, match="displayname"):
        check_expression("displayname", "{{ givenname")
    with pytest.raises(ExpressionError) as info:
        check_expression("pre-filter", "surname ==")
    assert info.value.field == "pre-filter"
    # A pre-filter is an expression, not a template.
    with pytest.raises(ExpressionError):
        check_expression("pre-filter", "{{ surname }}")


# --- pre-filter --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("surname == 'Muster'", True),
        ("surname == 'Meier'", False),
        ("givenname", True),
        ("company", False),
        ("not company", True),
        ("'Max' in givenname and surname|length > 3", True),
        ("mail|values|length > 1", True),
        ("row['Telefon geschäftlich'].startswith('0991')", True),
        ("true", True),
        ("false", False),
    ],
)
def test_prefilter(text: str, accepted: bool) -> None:
    mapper = RowMapper.compile({"displayname": "{{ surname }}"}, text)
    assert mapper.accepts(ROW) is accepted


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_prefilter_accepts_every_row(text: str) -> None:
    assert compile_prefilter(text) is None
    assert RowMapper.compile({}, text).accepts({})


@pytest.mark.parametrize("text", ["surname ==", "(", "surname = 'x'", "1) }}{{ (2"])
def test_invalid_prefilter_is_refused_at_compile_time(text: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_prefilter(text)
    assert info.value.field == "pre-filter"


def test_prefilter_over_a_missing_field_is_a_row_error() -> None:
    prefilter = compile_prefilter("department == 'Sales'")
    assert prefilter is not None
    with pytest.raises(RowError) as info:
        prefilter.render(ROW)
    assert info.value.field == "pre-filter"
    assert "department" in info.value.message


# --- the sandbox -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ row.__class__ }}",
        "{{ givenname.__class__.__base__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os.environ }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'].environ }}",
        "{{ givenname|attr('__class__') }}",
        "{{ '{0.__class__.__mro__}'.format(givenname) }}",
        "{{ row.update({'givenname': 'x'}) }}",
        "{{ mail.append('x') }}",
        "{{ mail.pop() }}",
        "{% for x in range(10**9) %}{% endfor %}",
        "{{ range(10**9)|length }}",
        "{{ os.environ }}",
        "{{ environ }}",
        "{{ config }}",
        "{{ self }}",
        "{{ __import__('os') }}",
    ],
)
def test_sandbox_escapes_fail_as_row_errors(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBXC_TEST_SECRET", "s3cr3t-value")
    row = dict(ROW, mail=list(ROW["mail"]))
    mapper = RowMapper.compile({"displayname": text})
    with pytest.raises(RowError):
        mapper.apply(row)
    assert row["mail"] == ROW["mail"]  # nothing was changed


@pytest.mark.parametrize(
    "text",
    [
        "row.__class__",
        "''.__class__.__mro__[1].__subclasses__()",
        "range(10**9)|length > 0",
        "cycler.__init__.__globals__",
    ],
)
def test_sandbox_escapes_in_the_prefilter_fail_as_row_errors(text: str) -> None:
    mapper = RowMapper.compile({}, text)
    with pytest.raises(RowError) as info:
        mapper.accepts(ROW)
    assert info.value.field == "pre-filter"


def test_unsafe_access_says_so() -> None:
    with pytest.raises(RowError, match="unsafe"):
        render("{{ row.__class__ }}")
    with pytest.raises(RowError, match="Range too big"):
        render("{% for x in range(10**9) %}{% endfor %}")


def test_ranges_within_the_limit_still_work() -> None:
    assert render("{{ range(1000)|sum }}") == "499500"


@pytest.mark.parametrize(
    "text", ['{{ "a" * 10**9 }}', "{{ 10 ** (10 ** 10) }}", "{{ [1, 2] * 100000 }}"]
)
def test_expressions_cannot_exhaust_memory_or_cpu(text: str) -> None:
    with pytest.raises(RowError, match="too large"):
        compile_variable("v", text).render(ROW)


def test_small_products_and_powers_still_work() -> None:
    assert compile_variable("v", '{{ "ab" * 3 }}{{ 2 ** 10 }}').render(ROW) == "ababab1024"


# --- the budget --------------------------------------------------------------------------
# tests/hostile/test_expression_budget.py runs the attacks, each in a process of its own;
# here: what stays within the budget renders as before, and what a limit says.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ '%5.1f' % 2.25 }}|{{ '%-4s|' % givenname }}", "  2.2|Max |"),
        ("{{ '%(a)s-%(a)s' % {'a': givenname} }}", "Max-Max"),
        ("{{ '{:>5}'.format(givenname) }}{{ '{0}{0}'.format(surname) }}", "  MaxMusterMuster"),
        ("{{ '{a}'.format_map({'a': givenname}) }}", "Max"),
        ("{{ givenname|center(7) }}|{{ givenname.ljust(5, '.') }}", "  Max  |Max.."),
        ("{{ '7'.zfill(3) }}{{ 'a\\tb'.expandtabs(2) }}", "007a b"),
        ("{{ [givenname, surname]|join(' ') }}", "Max Muster"),
        ("{{ (givenname, surname)|join(',') }}{{ {'k': surname}['k'] }}", "Max,MusterMuster"),
        ("{{ ' / '.join(mail) }}", "max@example.com / m.muster@example.com"),
        ("{{ range(3)|map('string')|join('-') }}", "0-1-2"),
        ("{{ mail|map('upper')|first }}", "MAX@EXAMPLE.COM"),
        ("{{ mail|reverse|join(',') }}", "m.muster@example.com,max@example.com"),
        ("{{ range(5)|batch(2)|list }}", "[0, 1], [2, 3], [4]"),
        ("{{ range(5)|slice(2)|list }}", "[0, 1, 2], [3, 4]"),
        ("{{ [[1], [2]]|sum(start=[])|join }}", "12"),
        ("{{ 'a b c d'|wordwrap(3) }}", "a b\nc d"),
        ("{{ 'a\\nb'|indent(2) }}", "a\n  b"),
        ("{{ [1, 2]|tojson(1) }}", "[\n 1,\n 2\n]"),
        ("{{ 'a-b-c'|replace('-', '') }}{{ 'a-b'.replace('-', ' ') }}", "abca b"),
        ("{{ 'abcdefghij'|truncate(7, leeway=0) }}", "abcd..."),
        ("{{ lipsum(1, false, 3, 4)|wordcount }}", "3"),
        ("{{ 2 ** 100 }}", "1267650600228229401496703205376"),
        ("{{ (10 ** 100 * 10 ** 100)|string|length }}", "201"),
        ("{{ row.items()|list|length }}", "6"),
        (
            "{% for m in mail %}{{ loop.index }}/{{ loop.length }}:{{ m }} {% endfor %}",
            "1/2:max@example.com 2/2:m.muster@example.com ",
        ),
        (
            "{% set ns = namespace(s='a') %}{% for i in range(10) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "1024",
        ),
        (
            "{% macro m(n) %}{% if n %}{{ n }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(5) }}",
            "54321",
        ),
        (
            "{% for x in [[1, [2]], 3] recursive %}"
            "{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %}",
            "123",
        ),
        ("{% for i in range(100000) %}{% endfor %}done", "done"),
        ("{{ 'x' * 100000 }}", "x" * 100_000),
    ],
)
def test_expressions_within_the_budget_render_as_before(text: str, expected: str) -> None:
    assert render(text) == expected


def test_constant_parts_are_not_run_when_compiling() -> None:
    # Jinja would fold `'a'|center(10**9)` while compiling; the budget sees it on a row.
    expression = compile_variable("displayname", "{{ 'a'|center(10**9) }}")
    with pytest.raises(RowError) as info:
        expression.render(ROW)
    assert info.value.field == "displayname"
    assert info.value.message == "the width 1000000000 is too large (at most 100000)"
    check_expression("pre-filter", "'a'|center(10**9) == ''")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{{ 'a'.ljust(10**9) }}", "the argument 1000000000 is too large (at most 100000)"),
        ("{{ '%.1000000000f' % 1 }}", "the formatted text would be too large (over 100000)"),
        ("{{ '{:>1000000000}'.format(1) }}", "would be too large (over 100000)"),
        ("{{ 2 ** 1000 }}", "the exponent 1000 is too large (at most 100)"),
        ("{{ (10 ** 100) ** 100 }}", "the number would be too large (over 14000 bits)"),
        ("{% for i in range(100000) %}{% for j in range(2) %}{% endfor %}{% endfor %}", "loops"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "calls are nested too deeply"),
        ("{{ ('x' * 60000) ~ ('x' * 60000) }}", "the joined text would be too large"),
        ("{% for i in range(20) %}{{ 'x' * 60000 }}{% endfor %}", "built too much"),
        ("{{ ['x' * 1000] * 1000 }}", "the result would be too large (over 100000)"),
    ],
)
def test_a_limit_fails_the_row_and_says_which(text: str, says: str) -> None:
    with pytest.raises(RowError) as info:
        compile_variable("displayname", text).render(ROW)
    assert info.value.field == "displayname"
    assert says in info.value.message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{{ x }}" * 1500, "the expression is too long (10500 characters, at most 10000)"),
        ("{{ x" + "|lower" * 100 + " }}", "nested too deeply (over 60 levels)"),
        ("{{ " + "(" * 200 + "x" + ")" * 200 + " }}", "nested too deeply"),
        ("{{ " + "9" * 5000 + " }}", "a number in it is too long"),
    ],
)
def test_an_expression_beyond_the_limits_is_refused_when_set(text: str, says: str) -> None:
    with pytest.raises(ExpressionError) as info:
        check_expression("displayname", text)
    assert info.value.field == "displayname"
    assert says in info.value.message
    assert len(info.value.message) < 400  # the expression is quoted, shortened


def test_each_row_gets_a_budget_of_its_own() -> None:
    # Each evaluation may use most of the budget, again and again.
    mapper = RowMapper.compile(
        {"displayname": "{% for i in range(90000) %}{% endfor %}{{ givenname }}"},
        "(surname * 10000)|length == 60000",
    )
    for _ in range(3):
        assert mapper.accepts(ROW)
        assert mapper.apply(ROW) == {"displayname": "Max"}


def test_a_failed_row_leaves_the_next_one_alone() -> None:
    expression = compile_variable(
        "v", "{% for i in range(n|int) %}{% for j in range(2) %}{% endfor %}{% endfor %}ok"
    )
    with pytest.raises(RowError, match="loops ran too often"):
        expression.render({"n": "60000"})
    assert expression.render({"n": "3"}) == "ok"


def test_budgets_of_threads_are_separate() -> None:
    expression = compile_variable("v", "{% for i in range(60000) %}{% endfor %}{{ givenname }}")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: expression.render(ROW), range(8)))
    assert results == ["Max"] * 8


def test_plain_lookups_of_large_values_are_not_limited() -> None:
    # The row's own data is what the source gave: copying it is no attack.
    notes = "n" * 200_000
    assert render("{{ notes }}", {"notes": notes}) == notes
    assert render("{{ notes|trim }}", {"notes": notes}) == notes
