"""The U-Net's helper ``nn.Module``s, one kind per file. The live back end imports them and the
emitter inlines their source (each file imports only torch), so both build the same module."""
