"""cancel-job-mcp: an MCP server that cancels and finds jobs wherever they run."""

# The one place the version is written (pyproject reads it from here): a literal, so that a job's
# supervisor and the CLI, which import this package, do not pay for importlib.metadata.
__version__ = "0.1.0"
