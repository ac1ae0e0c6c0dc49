"""cnnviz-history: list, export, import and re-run the saved drawings (the history database)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import run_cli


def _open(args: argparse.Namespace):
    from ..core.history import History

    history = History.open(args.db)
    if history.notice:
        print(f"note: {history.notice}", file=sys.stderr)
    return history


def _filter(args: argparse.Namespace):
    from ..core.history import Filter

    kind = "reported" if getattr(args, "reported", False) else (
        "misclassified" if getattr(args, "misclassified", False) else "all")
    return Filter(kind=kind, digit=getattr(args, "digit", None), model=getattr(args, "model_filter", None))


def _row(record) -> dict:
    return {"id": record.id, "created": record.created, "model": record.model, "predicted": record.predicted,
            "confidence": None if record.confidence is None else round(record.confidence, 6),
            "label": record.label, "reported": record.reported, "reason": record.reason, "note": record.note,
            "strokes": record.strokes is not None, "source": record.source}


def _list(args: argparse.Namespace) -> int:
    with _open(args) as history:
        flt = _filter(args)
        total = history.count(flt, args.search)
        offset = 0
        shown = 0
        while shown < (args.limit or total):
            page = history.query(flt, args.search, order=args.order, limit=min(500, (args.limit or total) - shown),
                                 offset=offset)
            if not page:
                break
            for r in page:
                if args.json:
                    print(json.dumps(_row(r)))
                else:
                    pred = "-" if r.predicted is None else f"{r.predicted} ({r.confidence:.1%})"
                    label = "" if r.label is None else f" true {r.label}"
                    report = f" reported: {r.reason}" if r.reported else ""
                    note = f" note: {r.note}" if r.note else ""
                    print(f"{r.id:6d}  {r.created[:19]}  {r.model or '-':8s} {pred}{label}{report}{note}")
            shown += len(page)
            offset += len(page)
        if not args.json:
            print(f"{shown} of {total} drawings", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..core.history import export_folder

    with _open(args) as history:
        ids = history.ids(_filter(args), args.search, order="id")
        n = export_folder(history.iter_records(ids), Path(args.folder))
    print(f"exported {n} drawings to {args.folder} (drawings.csv, drawings.json and one PNG each)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from ..core import weights
    from ..core.analysis import Analyzer
    from ..core.errors import CnnvizError
    from ..core.history import analyse_record, import_json, import_pngs

    source = Path(args.source)
    if source.is_dir():
        records = import_pngs(source)
    elif source.is_file():
        records = import_json(source)
    else:
        raise CnnvizError(f"{source}: no such file or folder (give a folder of PNGs or a drawings JSON file)")
    loaded = weights.load(args.model)
    analyzer = Analyzer(loaded)
    records = [analyse_record(analyzer, r, loaded) for r in records]
    with _open(args) as history:
        ids = history.save_many(records)
    print(f"imported {len(ids)} drawings from {source} (read by {loaded.name})")
    return 0


def _rerun(args: argparse.Namespace) -> int:
    from ..core import weights
    from ..core.history import rerun

    loaded = weights.load(args.model)
    with _open(args) as history:
        ids = history.ids(_filter(args), args.search, order="id")
        results = rerun(history, loaded, ids)
    changed = 0
    for rid, before, after in results:
        is_changed = before.predicted != after.predicted
        changed += is_changed
        if args.json:
            print(json.dumps({"id": rid, "before": {"model": before.model, "predicted": before.predicted,
                                                    "confidence": before.confidence},
                              "after": {"model": after.model, "predicted": after.predicted,
                                        "confidence": after.confidence}, "changed": is_changed}))
        else:
            def shown(o):
                return "-" if o.predicted is None else f"{o.predicted} ({o.confidence:.1%}, {o.model or '?'})"
            print(f"{rid:6d}  {shown(before)} -> {shown(after)}{'  CHANGED' if is_changed else ''}")
    if not args.json:
        print(f"{len(results)} drawings re-run on {loaded.name}, {changed} changed", file=sys.stderr)
    return 0


def _digit(text: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 9:
        return int(text)
    raise argparse.ArgumentTypeError(f"must be a digit 0-9, got {text!r}")


def _count(text: str) -> int:
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")


def parser() -> argparse.ArgumentParser:
    from ..core.history import ORDERS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=None,
                        help="the history database (default: <user data>/history.sqlite)")
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("--reported", action="store_true", help="only drawings reported as misclassified")
    selection.add_argument("--misclassified", action="store_true", help="only drawings whose true label differs "
                           "from the prediction")
    selection.add_argument("--digit", type=_digit, default=None, help="only drawings of this digit")
    selection.add_argument("--search", default=None, metavar="TEXT", help="only drawings whose note or reason "
                           "contains TEXT")

    p = argparse.ArgumentParser(prog="cnnviz-history", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ls = sub.add_parser("list", parents=[common, selection], help="list saved drawings (newest first)")
    ls.add_argument("--model", dest="model_filter", default=None, metavar="NAME",
                    help="only drawings read by this model")
    ls.add_argument("--json", action="store_true", help="one JSON object per drawing")
    ls.add_argument("--order", choices=sorted(ORDERS), default="newest")
    ls.add_argument("--limit", type=_count, default=0, help="at most this many (0: all)")
    ls.set_defaults(func=_list)

    ex = sub.add_parser("export", parents=[common, selection],
                        help="write drawings.csv, drawings.json and PNGs into a folder")
    ex.add_argument("folder", metavar="DIR")
    ex.add_argument("--model", dest="model_filter", default=None, metavar="NAME",
                    help="only drawings read by this model")
    ex.set_defaults(func=_export)

    im = sub.add_parser("import", parents=[common], help="import a folder of PNGs or a drawings JSON file")
    im.add_argument("source", metavar="DIR|FILE")
    im.add_argument("--model", default="tiny", metavar="NAME|PATH", help="the model that reads the imported "
                    "drawings (default: tiny)")
    im.set_defaults(func=_import)

    rr = sub.add_parser("rerun", parents=[common, selection], help="re-analyse saved drawings on a model and "
                        "show before -> after (the database is not changed)")
    rr.add_argument("--model", required=True, metavar="NAME|PATH", help="shipped model name or weight file")
    rr.add_argument("--json", action="store_true", help="one JSON object per drawing: id, before, after, changed")
    rr.set_defaults(func=_rerun)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
