"""The model class: stem, stages (one builder call each), final norm, head, forward, initialisation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..plan import BlockPlan, Plan, interface
from ..plan.backbone import feature_taps
from ..plan.inference import TARGETS
from ..plan.layers import Layer, Norm
from ..plan.types import FeatureTap, HeadPlan, StagePlan
from .blocks import BlockClass, block_classes, folds_table
from .code import Items, Member, SharedCode
from .heads import Decoder, decoder
from .templates import render_layer, roles_of
from .values import EmitError, Expr, check_identifier, literal, py_literal

MODEL_CLASS = "ResNet"
# torch.nn classes the initialisation resets to unit weight and zero bias, by plan norm type.
INIT_NORMS = {"batch": "nn.BatchNorm2d", "group": "nn.GroupNorm"}


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str
    default: str


@dataclass(frozen=True)
class StageCall:
    attr: str
    builder: str
    kwargs: tuple[tuple[str, str], ...]
    repeats: int | None = None  # a tied stage: its one block applied this many times
    drop_rates: str | None = None  # ... with these drop-path rates, one per application


@dataclass(frozen=True)
class Head:
    pool: str  # avg | max
    dropout: str | None  # the rate's literal, or None for no dropout
    fc: str | None  # the classifier's constructor


@dataclass(frozen=True)
class Model:
    name: str
    class_name: str
    params: tuple[Param, ...]
    drop_path_rates: str | None  # the expression of the per-block rates, when the model computes them
    stem: tuple[Member, ...]
    stages: tuple[StageCall, ...]
    final: tuple[Member, ...]
    head: Head | None
    blocks: tuple[BlockClass, ...]
    init_kaiming: bool
    init_norms: tuple[str, ...]
    zero_init: tuple[tuple[str, str], ...]  # (block class, attribute zeroed)
    frozen: tuple[str, ...]
    taps: tuple[str, ...]  # features_only: the top-level modules whose outputs forward returns
    feature_info: str  # every feature map (the returned ones with features_only), as code
    # timm's model interface (see plan.interface): the values as code.
    num_features: str
    pretrained_cfg: str
    group_matcher_fine: str
    group_matcher_coarse: str
    group_matcher_final: bool
    inference: bool  # the inference form: eval mode, no gradients, channels-last
    folds: str | None  # the stem's and final layers' FOLDS table (inference form), as code
    fold_eps: str | None  # the folded batch norms' eps, when any norm is folded
    decoder: Decoder | None = None  # a segmentation or multitask head's decoder (emit.heads)

    @property
    def features_only(self) -> bool:
        return bool(self.taps)

    @property
    def forward_modules(self) -> list[str]:
        return [m.attr for m in self.stem] + [s.attr for s in self.stages] + [m.attr for m in self.final]


# Every field of the plan's containers that the templates account for. A field added to the plan
# must be added here once the source back end writes it (or is known not to affect the module);
# until then emitting fails rather than silently leaving it out.
HANDLED_FIELDS: dict[type, frozenset[str]] = {
    Plan: frozenset(
        [
            "name",
            "description",
            "family",
            "input_channels",
            "input_size",
            "stem",
            "stem_out_size",
            "stem_channels",
            "stages",
            "final",
            "head",
            "init_scheme",
            "zero_init_residual",
            "activation",
            "norm",
            "features",
            "frozen",
            "folds",
            "target",
            "drop_path",
            "spec_hash",
            "decoder",
        ]
    ),
    StagePlan: frozenset(
        ["path", "index", "blocks", "width", "stride", "dilation", "tied", "repeats", "step_size", "drop_paths"]
    ),
    BlockPlan: frozenset(
        [
            "path",
            "stage",
            "index",
            "type",
            "order",
            "in_channels",
            "first_channels",
            "mid_channels",
            "out_channels",
            "stride",
            "dilation",
            "first_dilation",
            "groups",
            "in_size",
            "out_size",
            "shortcut_type",
            "steps",
            "preact",
            "branch",
            "shortcut",
            "after_add",
            "attention",
            "drop_path",
            "post_activation",
            "zero_init",
            "width_names",
            "folds",
            "step_size",
            "time",
            "tail",
            "time_channels",  # its projection's width, written as the layer's literal
        ]
    ),
    HeadPlan: frozenset(["pool", "dropout", "fc", "in_channels", "num_classes"]),
    FeatureTap: frozenset(["index", "module", "channels", "reduction", "size"]),
}
INIT_SCHEMES = ("kaiming", "default")


def check_plan_fields() -> None:
    for kind, handled in HANDLED_FIELDS.items():
        new = [f.name for f in dataclasses.fields(kind) if f.name not in handled]
        if new:
            raise EmitError(
                f"plan field(s) {', '.join(new)} of {kind.__name__} are not written by the source back end yet;"
                " teach resnet_gen/emit (and list them in emit.model.HANDLED_FIELDS)"
            )


def model(plan: Plan) -> Model:
    check_plan_fields()
    if plan.init_scheme not in INIT_SCHEMES:
        raise EmitError(f"init scheme {plan.init_scheme!r} has no source template")
    if plan.target not in TARGETS:
        raise EmitError(f"target {plan.target!r} has no source template")
    name = plan.name
    rates = _drop_path_rates(plan)
    drop_path_code = _stage_slices(plan) if rates is not None else None
    classes = block_classes(plan, drop_path_code)
    params = []
    head = None
    if plan.head is not None:
        fc = None
        if plan.head.fc is not None:
            params.append(Param("num_classes", "int", py_literal(plan.head.num_classes)))
            fc = _classifier(plan.head.fc)
        if plan.head.pool not in ("avg", "max"):
            raise EmitError(f"head pool {plan.head.pool!r} has no source template")
        dropout = py_literal(plan.head.dropout) if plan.head.dropout else None
        head = Head(plan.head.pool, dropout, fc)
    if plan.decoder is not None:
        found = decoder(plan)
        assert found is not None
        params.append(Param(found.classes_param, "int", found.classes_default))
    if rates is not None:
        params.append(Param("drop_path_rate", "float", py_literal(plan.drop_path)))
    stage_of = {index: cls for cls in classes for index in cls.stages}
    stages = []
    for index, stage in enumerate(plan.stages):
        cls = stage_of[index]
        position = cls.stages.index(index)
        kwargs = tuple((p.name, p.per_stage[position]) for p in cls.stage_params)
        repeats = stage.repeats if stage.tied else None
        drop_rates = py_literal(stage.drop_paths) if stage.drop_paths else None
        stages.append(StageCall(check_identifier(stage.path, "stage name"), cls.builder, kwargs, repeats, drop_rates))
    norm_types = {layer.type for layer in plan.layers if isinstance(layer, Norm)}
    return Model(
        name=check_identifier(name, "spec name"),
        class_name=MODEL_CLASS,
        params=tuple(params),
        drop_path_rates=rates,
        stem=_single(plan.stem),
        stages=tuple(stages),
        final=_single(plan.final),
        head=head,
        blocks=tuple(classes),
        init_kaiming=plan.init_scheme == "kaiming",
        init_norms=tuple(INIT_NORMS[kind] for kind in INIT_NORMS if kind in norm_types),
        zero_init=tuple((cls.name, cls.zero_init) for cls in classes if cls.zero_init),
        frozen=tuple(check_identifier(name, "frozen module") for name in plan.frozen),
        taps=tuple(tap.module for tap in plan.features),
        feature_info=_feature_info(plan.features or tuple(feature_taps(plan))),
        num_features=py_literal(interface.num_features(plan)),
        pretrained_cfg=_pretrained_cfg(plan),
        group_matcher_fine=_code(interface.group_matcher(plan, coarse=False)),
        group_matcher_coarse=_code(interface.group_matcher(plan, coarse=True)),
        group_matcher_final=bool(plan.final),
        inference=plan.target == "inference",
        folds=folds_table(plan.folds),
        fold_eps=_fold_eps(plan),
        decoder=decoder(plan),
    )


def _fold_eps(plan: Plan) -> str | None:
    """The one eps of every folded norm (a network has one norm setting)."""
    folds = [*plan.folds, *(fold for block in plan.blocks for fold in block.folds)]
    eps = {fold.eps for fold in folds if fold.norm is not None}
    if len(eps) > 1:
        raise EmitError(f"folded batch norms have different eps values {sorted(eps)}; one network has one norm eps")
    return py_literal(eps.pop()) if eps else None


def _single(layers: Sequence[Layer]) -> tuple[Member, ...]:
    """Members built once (stem, final norm): every field a literal."""
    grouped: dict[str, list[tuple[str | None, Layer]]] = {}
    for layer in layers:
        attr, _, rest = layer.path.partition(".")
        grouped.setdefault(attr, []).append((rest or None, layer))
    code = SharedCode([{}], {})
    members = []
    for attr, items in grouped.items():
        own: Items = tuple(items)
        members.append(code.member(attr, [own], ()))
    if code.extra or code.used:
        raise EmitError("a module built once cannot take arguments")
    return tuple(members)


def _classifier(fc: Layer) -> str:
    """The classifier, its output size the model's ``num_classes`` argument."""
    roles = roles_of(fc)
    exprs = {name: literal(getattr(fc, name)) for name, role in roles.items() if role != "ignored"}
    if "out_features" not in exprs:
        raise EmitError(f"{fc.path}: a classifier needs out_features")
    exprs["out_features"] = Expr("num_classes", None, False)
    return render_layer(fc, exprs)


def _drop_path_rates(plan: Plan) -> str | None:
    """The per-block drop-path rates as the model computes them from ``drop_path_rate`` (the
    spec's rule: rising linearly from 0 to the rate at the last block), if they are that rule."""
    blocks = plan.blocks
    if not any(block.drop_path > 0 for block in blocks):
        return None
    total = len(blocks)
    steps = max(total - 1, 1)
    if any(block.drop_path != plan.drop_path * number / steps for number, block in enumerate(blocks)):
        return None
    return f"[drop_path_rate * index / {steps} for index in range({total})]"


def _stage_slices(plan: Plan) -> list[str]:
    out, start = [], 0
    for stage in plan.stages:
        end = start + len(stage.blocks)
        out.append(f"drop_path_rates[{start}:{end}]")
        start = end
    return out


def _code(value: object) -> str:
    """A literal of plain data (dicts, lists, tuples, strings, numbers, None)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_code(key)}: {_code(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_code(item) for item in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_code(item) for item in value) + ("," if len(value) == 1 else "") + ")"
    if value is None or isinstance(value, str):
        return repr(value)
    return py_literal(value)


def _pretrained_cfg(plan: Plan) -> str:
    """The pretrained config; its ``num_classes`` is the model's own (the factory's argument)."""
    cfg = interface.pretrained_cfg(plan)
    items = [
        f"{key!r}: {'self.num_classes' if key == 'num_classes' and not plan.features else _code(value)}"
        for key, value in cfg.items()
    ]
    return "{" + ", ".join(items) + "}"


def _feature_info(taps: tuple[FeatureTap, ...]) -> str:
    items = [
        "{"
        + ", ".join(
            f"{key!r}: {py_literal(value)}"
            for key, value in (
                ("num_chs", tap.channels),
                ("reduction", tap.reduction),
                ("module", tap.module),
                ("index", tap.index),
            )
        )
        + "}"
        for tap in taps
    ]
    return "[" + ", ".join(items) + "]"
