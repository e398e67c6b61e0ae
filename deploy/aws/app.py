"""The CDK app: `cdk synth` / `cdk deploy` run this (cdk.json), `make synth` too.

The parameters come from config.toml next to this file, or the file $MCP_DEPLOY_CONFIG names.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp_deploy.app import build

config_file = Path(os.environ.get("MCP_DEPLOY_CONFIG", Path(__file__).with_name("config.toml")))
build(config_file, outdir=os.environ.get("CDK_OUTDIR")).synth()
