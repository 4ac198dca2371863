"""`python -m cancel_job_mcp.backends.local`: the supervisor of one job, or the state directory's
successor (the runtime starts both; see supervisor.py and successor.py)."""

import argparse
import logging
import sys
from pathlib import Path

from .successor import succeed
from .supervisor import supervise

parser = argparse.ArgumentParser(prog="cancel-job-mcp-supervisor")
parser.add_argument("--home", type=Path, required=True)
parser.add_argument("--lease", required=True)
parser.add_argument("job_id", nargs="?", help="without one: the state directory's successor")
args = parser.parse_args()
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
if args.job_id is None:
    succeed(args.home, args.lease)
else:
    supervise(args.home, args.job_id, args.lease)
