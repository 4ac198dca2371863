"""cancel-job-mcp: an MCP server that cancels and finds jobs wherever they run."""

from importlib.metadata import version

__version__ = version("cancel-job-mcp")
