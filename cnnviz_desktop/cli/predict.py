"""cnnviz-predict: read the digit in image files through the same preprocessing as the app."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import EXIT_USER_ERROR, run_cli


def _predict(args: argparse.Namespace) -> int:
    import torch

    from ..core import weights
    from ..core.errors import CnnvizError
    from ..core.images import load_canvas
    from ..core.preprocess import preprocess

    loaded = weights.load(args.model)
    failures = 0
    for name in args.files:
        try:
            prepared = preprocess(load_canvas(Path(name)))
        except CnnvizError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"file": name, "error": str(exc)}))
            print(f"error: {exc}", file=sys.stderr)
            continue
        if prepared is None:
            digit, probabilities = None, None
        else:
            with torch.no_grad():
                probabilities = torch.softmax(loaded.model(prepared.tensor), dim=1)[0].tolist()
            digit = max(range(10), key=probabilities.__getitem__)
        if args.json:
            print(json.dumps({"file": name, "digit": digit,
                              "probabilities": None if probabilities is None
                              else [round(p, 6) for p in probabilities]}))
        elif digit is None:
            print(f"{name}: nothing drawn")
        else:
            print(f"{name}: {digit} ({probabilities[digit]:.1%})")
    return EXIT_USER_ERROR if failures else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnviz-predict", description=__doc__)
    p.add_argument("files", nargs="+", metavar="FILE", help="PNG or JPEG images, any size, either polarity")
    p.add_argument("--model", default="tiny", metavar="NAME|PATH", help="shipped model name or weight file")
    p.add_argument("--json", action="store_true", help="one JSON object per file: file, digit, probabilities")
    p.set_defaults(func=_predict)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
