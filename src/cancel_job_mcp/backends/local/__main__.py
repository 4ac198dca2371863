"""`python -m cancel_job_mcp.backends.local`: the supervisor of one job (the runtime starts it)."""

from .supervisor import main

main()
