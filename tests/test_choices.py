"""Lists of choices kept once: each table the back ends read covers exactly the spec's choices,
checked against torch and Python themselves."""

from __future__ import annotations

import builtins
import keyword
import typing

import pytest
from torch import nn

from resnet_gen.choices import ACTIVATION_CLASSES, IN_PLACE_ACTIVATIONS, ActivationType
from resnet_gen.emit.values import EmitError, check_identifier
from resnet_gen.spec.names import name_problem


def test_every_activation_has_its_torch_class() -> None:
    assert list(ACTIVATION_CLASSES) == list(typing.get_args(ActivationType))
    for kind, name in ACTIVATION_CLASSES.items():
        cls = getattr(nn, name)
        assert issubclass(cls, nn.Module), kind
        # In place exactly where torch's constructor takes the argument.
        takes_inplace = "inplace" in cls.__init__.__code__.co_varnames
        assert (kind in IN_PLACE_ACTIVATIONS) == takes_inplace, kind


@pytest.mark.parametrize("name", ["1net", "net-50", "résnet", "class", "match", "type", "len", "print"])
def test_spec_names_and_emitted_names_refuse_the_same_words(name: str) -> None:
    """Not an identifier, a keyword (soft ones too) or a builtin: refused by both the spec's name
    rule and the emitter's check, per Python's own tables."""
    refused = not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name)
    refused = refused or keyword.issoftkeyword(name) or name in vars(builtins)
    assert refused
    assert name_problem(name) is not None
    with pytest.raises(EmitError):
        check_identifier(name, "name")


def test_a_plain_name_passes_both() -> None:
    assert name_problem("my_resnet") is None
    assert check_identifier("my_resnet", "name") == "my_resnet"
