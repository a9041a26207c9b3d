"""Command line: thin argparse entry points over ``nasengine.api``.

    python -m nasengine methods
    python -m nasengine make-demo-data DIR
    python -m nasengine estimate --method dints --data DIR [--preset tiny] [--set k=v] [--json]
    python -m nasengine search   --method dints --data DIR --out DIR [--preset tiny] [--set k=v]
                                 [--resume]
    python -m nasengine retrain  --genotype FILE --data DIR --out DIR [--method M] [--preset tiny]
                                 [--resume]
    python -m nasengine predict  --model DIR [--model DIR ...] --input FILE --output FILE
                                 [--overlap 0.5] [--mirror] [--postprocess auto|none|lcc]
    python -m nasengine evaluate --model DIR [--data DIR] [--csv FILE] [--json FILE]
    python -m nasengine postprocess --model DIR [--data DIR]   (decide LCC on validation)
    python -m nasengine ensemble --out DIR --model DIR --model DIR ...

User errors (bad data, settings, architecture or model files) print one line and exit 2.
Ctrl-C during search/retrain cancels cooperatively: a checkpoint is written and
``--resume`` continues; a second Ctrl-C aborts at once. A cancelled run exits 3.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 3


def _user_errors() -> tuple[type[BaseException], ...]:
    from nasengine.config import ConfigError
    from nasengine.data.errors import DataError
    from nasengine.genotype import GenotypeError
    from nasengine.inference.bundle import BundleError
    from nasengine.methods import UnknownMethodError

    return (ConfigError, DataError, GenotypeError, BundleError, UnknownMethodError,
            FileNotFoundError, IsADirectoryError, NotADirectoryError)


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def _reporter(out: Path, quiet: bool):
    from nasengine.api import EVENTS_FILE
    from nasengine.events import JsonLinesSink, ProgressBarSink, Reporter

    sinks: list[Any] = [JsonLinesSink(out / EVENTS_FILE)]
    if not quiet:
        sinks.append(ProgressBarSink())
    return Reporter(sinks)


def _cancel_token(args: argparse.Namespace):
    """Cancelled by ``--cancel-file`` appearing or by the first Ctrl-C."""
    from nasengine.events import CancelToken, FileCancelToken

    token = FileCancelToken(args.cancel_file) if args.cancel_file else CancelToken()

    def on_sigint(signum, frame):  # noqa: ARG001
        if token._cancelled:  # second Ctrl-C: stop now
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        print("\ncancelling after this step (Ctrl-C again to abort)...", file=sys.stderr)
        token.cancel()

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not in the main thread
        pass
    return token


# ----------------------------------------------------------------------------- commands

def cmd_methods(args: argparse.Namespace) -> int:
    from nasengine import api

    # each method carries its own "retrain_schema"; "retrain" is the shared one
    doc = {"methods": api.list_methods(), "retrain": api.retrain_schema()}
    print(json.dumps(doc, indent=2))
    return 0


def cmd_make_demo_data(args: argparse.Namespace) -> int:
    from nasengine import api

    path = api.make_demo_data(args.dir, kind=args.kind, n_cases=args.cases, seed=args.seed)
    print(f"demo dataset written to {path}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from nasengine import api
    from nasengine.config import parse_set_options

    result = api.estimate(args.method, args.data, args.preset, parse_set_options(args.set))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    total = result.details.get("device_memory_bytes")
    rows = [("search", result.search_bytes), ("retrain", result.retrain_bytes)]
    print(f"{'stage':<10}{'memory':>12}" + (f"{'fits on this GPU':>20}" if total else ""))
    for name, n in rows:
        fits = f"{'yes' if n <= total else 'NO':>20}" if total else ""
        print(f"{name:<10}{_gib(n):>12}{fits}")
    for key, value in result.details.items():
        if key == "config":
            continue
        if isinstance(value, (int, float, str)) or value is None:
            print(f"  {key}: {value}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from nasengine import api
    from nasengine.config import parse_set_options

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    api.search(args.method, args.data, out, args.preset, parse_set_options(args.set),
               reporter=_reporter(out, args.quiet), cancel=_cancel_token(args),
               resume=args.resume, device=args.device)
    print(f"genotype written to {out / api.GENOTYPE_FILE}")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from nasengine import api
    from nasengine.config import parse_set_options

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = api.retrain(args.genotype, args.data, out, args.preset, parse_set_options(args.set),
                         reporter=_reporter(out, args.quiet), cancel=_cancel_token(args),
                         resume=args.resume, device=args.device, method=args.method)
    info = json.loads((Path(bundle) / "bundle.json").read_text())
    dice = info.get("validation", {}).get("mean_dice")
    exports = ", ".join(k for k, v in info.get("exports", {}).items() if "file" in v) or "none"
    print(f"model bundle written to {bundle} (validation mean Dice: "
          f"{'-' if dice is None else f'{dice:.3f}'}; exports: {exports})")
    return 0


def _models(args: argparse.Namespace):
    return args.model[0] if len(args.model) == 1 else list(args.model)


def cmd_predict(args: argparse.Namespace) -> int:
    from nasengine import api

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    path = api.predict(_models(args), args.input, args.output, sw_batch_size=args.sw_batch_size,
                       overlap=args.overlap, mirror=args.mirror, postprocess=args.postprocess,
                       device=args.device, progress=False if args.quiet else say)
    print(f"segmentation written to {path}")
    return 0


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nasengine import api
    from nasengine.evaluation import write_report_csv

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    report = api.evaluate(_models(args), args.data, overlap=args.overlap, mirror=args.mirror,
                          postprocess=args.postprocess, tolerance_mm=args.tolerance,
                          sw_batch_size=args.sw_batch_size, device=args.device, progress=say)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.csv:
        write_report_csv(report, args.csv)
    tol = report["settings"]["nsd_tolerance_mm"]
    print(f"{len(report['cases'])} test case(s), each in its own geometry; surface Dice at "
          f"{tol:g} mm")
    print(f"{'class':<16}{'Dice mean':>10}{'sd':>8}{'median':>8}{'HD95 mm':>10}"
          f"{'NSD':>8}{'vol err %':>11}")
    for name in report["classes"]:
        row = report["summary"][name]
        print(f"{name[:15]:<16}{_fmt(row['dice']['mean']):>10}{_fmt(row['dice']['sd']):>8}"
              f"{_fmt(row['dice']['median']):>8}{_fmt(row['hd95_mm']['mean'], 2):>10}"
              f"{_fmt(row['nsd']['mean']):>8}{_fmt(row['volume_error_pct']['mean'], 1):>11}")
    print(f"mean Dice over classes: {_fmt(report['mean_dice'])}")
    return 0


def cmd_postprocess(args: argparse.Namespace) -> int:
    from nasengine import api

    doc = api.decide_postprocessing(args.model, args.data, device=args.device,
                                    progress=None if args.quiet else (lambda m: print(m, file=sys.stderr)))
    cases = doc.get("decided_on", {}).get("cases", [])
    for value, row in doc.get("per_class", {}).items():
        print(f"{row['name']:<16} Dice {_fmt(row['dice_before'])} -> {_fmt(row['dice_after'])} "
              f"with the largest component only: {'keep it' if row['keep'] else 'no'}")
    print(f"decided on {len(cases)} validation case(s); written to "
          f"{Path(args.model) / 'postprocessing.json'}")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from nasengine import api

    path = api.make_ensemble(args.out, list(args.model))
    print(f"ensemble of {len(args.model)} models written to {path}")
    return 0


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nasengine",
        description="VoxelSearch engine: neural architecture search for 3D segmentation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("methods", help="list search methods and their config schemas (JSON)")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("make-demo-data", help="write a small synthetic MSD-layout dataset")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--cases", type=int, default=6, help="labelled cases (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kind", choices=("blobs", "anatomy"), default="blobs",
                   help="blobs: quick demo (organ + lesion); anatomy: phantom with nested "
                        "and touching structures, 4 classes, labelled test cases")
    p.set_defaults(func=cmd_make_demo_data)

    def common(p: argparse.ArgumentParser, *, data: bool = True) -> None:
        if data:
            p.add_argument("--data", required=True, metavar="DIR",
                           help="dataset folder (MSD layout: dataset.json, imagesTr, labelsTr)")
        p.add_argument("--device", default=None,
                       help="cpu, cuda, cuda:N (default: VOXELSEARCH_DEVICE, else CUDA if any)")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    def settings(p: argparse.ArgumentParser, preset_help: str) -> None:
        p.add_argument("--preset", default=None, help=preset_help)
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting; VALUE is JSON (e.g. patch_size=[32,32,32])")

    def run_control(p: argparse.ArgumentParser) -> None:
        p.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --out")
        p.add_argument("--cancel-file", default=None, metavar="FILE",
                       help="stop (with a checkpoint) when this file appears")

    p = sub.add_parser("estimate", help="memory needed to search and retrain")
    p.add_argument("--method", required=True)
    common(p)
    settings(p, "settings preset (paper, tiny, ...; default paper)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("search", help="search an architecture; writes OUT/genotype.json")
    p.add_argument("--method", required=True)
    common(p)
    p.add_argument("--out", required=True, metavar="DIR")
    settings(p, "settings preset (paper, tiny, ...; default paper)")
    run_control(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("retrain", help="train a searched architecture; OUT becomes a model")
    p.add_argument("--genotype", required=True, metavar="FILE")
    common(p)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--method", default=None,
                   help="whose retraining settings and presets to use (default: the "
                        "genotype's method; the shared ones when it is not installed)")
    from nasengine.training.retrain import RETRAIN_PRESET_DESCRIPTIONS

    settings(p, "retraining preset of the method (default: default). Shared presets: "
             + "; ".join(f"{k}: {v}" for k, v in RETRAIN_PRESET_DESCRIPTIONS.items())
             .replace("%", "%%"))
    run_control(p)
    p.set_defaults(func=cmd_retrain)

    def inference(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sw-batch-size", type=int, default=4,
                       help="sliding-window patches per forward pass (default 4)")
        p.add_argument("--overlap", type=float, default=0.5,
                       help="share of each window that overlaps the next, 0 to below 1 "
                            "(default 0.5)")
        p.add_argument("--mirror", action="store_true",
                       help="test-time augmentation: also segment the 7 mirrored copies and "
                            "average (8x slower)")
        p.add_argument("--postprocess", choices=("auto", "none", "lcc"), default="auto",
                       help="keep only the largest connected region per class: auto (as the "
                            "model decided on its validation cases), none, or lcc (every "
                            "class); default auto")

    p = sub.add_parser("predict", help="segment a NIfTI volume with a model (or an ensemble)")
    p.add_argument("--model", required=True, metavar="DIR", action="append",
                   help="model folder or ensemble folder; give it several times to average "
                        "several models")
    p.add_argument("--input", required=True, metavar="FILE")
    p.add_argument("--output", required=True, metavar="FILE")
    inference(p)
    common(p, data=False)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score a model on its held-out test cases, each in "
                                        "its own geometry")
    p.add_argument("--model", required=True, metavar="DIR", action="append")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--tolerance", type=float, default=None, metavar="MM",
                   help="surface Dice tolerance in mm (default 1)")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the case table as CSV")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the whole report")
    inference(p)
    common(p, data=False)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("postprocess", help="decide the largest-component cleanup on the "
                                           "model's validation cases")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="dataset folder (default: the one the model was trained on)")
    common(p, data=False)
    p.set_defaults(func=cmd_postprocess)

    p = sub.add_parser("ensemble", help="make an ensemble folder from several models (folds)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--model", required=True, metavar="DIR", action="append")
    p.set_defaults(func=cmd_ensemble)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 user error, 3 cancelled)."""
    args = build_parser().parse_args(argv)
    from nasengine.events import Cancelled

    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"{exc}; continue with --resume", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except _user_errors() as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, OSError) and exc.filename:
            message = f"{exc.filename}: {exc.strerror or message}"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except RuntimeError as exc:
        if "VOXELSEARCH_DEVICE" in str(exc):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise
