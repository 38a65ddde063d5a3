"""The README's walk-through (httpbin and sleep) through the generated Python client.

Run by tests/clients/run.sh against a running server: MESHINTENT_URL is its base URL and
MESHINTENT_TOKEN an admin token. Every call must answer 2xx with the documented body type;
anything else fails the script. `mypy --strict` checks this file together with the generated
package, so a schema change that breaks a typed client breaks the test.
"""

from __future__ import annotations

import os
import sys
from http import HTTPStatus
from typing import Any, TypeVar

from meshintent_client import AuthenticatedClient
from meshintent_client.api.apps import app_create
from meshintent_client.api.clients import client_create, client_get
from meshintent_client.api.clusters import cluster_create
from meshintent_client.api.composite_apps import composite_app_create
from meshintent_client.api.inbound_intents import inbound_intent_create, inbound_intent_get
from meshintent_client.api.projects import project_create
from meshintent_client.api.security_intents import security_intent_create
from meshintent_client.api.traffic_intent_sets import (
    traffic_intent_set_create,
    traffic_intent_set_manifests,
)
from meshintent_client.models import (
    AccessRule,
    App,
    AppSpec,
    AuthorizationAction,
    Cluster,
    ClusterSpec,
    CompositeApp,
    CompositeAppSpec,
    ConnectionPool,
    ConsistentHash,
    HttpCookie,
    HttpMethod,
    InboundClient,
    InboundClientSpec,
    InboundIntent,
    InboundIntentSpec,
    IngressGatewaySettings,
    IstioSettings,
    LoadBalancer,
    ManifestList,
    Metadata,
    MtlsMode,
    OutlierDetection,
    Placement,
    Problem,
    Project,
    ProjectSpec,
    Protocol,
    SecurityIntent,
    SecurityIntentSpec,
    TrafficIntentSet,
    TrafficIntentSetManifestsFormat,
    TrafficPolicy,
)
from meshintent_client.types import Response

T = TypeVar("T")


def ok(response: Response[T | Problem], expected: type[T], status: HTTPStatus) -> T:
    """The parsed body of a successful call; exits on any other answer."""
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, expected):
        sys.exit(
            f"expected {status.value} with a {expected.__name__}, got "
            f"{response.status_code.value}: {response.content.decode(errors='replace')}"
        )
    return parsed


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"walk-through check failed: {what}")


def main() -> None:
    api = AuthenticatedClient(
        base_url=os.environ["MESHINTENT_URL"],
        token=os.environ["MESHINTENT_TOKEN"],
        raise_on_unexpected_status=True,
    )
    created = HTTPStatus.CREATED
    # Two clusters: httpbin runs on cluster02, sleep on cluster01.
    for name, address in [("cluster01", "198.51.100.10"), ("cluster02", "198.51.100.20")]:
        cluster = Cluster(
            metadata=Metadata(name=name),
            spec=ClusterSpec(
                identity=f"{name}.mesh.example.com",
                istio=IstioSettings(ingress_gateway=IngressGatewaySettings(address=address)),
            ),
        )
        ok(cluster_create.sync_detailed(client=api, body=cluster), Cluster, created)

    project = Project(metadata=Metadata(name="shop"), spec=ProjectSpec(namespaces=["default"]))
    ok(project_create.sync_detailed(client=api, body=project), Project, created)
    composite = CompositeApp(
        metadata=Metadata(name="storefront", description="httpbin and its clients"),
        spec=CompositeAppSpec(version="v1"),
    )
    ok(
        composite_app_create.sync_detailed("shop", client=api, body=composite),
        CompositeApp,
        created,
    )
    where = ("shop", "storefront", "v1")
    for app_name, cluster_name in [("httpbin", "cluster02"), ("sleep", "cluster01")]:
        app = App(
            metadata=Metadata(name=app_name),
            spec=AppSpec(namespace="default", placement=Placement(clusters=[cluster_name])),
        )
        stored_app = ok(app_create.sync_detailed(*where, client=api, body=app), App, created)
        # The server fills in the defaults that derive from the name.
        check(stored_app.spec.service_account == app_name, "the app's service account")

    ok(
        traffic_intent_set_create.sync_detailed(
            *where, client=api, body=TrafficIntentSet(metadata=Metadata(name="default"))
        ),
        TrafficIntentSet,
        created,
    )
    in_set = (*where, "default")

    # httpbin, exposed in the mesh on port 8000, with circuit breaking.
    httpbin = InboundIntent(
        metadata=Metadata(name="httpbin"),
        spec=InboundIntentSpec(
            app="httpbin",
            service_name="httpbin",
            port=8000,
            protocol=Protocol.HTTP,
            traffic_policy=TrafficPolicy(
                load_balancer=LoadBalancer(
                    consistent_hash=ConsistentHash(http_cookie=HttpCookie(name="user", ttl="60s"))
                ),
                connection_pool=ConnectionPool(
                    max_connections=10,
                    connect_timeout="10s",
                    http_2_max_requests=1000,
                    max_requests_per_connection=100,
                ),
                outlier_detection=OutlierDetection(
                    consecutive_5_xx_errors=7, interval="5m", base_ejection_time="15m"
                ),
            ),
        ),
    )
    ok(
        inbound_intent_create.sync_detailed(*in_set, client=api, body=httpbin),
        InboundIntent,
        created,
    )
    # sleep may call httpbin, but only GET /status and GET /headers.
    sleep = InboundClient(metadata=Metadata(name="sleep"), spec=InboundClientSpec(app="sleep"))
    ok(
        client_create.sync_detailed(*in_set, "httpbin", client=api, body=sleep),
        InboundClient,
        created,
    )
    rule = SecurityIntent(
        metadata=Metadata(name="status-and-headers"),
        spec=SecurityIntentSpec(
            action=AuthorizationAction.ALLOW,
            rules=[AccessRule(methods=[HttpMethod.GET], paths=["/status", "/headers"])],
        ),
    )
    ok(
        security_intent_create.sync_detailed(*in_set, "httpbin", "sleep", client=api, body=rule),
        SecurityIntent,
        created,
    )

    # Read back: defaults are filled in and the revision is the first.
    stored = ok(
        inbound_intent_get.sync_detailed(*in_set, "httpbin", client=api),
        InboundIntent,
        HTTPStatus.OK,
    )
    check(stored.spec.mtls == MtlsMode.ISTIO_MUTUAL, f"mtls defaults to ISTIO_MUTUAL: {stored.spec.mtls}")
    check(stored.metadata.revision == 1, f"revision 1: {stored.metadata.revision}")
    stored_client = ok(
        client_get.sync_detailed(*in_set, "httpbin", "sleep", client=api),
        InboundClient,
        HTTPStatus.OK,
    )
    check(stored_client.spec.app == "sleep", "the client's app")

    manifests = ok(
        traffic_intent_set_manifests.sync_detailed(
            *in_set, client=api, format_=TrafficIntentSetManifestsFormat.JSON
        ),
        ManifestList,
        HTTPStatus.OK,
    )
    objects: dict[str, list[dict[str, Any]]] = {
        c.cluster: [o.to_dict() for o in c.objects] for c in manifests.clusters
    }
    check(sorted(objects) == ["cluster01", "cluster02"], f"clusters rendered: {sorted(objects)}")
    kinds = {o["kind"] for o in objects["cluster02"]}
    for kind in ["AuthorizationPolicy", "DestinationRule", "PeerAuthentication", "Gateway"]:
        check(kind in kinds, f"cluster02 has a {kind}: {sorted(kinds)}")
    policies = [o for o in objects["cluster02"] if o["kind"] == "AuthorizationPolicy"]
    allowed = [
        (source, op)
        for policy in policies
        for rule_ in policy["spec"].get("rules", [])
        for source in rule_.get("from", [])
        for op in rule_.get("to", [])
    ]
    check(
        any(
            any(p.endswith("/sa/sleep") for p in s["source"].get("principals", []))
            and o["operation"].get("paths") == ["/status", "/headers"]
            and o["operation"].get("methods") == ["GET"]
            for s, o in allowed
        ),
        f"an AuthorizationPolicy lets sleep GET /status and /headers: {policies}",
    )
    rule_objects = [o for o in objects["cluster02"] if o["kind"] == "DestinationRule"]
    check(
        any(
            o["spec"].get("trafficPolicy", {}).get("outlierDetection", {}).get("consecutive5xxErrors") == 7
            for o in rule_objects
        ),
        f"httpbin's DestinationRule carries the circuit breaking: {rule_objects}",
    )
    entries = [o for o in objects["cluster01"] if o["kind"] == "ServiceEntry"]
    check(len(entries) >= 1, f"cluster01 reaches httpbin through a ServiceEntry: {objects['cluster01']}")
    print(f"python walk-through: {sum(len(v) for v in objects.values())} objects rendered, checks passed")


if __name__ == "__main__":
    main()
