"""mcp-agent command line (filled in by the agent issue)."""

import sys


def main() -> int:
    print("mcp-agent: not implemented yet", file=sys.stderr)
    return 2
