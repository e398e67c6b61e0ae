"""The CDK app: `cdk synth` / `cdk deploy` run this (cdk.json), `make synth` too.

The parameters come from config.toml next to this file, or the file $MCP_DEPLOY_CONFIG names.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp_deploy.app import build

config_file = Path(os.environ.get("MCP_DEPLOY_CONFIG", Path(__file__).with_name("config.toml")))
try:
    app = build(config_file, outdir=os.environ.get("CDK_OUTDIR"))
except ValueError as problem:  # an invalid setting or an image the policy refuses: one line
    sys.exit(f"{config_file}: {problem}")
app.synth()
