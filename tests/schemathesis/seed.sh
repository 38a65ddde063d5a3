#!/usr/bin/env bash
# The resources schemathesis's requests are pointed at (schemathesis.toml names them): the
# walk-through's clusters, project, composite app, apps and set, with one of every kind of
# intent, a role binding and tokens. API is the server's address, TOKEN an admin token.
set -euo pipefail
post() {
  curl --fail-with-body -sS -o /dev/null -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X POST "$API/v2$1" -d "$2"
}
CA=/projects/shop/composite-apps/storefront/v1
SET=$CA/traffic-intent-sets/default
post /clusters '{"metadata": {"name": "cluster01"}, "spec": {"identity": "cluster01.mesh.example.com",
  "labels": {"region": "eu-west"}, "istio": {"ingressGateway": {"address": "198.51.100.10"}}}}'
post /clusters '{"metadata": {"name": "cluster02"}, "spec": {"identity": "cluster02.mesh.example.com",
  "istio": {"ingressGateway": {"address": "198.51.100.20"}}}}'
post /projects '{"metadata": {"name": "shop"}, "spec": {"namespaces": ["default"]}}'
post /projects/shop/composite-apps '{"metadata": {"name": "storefront"}, "spec": {"version": "v1"}}'
post $CA/apps '{"metadata": {"name": "httpbin"}, "spec": {"namespace": "default", "placement": {"clusters": ["cluster02"]}}}'
post $CA/apps '{"metadata": {"name": "sleep"}, "spec": {"namespace": "default", "placement": {"clusters": ["cluster01"]}}}'
post $CA/traffic-intent-sets '{"metadata": {"name": "default"}}'
post $SET/inbound-intents '{"metadata": {"name": "httpbin"}, "spec": {"app": "httpbin", "serviceName": "httpbin",
  "port": 8000, "protocol": "HTTP", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}}'
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
# A deployment revision to read (the worker fails to reach the clusters, which have no
# credentials: that is a deployment too).
post $SET/deploy ''
