"""``omnisync eval``: lip-sync, fidelity and identity figures for a dubbed video."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import OmniSyncError

EPILOG = """\
examples:
  omnisync eval --pred out.mp4 --source in.mp4 --audio speech.wav --json out.json
  omnisync eval --pred-dir preds/ --source-dir clips/ --json report.json --markdown report.md
  omnisync eval --list jobs.csv --json report.json      (columns: pred,source[,audio][,reference])

sync offset > 0 means the audio is late (heard that many frames after the mouth moves).
PSNR is written as the string "inf" where pred equals source; null means not measured.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "eval",
        help="measure lip sync, fidelity outside the mouth and identity of a lip-synced video",
        description="Measure lip sync (landmark mouth opening vs speech envelope), PSNR/SSIM outside and "
        "inside the mouth, identity distance, LMD and temporal stability of a prediction against its source.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    one = parser.add_argument_group("one clip")
    one.add_argument("--pred", type=Path, help="the lip-synced video")
    one.add_argument("--source", type=Path, help="the original video it was made from")
    one.add_argument("--audio", type=Path, help="the driving speech (default: pred's own audio track)")
    one.add_argument("--reference", type=Path, help="ground-truth video for LMD (e.g. the real speaker)")
    many = parser.add_argument_group("many clips")
    many.add_argument("--pred-dir", type=Path, help="folder of predictions, paired with sources by file name")
    many.add_argument("--source-dir", type=Path, help="folder of source videos")
    many.add_argument("--audio-dir", type=Path, help="folder of driving audio, by file name")
    many.add_argument("--reference-dir", type=Path, help="folder of reference videos, by file name")
    many.add_argument("--list", type=Path, help="JSON list or CSV of pred,source[,audio][,reference][,name]")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--markdown", type=Path, help="write a markdown table here (many clips)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json / --markdown file")
    parser.add_argument("--max-offset", type=int, default=15, help="sync search range in frames (default 15)")
    parser.add_argument("--identity-samples", type=int, default=16, help="frames used for identity")
    parser.set_defaults(func=run)


def _jobs(args: argparse.Namespace) -> list:
    from ..evaluate.batch import Job, pair_folders, read_job_list

    if args.list is not None:
        return read_job_list(args.list)
    if args.pred_dir is not None or args.source_dir is not None:
        if args.pred_dir is None or args.source_dir is None:
            raise OmniSyncError("folder mode needs both --pred-dir and --source-dir")
        return pair_folders(args.pred_dir, args.source_dir, args.audio_dir, args.reference_dir)
    if args.pred is None or args.source is None:
        raise OmniSyncError("give --pred and --source (or --pred-dir/--source-dir, or --list)")
    return [Job(args.pred.stem, args.pred, args.source, args.audio, args.reference)]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..evaluate.batch import markdown_table, write_reports
    from ..evaluate.pair import evaluate_files
    from ..filemode import write_text_atomic
    from ..video import check_output_path

    for report in (args.json, args.markdown):  # before the evaluation, which can take minutes
        if report is not None:
            check_output_path(report, args.overwrite)
    jobs = _jobs(args)
    single = args.pred is not None and args.pred_dir is None and args.list is None
    results = []
    for job in jobs:
        with tqdm(desc=job.name, unit="frame", file=sys.stderr, leave=False) as bar:

            def progress(done: int, total: int, bar=bar) -> None:
                bar.total = total or None
                bar.n = done
                bar.refresh()

            results.append(
                evaluate_files(
                    job.pred, job.source, job.audio, job.reference,
                    identity_samples=args.identity_samples, max_offset=args.max_offset, progress=progress,
                )
            )  # fmt: skip
    names = [job.name for job in jobs]
    if single:
        figures = results[0].to_json()
        text = json.dumps(figures, indent=2)
        if args.json is not None:
            write_text_atomic(args.json, text + "\n")
        print(text)
    else:
        write_reports(names, results, args.json, args.markdown)
        print(markdown_table(names, results), end="")
    return 0
