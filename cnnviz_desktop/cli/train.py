"""cnnviz-train: train a network on MNIST IDX files, import your own PyTorch model, or evaluate one on the t10k
test set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import run_cli


def _data_dir(args: argparse.Namespace):
    from ..core import mnist
    from ..core.errors import CnnvizError
    from ..core.paths import mnist_dir_from_env

    if args.download:
        print(f"Downloading MNIST into {args.download} (checksums verified) ...", file=sys.stderr)
        return mnist.download(args.download, mirror=args.mirror)
    directory = args.data or mnist_dir_from_env()
    if directory is None:
        raise CnnvizError("no MNIST folder given: pass --data DIR, set CNNVIZ_MNIST_DIR, or use --download DIR.")
    return Path(directory)


MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536
MAX_SEED = 2**64 - 1


def _check_fit_args(args: argparse.Namespace) -> Path:
    """Every fit option checked before any data is read or anything written; returns --out as a Path."""
    import math

    from ..core.errors import CnnvizError
    from ..core.weights import SUFFIX

    if not 1 <= args.epochs <= MAX_EPOCHS:
        raise CnnvizError(f"--epochs must be 1-{MAX_EPOCHS:,}, got {args.epochs}")
    if not 1 <= args.batch_size <= MAX_BATCH_SIZE:
        raise CnnvizError(f"--batch-size must be 1-{MAX_BATCH_SIZE:,}, got {args.batch_size}")
    if not (math.isfinite(args.lr) and 0 < args.lr <= 10):
        raise CnnvizError(f"--lr must be a number above 0 and at most 10 (e.g. 0.01), got {args.lr}")
    if not 0 <= args.seed <= MAX_SEED:
        raise CnnvizError(f"--seed must be 0-{MAX_SEED}, got {args.seed}")
    args.model_given = args.model is not None
    if args.model is None:
        args.model = "tiny"
    if args.limit is not None and args.limit < 1:
        raise CnnvizError(f"--limit must be at least 1, got {args.limit}")
    penalty = getattr(args, "blank_paper_penalty", 0.0)
    if not (math.isfinite(penalty) and 0 <= penalty <= 100):
        raise CnnvizError(f"--blank-paper-penalty must be 0-100 (e.g. 1.0), got {penalty}")
    return _checked_out(Path(args.out), SUFFIX)


def _checked_out(out: Path, suffix: str) -> Path:
    """--out must be a writable path ending in .safetensors; its folder may be created later by fit."""
    import os

    from ..core.errors import CnnvizError

    if out.suffix != suffix:
        raise CnnvizError(f"--out must be a {suffix} file (the model card goes beside it as .json), got {out}")
    if out.is_dir():
        raise CnnvizError(f"--out {out} is a folder: give a file name inside it, e.g. {out / ('model' + suffix)}")
    if out.exists() and not out.is_file():
        raise CnnvizError(f"--out {out} exists and is not a regular file")
    parent = out.parent
    while not parent.exists():  # the nearest existing folder must let us create the rest
        parent = parent.parent
    if not parent.is_dir():
        raise CnnvizError(f"--out {out}: {parent} is a file, not a folder, so {out.parent} cannot be created")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CnnvizError(f"--out {out}: the folder {parent} is not writable. Choose another --out.")
    return out


def _fit_architecture(args: argparse.Namespace):
    """--arch SPEC (any network of the spec language, named --name or after the spec) or --model NAME."""
    from ..core.architecture import ArchitectureError, parse_spec
    from ..core.errors import CnnvizError
    from ..core.networks import ARCHITECTURES

    if args.arch is None:
        if args.name is not None:
            raise CnnvizError("--name goes with --arch SPEC (a shipped --model keeps its own name)")
        return ARCHITECTURES[args.model]
    if args.model_given:
        raise CnnvizError("give either --model NAME or --arch SPEC, not both")
    try:
        return parse_spec(args.arch, args.name)
    except ArchitectureError as exc:
        raise CnnvizError(f"--arch {args.arch!r}: {exc}") from exc


def _fit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core import mnist, training
    from ..core.errors import CnnvizError

    out = _check_fit_args(args)
    arch = _fit_architecture(args)
    data = _data_dir(args)
    train = mnist.load(data, "train")
    if len(train) == 0:
        raise CnnvizError(f"the MNIST training files in {data} hold no images: there is nothing to train on.")
    if args.limit is not None:
        train = mnist.Dataset(train.images[: args.limit], train.labels[: args.limit])
    test = mnist.load(data, "test") if not args.no_eval else None
    steps = -(-len(train) // args.batch_size)
    bar = tqdm(total=args.epochs * steps, unit="batch", dynamic_ncols=True, file=sys.stderr,
               disable=args.quiet)

    def on_batch(epoch: int, step: int, loss: float, acc: float) -> None:
        bar.update(1)
        if step == steps or step % 10 == 0:
            bar.set_description(f"epoch {epoch}/{args.epochs}")
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}")

    aug = None if args.no_augment else training.Augmentation()
    try:
        model, history = training.fit(
            arch, train, out, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
            augmentation=aug, on_batch=on_batch, blank_paper=args.blank_paper_penalty,
        )
    except KeyboardInterrupt:
        bar.close()
        if out.is_file():
            print(f"\nInterrupted: kept the last complete epoch's checkpoint in {out}.", file=sys.stderr)
        else:
            print("\nInterrupted before the first epoch finished: nothing was written.", file=sys.stderr)
        return 130
    bar.close()
    print(f"Trained {arch.name} for {len(history)} epochs; weights in {out}", file=sys.stderr)
    if test is not None:
        from ..core import weights

        result = training.evaluate(model, test)
        card = dict(weights.load(out).card)
        card["test_accuracy"] = round(result["accuracy"], 5)
        card["test_n"] = result["n"]
        card["test_data"] = "MNIST t10k (official test set)"
        weights.write_card(out, card)
        print(f"Test accuracy: {result['accuracy']:.4f} on {result['n']} images", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..core import mnist, training, weights

    loaded = weights.load(args.model)
    test = mnist.load(_data_dir(args), "test")
    result = training.evaluate(loaded.model, test)
    if args.json:
        print(json.dumps({"model": loaded.name, "weights": str(loaded.path), **result}))
    else:
        print(f"{loaded.name} ({loaded.path}): accuracy {result['accuracy']:.4f} on {result['n']} test images")
        print("confusion matrix (rows: true digit, columns: predicted):")
        print("      " + " ".join(f"{d:>5}" for d in range(10)))
        for digit, row in enumerate(result["confusion_matrix"]):
            print(f"  {digit}:  " + " ".join(f"{v:>5}" for v in row))
    return 0


def _import(args: argparse.Namespace) -> int:
    from ..core import importer
    from ..core.weights import SUFFIX

    out = _checked_out(Path(args.out), SUFFIX)
    result = importer.import_model(args.target, args.weights, out, name=args.name)
    print(f"Imported {args.target} as {result.arch.name!r}: {result.arch.spec}", file=sys.stderr)
    print(f"Same logits as your model (largest difference {result.max_difference:.2g}); weights in {result.path}. "
          f"Open it with cnnviz --model {result.path} or File > Open model (Ctrl+Shift+O).", file=sys.stderr)
    return 0


IMPORT_HELP = """convert your own PyTorch model into a weight file the app can show.
WARNING: this imports MODULE and runs your own Python code (its module body, ATTR's class or factory, its
forward) in this process, explicitly, outside the app; only import code you trust. The app itself only reads
the .safetensors result, which never executes code. FILE.pt must be a state dict (torch.save(model.state_dict(),
...)), loaded with torch.load(weights_only=True); the model must be a sequential stack of supported layers
for a 1x28x28 input with 10 outputs (see README, 'Bring your own network')."""


def _add_data_args(p: argparse.ArgumentParser) -> None:
    from ..core.mnist import DEFAULT_MIRROR

    p.add_argument("--data", metavar="DIR", help="folder with the MNIST IDX files (default: $CNNVIZ_MNIST_DIR)")
    p.add_argument("--download", metavar="DIR", help="download the official MNIST files into DIR (MD5-checked)")
    p.add_argument("--mirror", default=DEFAULT_MIRROR, help=argparse.SUPPRESS)


def parser() -> argparse.ArgumentParser:
    from ..core.networks import ARCHITECTURES

    p = argparse.ArgumentParser(prog="cnnviz-train", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="train a network and write its weights and model card")
    fit.add_argument("--model", choices=sorted(ARCHITECTURES), default=None,
                     help="a shipped architecture (default tiny)")
    fit.add_argument("--arch", metavar="SPEC", help="any network in the spec language, e.g. "
                     "c16k5p2-relu-max2-c32k3-relu-gap-fc10 (see README, 'Bring your own network')")
    fit.add_argument("--name", metavar="NAME", help="the network's name with --arch (default: the spec)")
    fit.add_argument("--limit", type=int, metavar="N", help="train on the first N training images only")
    fit.add_argument("--out", required=True, metavar="PATH", help="weight file to write (.safetensors)")
    fit.add_argument("--epochs", type=int, default=60)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--batch-size", type=int, default=128)
    fit.add_argument("--lr", type=float, default=1e-2, help="peak learning rate (one-cycle)")
    fit.add_argument("--no-augment", action="store_true", help="train on the plain images")
    fit.add_argument("--blank-paper-penalty", type=float, default=0.0, metavar="W",
                     help="penalise the last conv block's activation on blank paper (0: off; see README)")
    fit.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation at the end")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_args(fit)
    fit.set_defaults(func=_fit)
    imp = sub.add_parser("import", help="convert your own PyTorch model (runs your code!) into a weight file",
                         description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("target", metavar="MODULE:ATTR", help="your module (dotted name or path/to/file.py) and the "
                     "nn.Module instance, class or zero-argument factory in it, e.g. mynet:Net")
    imp.add_argument("--weights", required=True, metavar="FILE.pt", help="the model's state dict (torch.save)")
    imp.add_argument("--out", required=True, metavar="FILE.safetensors", help="weight file to write")
    imp.add_argument("--name", metavar="NAME", help="the network's name in the app (default: ATTR)")
    imp.set_defaults(func=_import)
    ev = sub.add_parser("evaluate", help="accuracy and confusion matrix on the t10k test set")
    ev.add_argument("--model", default="tiny", metavar="NAME|PATH", help="shipped model name or weight file")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_args(ev)
    ev.set_defaults(func=_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
