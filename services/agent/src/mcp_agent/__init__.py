"""mcp-agent: the demo MCP agent, and its OAuth as a library for any MCP client framework.

The public API (semantic versioning from 1.0; in 0.x a minor version may change it, and the
changelog in services/agent/README.md says how) is exactly what this module exports:

    agent_auth, AgentAuth, AgentSettings, Login, PermissionRefused, FileTokenStorage, Tracer, __version__

Everything else in the package (its modules, and names starting with `_`) is the demo agent's
own and may change in any release. docs/agent-frameworks.md shows the API with pydantic-ai, the
OpenAI Agents SDK and LangChain.
"""

from .auth import AgentAuth, agent_auth
from .config import AgentSettings
from .login import Login
from .refusal import PermissionRefused
from .storage import FileTokenStorage
from .trace import Tracer

__version__ = "0.2.0"

__all__ = ["AgentAuth", "AgentSettings", "FileTokenStorage", "Login", "PermissionRefused", "Tracer", "__version__",
           "agent_auth"]
