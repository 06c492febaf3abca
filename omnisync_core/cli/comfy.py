"""``omnisync comfy run``: run an API-format workflow on one or more running ComfyUI servers."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  omnisync comfy run workflows/api/lipsync_basic.json --server http://127.0.0.1:8188 \\
      --input video=face.mp4 --input audio=speech.wav --out out/
  omnisync comfy run workflows/api/lipsync_basic.json --server http://gpu1:8188 --server http://gpu2:8188 \\
      --input video=a.mp4 --input video=b.mp4 --input audio=speech.wav --out out/
  omnisync comfy run workflows/api/lipsync_basic.json --server http://127.0.0.1:8188 --jobs jobs.json --out out/

--input KIND=PATH uploads PATH and writes it into the workflow's one loader of that kind
(video: LoadVideo, VHS_LoadVideo; audio: LoadAudio, VHS_LoadAudioUpload; image: LoadImage).
--input NODE_ID.INPUT=VALUE sets one node input (JSON values: 5, 0.5, true; an existing local
file is uploaded first). A key given N times makes N jobs; keys given once apply to every job.
A --jobs file is a JSON list of such objects, e.g. [{"video": "a.mp4", "audio": "a.wav", "3.seed": 1}],
with paths relative to the file; an optional "name" names the job's output folder.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "comfy",
        help="run workflows headless on running ComfyUI servers",
        description="Run workflows headless through ComfyUI's HTTP API.",
    )
    actions = parser.add_subparsers(dest="comfy_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="upload inputs, queue an API-format workflow, follow it, download its outputs",
        description="Upload inputs, queue an API-format workflow, follow its progress and download "
        "its outputs. Jobs are spread over the servers; a job whose server goes away is retried "
        "on another one.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("workflow", help="API-format workflow JSON (e.g. workflows/api/*.json)")
    run.add_argument(
        "--server",
        action="append",
        required=True,
        metavar="URL",
        help="ComfyUI base URL, e.g. http://127.0.0.1:8188 (repeat for several servers)",
    )
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="video=PATH, audio=PATH, image=PATH or NODE_ID.INPUT=VALUE (repeatable)",
    )
    run.add_argument("--jobs", metavar="JSON", help="JSON list of input sets, one job each")
    run.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for the outputs (one sub-folder per job when there are several)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="give up on a job after S seconds (it is removed from the server's queue)",
    )
    run.add_argument("--include-previews", action="store_true", help="also download preview (temp) files")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..comfy_client import jobs_from_file, jobs_from_inputs, load_workflow, run_jobs
    from ..errors import OmniSyncError

    workflow = load_workflow(args.workflow)
    if args.jobs:
        jobs = jobs_from_file(args.jobs)
        if args.input:
            # --input values apply to every job unless the job sets the same key.
            shared = jobs_from_inputs(args.input)
            if len(shared) != 1:
                raise OmniSyncError("with --jobs, give each --input key once (it applies to every job)")
            for job in jobs:
                job.files = {**shared[0].files, **job.files}
                job.overrides = {**shared[0].overrides, **job.overrides}
    else:
        jobs = jobs_from_inputs(args.input)
    out_dir = Path(args.out)
    outcomes = run_jobs(
        args.server,
        jobs,
        workflow,
        out_dir,
        timeout=args.timeout,
        include_temp=args.include_previews,
        show_progress=not args.no_progress,
    )
    for outcome in outcomes:
        for path in outcome.paths:
            print(path)
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return 0
    if len(outcomes) == 1:
        raise OmniSyncError(failed[0].error or "the job failed")
    for outcome in failed:
        print(f"omnisync: {outcome.job.name} failed: {outcome.error}", file=sys.stderr)
    raise OmniSyncError(f"{len(failed)} of {len(outcomes)} jobs failed")
