"""Code shared by several instances: one constructor written for many blocks.

A block class serves many blocks of a network (``layer1.0`` ... ``layer4.2``) whose layers differ
in channels, stride, dilation, and sometimes in which layers exist (a shortcut only where the
shape changes, an anti-aliasing pool only where the block strides). :class:`SharedCode` writes
each layer's constructor once, in terms of the class's arguments:

* a field equal to one of the block's *symbols* (``in_channels``, ``stride``, ...) in every block
  is written as that symbol, which becomes a constructor argument;
* a field constant over the blocks is a literal;
* anything else gets its own argument (``se_reduced``), passed per stage or per block;
* where blocks differ in a layer's kind or its fixed settings, or in whether a member exists,
  the code chooses with a condition on the symbols (``stride != 1 or in_channels != out_channels``)
  that is checked against every block; if none fits, an explicit argument selects the variant.

Every choice is verified against every block, so the code is exact for the network it is
written for; a case it cannot express raises :class:`EmitError`, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import permutations

from ..plan.layers import Layer
from .templates import need, render_layer, roles_of
from .values import EmitError, Expr, check_identifier, literal

# A member's layers: (name inside the member, layer); the name is None for a member that is one layer.
Items = tuple[tuple[str | None, Layer], ...]
Value = object


@dataclass(frozen=True)
class Condition:
    """``a != b or c != d ...`` over symbols (and integer literals)."""

    terms: tuple[tuple[str, str, str | int], ...]  # (name, "==" or "!=", name or literal); ``== True`` reads ``name``

    def holds(self, values: dict[str, Value]) -> bool:
        results = []
        for left, op, right in self.terms:
            other = values[right] if isinstance(right, str) else right
            results.append(values[left] != other if op == "!=" else values[left] == other)
        return any(results)

    @property
    def names(self) -> list[str]:
        return [name for left, _, right in self.terms for name in (left, right) if isinstance(name, str)]

    @property
    def code(self) -> str:
        return " or ".join(left if right is True else f"{left} {op} {right}" for left, op, right in self.terms)


def _c(*terms: tuple[str, str, str | int]) -> Condition:
    return Condition(tuple(terms))


STRIDES = ("stride", "!=", 1)
CHANNELS_CHANGE = ("in_channels", "!=", "out_channels")
DILATION_CHANGE = ("first_dilation", "!=", "dilation")
DILATED = ("dilation", "!=", 1)
FROZEN = ("frozen", "==", True)  # the block is in a frozen stage (backbone.frozen_stages)
# Conditions tried, in order of preference, for members of the shortcut and of the branch.
SHORTCUT_CONDITIONS = (
    _c(FROZEN),
    _c(STRIDES, CHANNELS_CHANGE),
    _c(STRIDES),
    _c(CHANNELS_CHANGE),
    _c(DILATED),
    _c(STRIDES, DILATION_CHANGE),
    _c(DILATION_CHANGE),
)
BRANCH_CONDITIONS = (
    _c(FROZEN),
    _c(STRIDES),
    _c(STRIDES, DILATION_CHANGE),
    _c(DILATION_CHANGE),
    _c(DILATED),
    _c(STRIDES, CHANNELS_CHANGE),
    _c(CHANNELS_CHANGE),
)


@dataclass(frozen=True)
class Branch:
    """One arm of a member's assignment: ``code`` where ``condition`` holds (None: otherwise)."""

    condition: str | None
    code: str  # "None" for an absent member


@dataclass(frozen=True)
class Member:
    """A top-level attribute of a module (``conv1``, ``downsample``) and how it is constructed."""

    attr: str
    branches: tuple[Branch, ...]

    @property
    def optional(self) -> bool:
        return any(branch.code == "None" for branch in self.branches)


@dataclass
class Arg:
    name: str
    values: list[Value]  # one per instance
    role: str

    @property
    def annotation(self) -> str:
        kinds = {type(value) for value in self.values}
        if kinds == {bool}:
            return "bool"
        if kinds <= {int}:
            return "int"
        if kinds <= {int, float}:
            return "float"
        raise EmitError(f"argument {self.name} has values of types {sorted(k.__name__ for k in kinds)}")


@dataclass
class SharedCode:
    """Writes members for ``instances``, each a mapping of symbol name to value."""

    instances: list[dict[str, Value]]
    role_symbols: dict[str, tuple[str, ...]]
    # Per instance: the symbol each layer's output channels are (layer path -> symbol), as the
    # planner knows them; preferred to any symbol that merely has the same values.
    width_names: list[dict[str, str]] = field(default_factory=list)
    used: dict[str, None] = field(default_factory=dict)  # ordered set of symbols the code names
    extra: dict[str, Arg] = field(default_factory=dict)  # arguments beyond the symbols
    flow: dict[int, str] = field(default_factory=dict)  # per instance: the name of the channels flowing

    # -- values ---------------------------------------------------------------------------------
    def value(self, name: str, index: int) -> Value:
        if name in self.extra:
            return self.extra[name].values[index]
        return self.instances[index][name]

    def _varies(self, name: str) -> bool:
        return len({_key(self.value(name, index)) for index in range(len(self.instances))}) > 1

    def _matches(self, name: str, values: dict[int, Value]) -> bool:
        return all(_key(self.value(name, index)) == _key(value) for index, value in values.items())

    def _ref(self, name: str) -> Expr:
        if name not in self.extra:
            self.used[name] = None
        return Expr(name, None, False)

    def _new_arg(self, hint: str, role: str, values: dict[int, Value]) -> Expr:
        name = check_identifier(hint, "argument name")
        taken = set(self.extra) | set(self.role_symbols.get("all", ()))
        for symbols in self.role_symbols.values():
            taken |= set(symbols)
        base, number = name, 2
        while name in taken:
            name, number = f"{base}_{number}", number + 1
        self.extra[name] = Arg(name, _filled(values, len(self.instances)), role)
        return Expr(name, None, False)

    def start_flow(self, name: str) -> None:
        """The channels flowing into the next member are ``name`` in every instance."""
        self.flow = dict.fromkeys(range(len(self.instances)), name)

    def expr(self, role: str, values: dict[int, Value], hint: str) -> Expr:
        """The code for a field with ``values`` (instance index -> value) and ``role``."""
        constant = len({_key(value) for value in values.values()}) == 1
        first = next(iter(values.values()))
        if role == "fixed":
            assert constant, "fixed fields are part of the variant key"
            return literal(first)
        if role == "value" and constant:
            return literal(first)
        if role == "channels":
            # A layer reads the channels the previous layer wrote: name them as it did.
            flowing = {self.flow.get(index) for index in values}
            name = flowing.pop() if len(flowing) == 1 else None
            if name is not None and self._matches(name, values):
                return self._ref(name)
        channel_roles = ("channels", "out_channels")
        group = channel_roles if role in channel_roles else (role,)
        extras = tuple(name for name, arg in self.extra.items() if arg.role in group)
        candidates = self.role_symbols.get(role, ()) + extras
        if role in channel_roles:
            for name in candidates:
                if self._matches(name, values):
                    return self._ref(name)
            if constant:
                return literal(first)
        else:
            for name in candidates:
                if self._varies(name) and self._matches(name, values):
                    return self._ref(name)
            if constant:
                return literal(first)
        return self._new_arg(hint, role, values)

    # -- members --------------------------------------------------------------------------------
    def member(self, attr: str, items: Sequence[Items | None], conditions: Sequence[Condition]) -> Member:
        """The constructor of member ``attr``; ``items[i]`` is its layers in instance i (None: absent)."""
        check_identifier(attr, "module name")
        shapes: dict[object, list[int]] = {}
        for index, own in enumerate(items):
            shapes.setdefault(None if own is None else tuple(name for name, _ in own), []).append(index)
        chosen = self.chain(shapes, conditions, attr)
        branches = []
        for shape, condition in chosen:
            if shape is None:
                code = "None"
            else:
                members = shapes[shape]
                code = self._shape_code(attr, [items[index] for index in members], members, conditions)  # type: ignore[misc]
            branches.append(Branch(condition.code if condition else None, code))
        return Member(attr, tuple(branches))

    def _shape_code(self, attr: str, items: list[Items], indices: list[int], conditions: Sequence[Condition]) -> str:
        names = [name for name, _ in items[0]]
        parts = []
        for position, name in enumerate(names):
            layers = {index: own[position][1] for index, own in zip(indices, items, strict=True)}
            hint = attr if name is None else f"{attr}_{name}"
            parts.append(self._layer_code(layers, conditions, hint))
        if names == [None]:
            return parts[0]
        for name in names:
            if name is None or not name or "." in name:
                raise EmitError(f"{attr}: cannot nest module {name!r} inside a Sequential")
        if names == [str(number) for number in range(len(names))]:
            return "nn.Sequential(" + ", ".join(parts) + ")"
        pairs = ", ".join(f"({name!r}, {part})" for name, part in zip(names, parts, strict=True))
        need("OrderedDict")
        return f"nn.Sequential(OrderedDict([{pairs}]))"

    def _layer_code(self, layers: dict[int, Layer], conditions: Sequence[Condition], hint: str) -> str:
        variants: dict[object, list[int]] = {}
        for index, layer in layers.items():
            variants.setdefault(_variant_key(layer), []).append(index)
        chosen = self.chain(variants, conditions, hint)
        codes = []
        for key, condition in chosen:
            own = {index: layers[index] for index in variants[key]}
            codes.append((self._render(own, hint), condition))
        code = codes[-1][0]
        for part, condition in reversed(codes[:-1]):
            assert condition is not None
            code = f"{part} if {condition.code} else {code}"
        return code

    def _render(self, layers: dict[int, Layer], hint: str) -> str:
        sample = next(iter(layers.values()))
        exprs = {}
        for name, role in roles_of(sample).items():
            if role == "ignored":
                continue  # not given to the snippet: using it is an error
            values = {index: getattr(layer, name) for index, layer in layers.items()}
            named = self._named_width(layers, values) if role == "out_channels" else None
            exprs[name] = named if named is not None else self.expr(role, values, f"{hint}_{name}")
            if role == "out_channels":
                for index in layers:
                    if exprs[name].literal:
                        self.flow.pop(index, None)
                    else:
                        self.flow[index] = exprs[name].code
        return render_layer(sample, exprs)

    def _named_width(self, layers: dict[int, Layer], values: dict[int, Value]) -> Expr | None:
        """The symbol the planner says these layers write, where every instance says the same one."""
        if not self.width_names:
            return None
        names = {self.width_names[index].get(layer.path) for index, layer in layers.items()}
        name = names.pop() if len(names) == 1 else None
        if name is None or not self._matches(name, values):
            return None
        return self._ref(name)

    # -- conditions -----------------------------------------------------------------------------
    def chain(
        self, groups: dict[object, list[int]], conditions: Sequence[Condition], hint: str
    ) -> list[tuple[object, Condition | None]]:
        """An if/elif/else order of ``groups`` (key -> instances) with a condition per arm, the
        absent member (None) last where possible. Falls back to an explicit argument."""
        keys = list(groups)
        if len(keys) == 1:
            return [(keys[0], None)]
        orders = sorted(permutations(keys), key=lambda order: (order[-1] is not None, [keys.index(k) for k in order]))
        for order in orders:
            found = self._try_order(order, groups, conditions)
            if found is not None:
                for _, condition in found:
                    for name in condition.names if condition else ():
                        self._ref(name)
                return found
        # No condition on the symbols separates them: say which variant each instance takes.
        values: dict[int, Value] = {index: position for position, key in enumerate(keys) for index in groups[key]}
        arg = self._new_arg(f"{hint}_variant", "variant", values)
        return [
            (key, _c((arg.code, "==", position)) if position < len(keys) - 1 else None)
            for position, key in enumerate(keys)
        ]

    def _try_order(
        self, order: Sequence[object], groups: dict[object, list[int]], conditions: Sequence[Condition]
    ) -> list[tuple[object, Condition | None]] | None:
        remaining = {index for members in groups.values() for index in members}
        out: list[tuple[object, Condition | None]] = []
        for key in order[:-1]:
            wanted = set(groups[key])
            for condition in conditions:
                if all(condition.holds(self.instances[index]) == (index in wanted) for index in remaining):
                    out.append((key, condition))
                    remaining -= wanted
                    break
            else:
                return None
        out.append((order[-1], None))
        return out

    # -- arguments ------------------------------------------------------------------------------
    def args(self, order: Sequence[str]) -> list[Arg]:
        """The constructor's arguments: the symbols the code names (in ``order``), then the extras."""
        used = [name for name in order if name in self.used]
        unknown = [name for name in self.used if name not in order]
        if unknown:
            raise EmitError(f"symbols without a place in the signature: {unknown}")
        symbols = [Arg(name, [instance[name] for instance in self.instances], "symbol") for name in used]
        return symbols + list(self.extra.values())


def _key(value: Value) -> tuple[str, Value]:
    """Compare values by type too, so True never equals 1."""
    return (type(value).__name__, value)


def _variant_key(layer: Layer) -> tuple[object, ...]:
    roles = roles_of(layer)
    return (
        type(layer).__name__,
        tuple((name, _key(getattr(layer, name))) for name, role in roles.items() if role == "fixed"),
    )


def _filled(values: dict[int, Value], count: int) -> list[Value]:
    """Per-instance values where only some instances have one: the others repeat a neighbour's
    (they never read it), which keeps the value per stage where it can be."""
    out: list[Value | None] = [values.get(index) for index in range(count)]
    last: Value | None = None
    for index in range(count):
        if index in values:
            last = values[index]
        elif last is not None:
            out[index] = last
    following: Value | None = None
    for index in reversed(range(count)):
        if index in values:
            following = values[index]
        elif out[index] is None:
            out[index] = following
    return out
