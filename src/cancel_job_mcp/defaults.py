"""Every default a setting has, defined once: the command line's options, the app's options, the
tools and the local runtime all read them here. (A default published in a tool's schema, such as
list_jobs' `limit`, lives in the schema: see `server.LIST_LIMIT`.)"""

DEFAULT_CALL_TIMEOUT = 120.0
# When stdio's input ends, the calls under way get the call timeout and this margin to be answered.
DRAIN_MARGIN_SECONDS = 10.0
DEFAULT_MAX_CONCURRENT_CALLS = 64

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_MAX_SESSIONS = 1_000  # ~37 KB each: ~37 MB at most
DEFAULT_SESSION_IDLE_TIMEOUT = 600.0
DEFAULT_HEADER_TIMEOUT = 10.0  # to send a request's headers

# OAuth (--oauth-issuer, [http.oauth]): the claim holding a token's project grant, and the clock skew
# allowed on a token's exp and nbf, in seconds.
DEFAULT_PROJECTS_CLAIM = "cjm_projects"
DEFAULT_OAUTH_LEEWAY = 30.0

# The local runtime: how long a canceled job has between SIGTERM and SIGKILL, and its log's cap.
DEFAULT_GRACE_SECONDS = 5.0
DEFAULT_LOG_LIMIT = 10 * 1024 * 1024
