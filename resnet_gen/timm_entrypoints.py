"""The module timm's registry files the entrypoints of registered specs under (see
:mod:`resnet_gen.timm`); ``register`` adds each one here, as timm's own model modules hold theirs."""
