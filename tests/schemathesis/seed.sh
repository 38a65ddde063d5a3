#!/usr/bin/env bash
# The resources schemathesis's requests are pointed at (schemathesis.toml names them): the
# walk-through's clusters, project, composite app, apps and set, with one of every kind of
# intent, role bindings and tokens; a set for document writes, and a project, composite app and
# set to delete. Run again between phases, it makes what the phase before deleted (what exists
# is left as it is). API is the server's address, TOKEN an admin token.
set -euo pipefail
post() {
  local status
  status=$(curl -sS -o "$API_OUT" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X POST "$API/v2$1" -d "$2")
  case "$status" in
    2??|409) ;;
    *) echo "seed: POST $1 answered $status: $(cat "$API_OUT")" >&2; exit 1 ;;
  esac
}
API_OUT=$(mktemp)
trap 'rm -f "$API_OUT"' EXIT
CA=/projects/shop/composite-apps/storefront/v1
SET=$CA/traffic-intent-sets/default
post /clusters '{"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com",
  "labels": {"region": "eu-west"}, "istio": {"ingressGateway": {"address": "198.51.100.10"}}}}'
post /clusters '{"metadata": {"name": "cluster02"}, "spec": {"identity": "cluster02.mesh.example.com",
  "labels": {"region": "eu-central"}, "istio": {"ingressGateway": {"address": "198.51.100.20"}}}}'
post /projects '{"metadata": {"name": "shop"}, "spec": {"namespaces": ["default", "payments"]}}'
post /projects/shop/composite-apps '{"metadata": {"name": "storefront"}, "spec": {"version": "v1"}}'
post $CA/apps '{"metadata": {"name": "httpbin"}, "spec": {"namespace": "default", "placement": {"clusters": ["cluster02"]}}}'
post $CA/apps '{"metadata": {"name": "sleep"}, "spec": {"namespace": "default", "placement": {"clusters": ["cluster01"]}}}'
post $CA/traffic-intent-sets '{"metadata": {"name": "default"}}'
# Set documents are written into version v2, whose set has the request example's name.
post /projects/shop/composite-apps '{"metadata": {"name": "storefront"}, "spec": {"version": "v2"}}'
for app in httpbin sleep; do
  post /projects/shop/composite-apps/storefront/v2/apps "{\"metadata\": {\"name\": \"$app\"},
    \"spec\": {\"namespace\": \"payments\", \"placement\": {\"clusters\": [\"cluster01\"]}}}"
done
post /projects/shop/composite-apps/storefront/v2/traffic-intent-sets '{"metadata": {"name": "default"}}'
post $CA/traffic-intent-sets '{"metadata": {"name": "sandbox"}}'
post /projects/shop/composite-apps '{"metadata": {"name": "sandbox"}, "spec": {"version": "v1"}}'
post /projects '{"metadata": {"name": "sandbox"}}'
post $SET/inbound-intents '{"metadata": {"name": "httpbin"}, "spec": {"app": "httpbin", "serviceName": "httpbin",
  "port": 8000, "protocol": "HTTP", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
  {"name": "v2", "labels": {"version": "v2"}}]}}'
post $SET/inbound-intents/httpbin/clients '{"metadata": {"name": "sleep"}, "spec": {"app": "sleep"}}'
post $SET/inbound-intents/httpbin/clients/sleep/security-intents '{"metadata": {"name": "status-and-headers"},
  "spec": {"action": "ALLOW", "rules": [{"methods": ["GET"], "paths": ["/status/*", "/headers"]}]}}'
post $SET/outbound-intents '{"metadata": {"name": "partner-api"}, "spec": {"hosts": ["api.partner.example"],
  "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}], "resolution": "DNS", "clients": ["sleep"]}}'
post $SET/route-intents '{"metadata": {"name": "httpbin-canary"}, "spec": {"target": {"inboundIntent": "httpbin"},
  "http": [{"name": "all", "route": [{"subset": "v1"}]}]}}'
post /role-bindings '{"metadata": {"name": "auditors"}, "spec": {"subject": {"kind": "Group", "name": "auditors"}, "role": "reader"}}'
post /projects/shop/role-bindings '{"metadata": {"name": "alice-edits"}, "spec": {"subject": {"kind": "User", "name": "alice"}, "role": "editor"}}'
post /tokens '{"metadata": {"name": "ci-reader"}, "spec": {"roles": ["reader"]}}'
post /projects/shop/tokens '{"metadata": {"name": "deployer"}, "spec": {"role": "editor"}}'
# A deployment revision to read, once (the worker fails to reach the clusters, which have no
# credentials: that is a deployment too).
if ! curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$API/v2$SET/deployments/1"; then
  post $SET/deploy ''
fi
