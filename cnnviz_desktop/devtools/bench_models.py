"""Models for the benchmarks: shipped ones by name or path, and random-weight networks by name or spec."""

from __future__ import annotations

from pathlib import Path

# Random-weight networks the benchmarks know by name: the family's big ones, and the largest networks of the
# issue-14 acceptance tests (tests/core/test_spec.py SPECS).
FAMILY = {"big": ((32, 64), (128,)), "huge": ((48, 64), (256,))}
SPECS = {
    "gapfc": "c16k5p2-relu-max2-c32k3-relu-gap-fc10",
    "gap003": "c10k3p1-relu-c10k3p1-relu-max2-gap",
    "bn3": "c8k3p1-bn-relu-max2-c16k3p1-bn-relu-max2-c16k3p1-bn-relu-max2-fc10",
}
HELP = ("comma-separated: shipped names or weight files; 'big', 'huge' (family networks), 'gapfc', 'gap003', "
        "'bn3' (spec networks); NAME=C1/C2:D1 (family) or NAME=SPEC (the spec language), with random weights")


def load_model(text: str, seed: int = 0):
    """A weights.LoadedModel for one --models entry (see HELP); random weights are seeded."""
    import torch

    from ..core import networks, weights
    from ..core.architecture import Architecture, parse_spec

    name, _, body = text.partition("=")
    if text in FAMILY:
        arch = Architecture.family(text, *FAMILY[text])
    elif text in SPECS:
        arch = parse_spec(SPECS[text], text)
    elif body and any(ch.isalpha() for ch in body):
        arch = parse_spec(body, name)
    elif body:
        conv_text, _, dense_text = body.partition(":")
        arch = Architecture.family(name, tuple(int(c) for c in conv_text.split("/") if c),
                                   tuple(int(d) for d in dense_text.split("/") if d))
    else:
        return weights.load(text)
    torch.manual_seed(seed)
    return weights.LoadedModel(model=networks.build(arch).eval(), arch=arch, path=Path(f"(random {arch.name})"),
                               card={})
