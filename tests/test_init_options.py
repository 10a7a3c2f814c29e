"""The initializationOptions (server/init_options.py): options of exactly their fields' types are
taken without pydantic, and give what pydantic's validation gives for any options at all."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import typing

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic.alias_generators import to_camel

from lsp_agent.server import init_options
from lsp_agent.server.init_options import InitializationOptions, options_adapter
from lsp_agent.types.permissions import MODES, Mode

FIELDS = [f.name for f in dataclasses.fields(InitializationOptions)]
WIRE_NAMES = [to_camel(name) for name in FIELDS]

values = st.one_of(
    st.booleans(), st.none(), st.sampled_from(MODES), st.text(max_size=6),
    st.integers(min_value=-3, max_value=10**20), st.just(10**400),  # too large for a float
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.booleans(),
                                                               max_size=2))
AS_IS_NAMES = [to_camel(f.name) for f in dataclasses.fields(InitializationOptions)
               if str(f.type) in init_options.AS_IS]
scalars = st.one_of(st.booleans(), st.none(), st.sampled_from(MODES), st.text(max_size=3),
                    st.integers(min_value=-2, max_value=2), st.floats(allow_nan=True,
                                                                      allow_infinity=True))
BY_ANNOTATION = {
    "bool": st.booleans(), "bool | None": st.one_of(st.booleans(), st.none()),
    "str | None": st.one_of(st.text(max_size=4), st.none()), "Mode": st.sampled_from(MODES),
    "Positive": st.one_of(st.integers(min_value=1), st.floats(min_value=0, exclude_min=True))}
OWN_TYPE = {to_camel(f.name): BY_ANNOTATION[str(f.type)]
            for f in dataclasses.fields(InitializationOptions) if str(f.type) in BY_ANNOTATION}
options = st.one_of(
    st.dictionaries(st.sampled_from([*WIRE_NAMES, *FIELDS, "noSuchOption"]), values, max_size=6),
    # Near the line between taken as sent and judged by pydantic: the fields taken as is, with
    # values of their own type or not.
    st.dictionaries(st.sampled_from(AS_IS_NAMES), scalars, min_size=1, max_size=2),
    # Of their own type (an editor's options): taken as sent.
    st.lists(st.sampled_from(AS_IS_NAMES), unique=True, max_size=6).flatmap(
        lambda names: st.fixed_dictionaries({n: OWN_TYPE[n] for n in names})))


def validated(raw: object) -> object:
    """What pydantic alone makes of ``raw``: the options, or the kind of error."""
    try:
        return options_adapter().validate_python(raw)
    except ValueError:
        return ValueError


def ours(raw: object) -> object:
    try:
        return InitializationOptions.model_validate(raw)
    except ValueError:
        return ValueError


@settings(max_examples=600)  # cheap: each is two small validations
@given(options)
def test_any_options_give_what_pydantic_gives(raw):
    assert ours(raw) == validated(raw)


@given(st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.booleans())))
def test_options_that_are_not_an_object_are_an_error(raw):
    assert ours(raw) is ValueError


def test_an_editors_options_are_taken_as_sent():
    sent = {"mode": "acceptEdits", "model": "claude-x", "pythonLanguageFeatures": False,
            "editorSavesAppliedEdits": True, "editorBridge": True, "permissionTimeoutSeconds": 5}
    taken = init_options._as_sent(sent)
    assert taken == validated(sent)
    assert taken is not None and taken.permission_timeout_seconds == 5.0
    assert isinstance(taken.permission_timeout_seconds, float)


def test_what_needs_coercion_or_a_section_goes_to_pydantic():
    for sent in ({"permissionTimeoutSeconds": "5"}, {"permissionTimeoutSeconds": 0},
                 {"permissionTimeoutSeconds": math.nan}, {"mode": "bogus"},
                 {"pythonLanguageFeatures": 1}, {"python_language_features": False},
                 {"model": 1}, {"autoMemory": "true"},
                 {"sandbox": {}}, {"noSuchOption": 1}):
        assert init_options._as_sent(sent) is None, sent


def test_the_wire_names_are_pydantics():
    assert [init_options._camel(name) for name in FIELDS] == WIRE_NAMES
    assert MODES == typing.get_args(Mode)


PROGRAM = r"""
import json, sys
from lsp_agent.server.init_options import InitializationOptions
options = InitializationOptions.model_validate(json.loads(sys.argv[1]))
print(json.dumps({"mode": options.mode, "pydantic": "pydantic" in sys.modules}))
"""


def test_an_editors_options_need_no_pydantic():
    sent = {"mode": "plan", "pythonLanguageFeatures": False, "editorBridge": True}
    done = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(sent)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"mode": "plan", "pydantic": False}
