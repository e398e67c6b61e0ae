#!/usr/bin/env bash
# make synth: the AWS template (deploy/aws) for the parameters in CONFIG (default
# deploy/aws/config.toml), written to deploy/aws/cdk.out. Offline: no AWS account, no Docker
# (container images are only hashed here; `cdk deploy` builds and pushes them).
source "$(dirname "$0")/lib.sh"
config="$(realpath -m "${CONFIG:-${ROOT}/deploy/aws/config.toml}")"
[ -f "$config" ] || die "no deployment config at $config: copy deploy/aws/config.example.toml to deploy/aws/config.toml and fill it in (or set CONFIG=...)"
node="${ROOT}/tests/interop/node/node_modules/.bin/node"
if [ -x "$node" ]; then export JSII_NODE="$node"; fi   # Node 22 from `make interop-clients`
step "Synthesizing the AWS template for $(basename "$config") into deploy/aws/cdk.out"
cd "${ROOT}/deploy/aws"
MCP_DEPLOY_CONFIG="$config" CDK_OUTDIR=cdk.out "$UV" run --frozen python app.py
echo "Templates: $(ls cdk.out/*.template.json); cdk-nag report: $(ls cdk.out/*NagReport.csv)"
