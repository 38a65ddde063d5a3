//! Intent fields to Istio fields: TLS settings, load balancing, connection pools, outlier detection.

use crate::domain::inbound::{
    ClientTls, ConnectionPool, InboundIntentSpec, LoadBalancer, MtlsMode, OutlierDetection,
    SimpleLoadBalancer,
};
use crate::istio::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, ConsistentHashLb, HttpCookie,
    HttpSettings, LoadBalancerSettings, SimpleLb, TcpSettings, TrafficPolicy,
};

/// Client-side TLS towards the service.
pub fn client_tls(mtls: MtlsMode, settings: Option<&ClientTls>) -> ClientTlsSettings {
    let mode = match mtls {
        MtlsMode::IstioMutual => ClientTlsMode::IstioMutual,
        MtlsMode::Simple => ClientTlsMode::Simple,
        MtlsMode::Mutual => ClientTlsMode::Mutual,
        MtlsMode::Disable => ClientTlsMode::Disable,
    };
    let mut tls = ClientTlsSettings {
        mode: Some(mode),
        ..ClientTlsSettings::default()
    };
    if matches!(mtls, MtlsMode::Simple | MtlsMode::Mutual)
        && let Some(s) = settings
    {
        tls.credential_name = s.credential_name.as_ref().map(|c| c.to_string());
        tls.sni = s.sni.as_ref().map(|c| c.to_string());
        tls.subject_alt_names = s.subject_alt_names.iter().map(|c| c.to_string()).collect();
    }
    tls
}

pub fn load_balancer(lb: &LoadBalancer) -> LoadBalancerSettings {
    LoadBalancerSettings {
        simple: lb.simple.map(|s| match s {
            SimpleLoadBalancer::RoundRobin => SimpleLb::RoundRobin,
            SimpleLoadBalancer::LeastRequest => SimpleLb::LeastRequest,
            SimpleLoadBalancer::Random => SimpleLb::Random,
            SimpleLoadBalancer::Passthrough => SimpleLb::Passthrough,
        }),
        consistent_hash: lb.consistent_hash.as_ref().map(|h| ConsistentHashLb {
            http_header_name: h.http_header_name.as_ref().map(|n| n.to_string()),
            http_cookie: h.http_cookie.as_ref().map(|c| HttpCookie {
                name: c.name.to_string(),
                path: c.path.clone(),
                ttl: c.ttl.map(|t| t.to_string()),
                attributes: Vec::new(),
            }),
            use_source_ip: h.use_source_ip,
            http_query_parameter_name: h.http_query_parameter_name.as_ref().map(|n| n.to_string()),
            ring_hash: None,
            maglev: None,
        }),
    }
}

fn signed(count: u32) -> i32 {
    // Counts are validated to at most i32::MAX (Istio's int32 fields).
    i32::try_from(count).unwrap_or(i32::MAX)
}

pub fn connection_pool(pool: &ConnectionPool) -> ConnectionPoolSettings {
    let tcp = TcpSettings {
        max_connections: pool.max_connections.map(|c| signed(c.get())),
        connect_timeout: pool.connect_timeout.map(|d| d.to_string()),
        ..TcpSettings::default()
    };
    let http = HttpSettings {
        http1_max_pending_requests: pool.http1_max_pending_requests.map(|c| signed(c.get())),
        http2_max_requests: pool.http2_max_requests.map(|c| signed(c.get())),
        max_requests_per_connection: pool.max_requests_per_connection.map(|c| signed(c.get())),
        max_retries: pool.max_retries.map(|c| signed(c.get())),
        idle_timeout: pool.idle_timeout.map(|d| d.to_string()),
        ..HttpSettings::default()
    };
    ConnectionPoolSettings {
        tcp: (tcp != TcpSettings::default()).then_some(tcp),
        http: (http != HttpSettings::default()).then_some(http),
    }
}

pub fn outlier_detection(od: &OutlierDetection) -> crate::istio::OutlierDetection {
    crate::istio::OutlierDetection {
        consecutive_5xx_errors: od.consecutive_5xx_errors.map(|c| c.get()),
        consecutive_gateway_errors: od.consecutive_gateway_errors.map(|c| c.get()),
        interval: od.interval.map(|d| d.to_string()),
        base_ejection_time: od.base_ejection_time.map(|d| d.to_string()),
        max_ejection_percent: od.max_ejection_percent.map(|p| signed(p.get())),
        ..crate::istio::OutlierDetection::default()
    }
}

/// The traffic policy of the service's DestinationRule, with TLS for clients using `mtls`.
pub fn traffic_policy(spec: &InboundIntentSpec, mtls: MtlsMode) -> TrafficPolicy {
    let policy = spec.traffic_policy.as_ref();
    TrafficPolicy {
        load_balancer: policy
            .and_then(|p| p.load_balancer.as_ref())
            .map(load_balancer),
        connection_pool: policy
            .and_then(|p| p.connection_pool.as_ref())
            .map(connection_pool),
        outlier_detection: policy
            .and_then(|p| p.outlier_detection.as_ref())
            .map(outlier_detection),
        tls: Some(client_tls(mtls, spec.client_tls.as_ref())),
        port_level_settings: Vec::new(),
    }
}
