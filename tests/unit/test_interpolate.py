"""Interpolation and .env files exactly as the Compose specification writes them.

Expected values are the spec's own (Compose file reference, *Interpolation*; Docker docs, *Syntax
for environment files*), with SET=value, EMPTY set to "", FOO=foo and UNSET not set. The one
difference on purpose: an unset variable without a default is an error, not an empty string.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ngcws.errors import ConfigError
from ngcws.interpolate import InterpolationError, interpolate, parse_env_file
from ngcws.load import load

VARS = {"SET": "value", "EMPTY": "", "FOO": "foo", "HOME": "/home/me"}

INTERPOLATION = [
    ("${SET}", "value"),  # direct substitution
    ("$SET", "value"),
    ("$SET-suffix", "value-suffix"),  # a name ends at the first non-name character
    ("${SET:-default}", "value"),  # default if unset or empty
    ("${EMPTY:-default}", "default"),
    ("${UNSET:-default}", "default"),
    ("${SET-default}", "value"),  # default if unset
    ("${EMPTY-default}", ""),
    ("${UNSET-default}", "default"),
    ("${SET:?err}", "value"),  # required
    ("${SET?err}", "value"),
    ("${EMPTY?err}", ""),
    ("${SET:+replacement}", "replacement"),  # alternative value
    ("${EMPTY:+replacement}", ""),
    ("${UNSET:+replacement}", ""),
    ("${SET+replacement}", "replacement"),
    ("${EMPTY+replacement}", "replacement"),
    ("${UNSET+replacement}", ""),
    ("${UNSET:-${FOO}}", "foo"),  # nested
    ("${UNSET:-${UNSET2:-default}}", "default"),
    ("${SET:-${UNSET}}", "value"),  # a default not taken is not evaluated
    ("${UNSET:-a-${FOO}-b}", "a-foo-b"),
    ("${UNSET:-{}}", "{}"),
    ("$$", "$"),  # escaped
    ("$$VAR_NOT_INTERPOLATED_BY_COMPOSE", "$VAR_NOT_INTERPOLATED_BY_COMPOSE"),
    ("$${SET}", "${SET}"),
    ("cost: $5", "cost: $5"),  # a `$` not followed by a name is kept
    ("$", "$"),
    ("a $ b", "a $ b"),
    ("$-x", "$-x"),
    ("no variables", "no variables"),
]


@pytest.mark.parametrize(("text", "expected"), INTERPOLATION, ids=[t for t, _ in INTERPOLATION])
def test_interpolation_as_the_spec_says(text: str, expected: str) -> None:
    assert interpolate(text, VARS) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET}", r"variable \$\{UNSET\} is not set"),
        ("$UNSET", r"variable \$\{UNSET\} is not set"),
        ("${UNSET:?give it}", r"\$\{UNSET\} is required: give it"),
        ("${EMPTY:?give it}", r"\$\{EMPTY\} is required: give it"),
        ("${UNSET?needs $FOO}", r"is required: needs foo"),  # the message is interpolated (spec: ${VARIABLE?$FOO})
        ("${SET/foo/bar}", "Compose knows"),  # other shell expansions are not supported
        ("${}", "invalid interpolation"),
        ("${SET", "not closed"),
    ],
)
def test_interpolation_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message):
        interpolate(text, VARS)


def test_interpolation_reports_the_variables_it_used() -> None:
    used: set[str] = set()
    interpolate("${SET}/${UNSET:-${FOO}}/${EMPTY:+x}", VARS, used)
    assert used == {"SET", "FOO"}


ENV_FILE = [
    ("VAR=VAL", "VAL"),
    ('VAR="VAL"', "VAL"),
    ("VAR='VAL'", "VAL"),
    ("VAR=VAL # comment", "VAL"),  # inline comments for unquoted values need a space before
    ("VAR=VAL# not a comment", "VAL# not a comment"),
    ('VAR="VAL # not a comment"', "VAL # not a comment"),
    ('VAR="VAL" # comment', "VAL"),
    ('K="abc" # comment', "abc"),
    ("VAR='$OTHER'", "$OTHER"),  # single-quoted values are literal
    ("VAR='${OTHER}'", "${OTHER}"),
    ("VAR='Let\\'s go!'", "Let's go!"),  # quotes can be escaped
    ('VAR="{\\"hello\\": \\"json\\"}"', '{"hello": "json"}'),
    ('VAR="some\\tvalue"', "some\tvalue"),  # escapes in double quotes
    ("VAR='some\\tvalue'", "some\\tvalue"),
    ("VAR=some\\tvalue", "some\\tvalue"),
    ('VAR="a\\nb\\\\c"', "a\nb\\c"),
    ('VAR="cost \\$5 ${FOO}"', "cost $5 foo"),
    ("export VAR=VAL", "VAL"),
    ("VAR = VAL", "VAL"),
    ("VAR=", ""),
    ("VAR=${HOME}/datasets", "/home/me/datasets"),  # interpolation in unquoted and double-quoted values
    ('VAR="${HOME}/datasets"', "/home/me/datasets"),
    ("VAR=${UNSET:-dflt}", "dflt"),
    ("VAR=$$x", "$x"),
    ('VAR="line one\nline two"', "line one\nline two"),  # a double-quoted value may span lines
    ("VAR=a=b", "a=b"),
]


@pytest.mark.parametrize(("line", "expected"), ENV_FILE, ids=[line for line, _ in ENV_FILE])
def test_env_file_syntax_as_the_docs_say(line: str, expected: str) -> None:
    assert parse_env_file(f"# comment\n\n{line}\n", VARS) == {"VAR" if "VAR" in line else "K": expected}


def test_env_file_entries_use_earlier_entries_and_the_environment_first() -> None:
    text = "A=one\nB=${A}-two\nFOO=file\nC=${FOO}\nSET\nUNSET\n"
    assert parse_env_file(text, VARS) == {"A": "one", "B": "one-two", "FOO": "file", "C": "foo", "SET": "value"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not an assignment!\n", "line 1: expected KEY=VALUE after"),
        ("A=1\n=x\n", "line 2: expected KEY=VALUE"),
        ("A=${UNSET}\n", r"line 1: A: variable \$\{UNSET\} is not set"),
        ("A='open\n", "line 1: the ' quote is not closed"),
        ('A="x" y\n', "line 1: unexpected text after the closing quote"),
    ],
)
def test_env_file_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_env_file(text, VARS)


def test_env_file_errors_never_quote_the_value() -> None:
    with pytest.raises(ValueError) as info:
        parse_env_file("API_TOKEN hunter2-secret\n", {})
    assert "hunter2" not in str(info.value)


def project(
    folder: Path, body: str, dotenv: str | None = None, environ: dict[str, str] | None = None
) -> dict[str, str]:
    (folder / "ngcws.yaml").write_text("workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n" + body)
    if dotenv is not None:
        (folder / ".env").write_text(dotenv)
    env: dict[str, str] = load(cwd=folder, environ=environ or {}).workspaces["t"].env
    return env


def test_dotenv_expands_variables_and_the_environment_wins(tmp_path: Path) -> None:
    env = project(
        tmp_path,
        "    env:\n      DATA: ${DATA}\n      TAG: ${TAG}\n      Q: ${Q}\n",
        dotenv='DATA=${HOME}/datasets\nTAG=from-file\nQ="a b" # note\n',
        environ={"HOME": "/home/me", "TAG": "from-env"},
    )
    assert env == {"DATA": "/home/me/datasets", "TAG": "from-env", "Q": "a b"}


def test_env_null_and_bare_names_come_from_the_environment(tmp_path: Path) -> None:
    environ = {"K": "from-env", "L": ""}
    assert project(tmp_path, "    env:\n      K: null\n      L:\n      M: ~\n", environ=environ) == {
        "K": "from-env",
        "L": "",
    }
    assert project(tmp_path, "    env: [K, L, M, N=1]\n", environ=environ) == {"K": "from-env", "L": "", "N": "1"}
    assert project(tmp_path, "    env: [K]\n", dotenv="K=from-dotenv\n") == {"K": "from-dotenv"}


def test_env_file_values_are_interpolated_and_quoted(tmp_path: Path) -> None:
    (tmp_path / "vars.env").write_text("export A=\"x y\" # c\nB='$LIT'\nC=${HOME}/c\n")
    env = project(tmp_path, "    env_file: vars.env\n", environ={"HOME": "/h"})
    assert env == {"A": "x y", "B": "$LIT", "C": "/h/c"}


def test_a_bad_dotenv_is_a_config_error_naming_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.env: line 2: expected KEY=VALUE"):
        project(tmp_path, "", dotenv="A=1\n=oops\n")


def test_secrecy_follows_a_value_through_dotenv_variables() -> None:
    secret: set[str] = set()
    text = 'HF_TOKEN=hf_x\nINDIRECT=${HF_TOKEN}\nDEEP="a-${INDIRECT}"\nDEFAULTED=${UNSET:-${DEEP}}\nPLAIN=p\nCOPY=${PLAIN}\n'
    parse_env_file(text, {}, secret=secret)
    assert secret == {"HF_TOKEN", "INDIRECT", "DEEP", "DEFAULTED"}


def test_a_dotenv_entry_using_a_secret_makes_what_uses_it_secret(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HF_TOKEN=hf_x\nINDIRECT=${HF_TOKEN}\n")
    (tmp_path / "ngcws.yaml").write_text(
        "workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"
        "    env:\n      VIA_INDIRECT: ${INDIRECT}\n      PLAIN: ${HOME_DIR:-x}\n"
    )
    project = load(cwd=tmp_path, environ={})
    assert project.secret_env["t"] == {"VIA_INDIRECT"}
