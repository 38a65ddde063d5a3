//! The endpoints of the resource tree, one module per kind (see `crud_endpoints!`).

use super::resources::crud_endpoints;
use crate::domain::envelopes::*;
use actix_web::{delete, get, post, put};

pub mod clusters {
    use super::*;
    crud_endpoints! {
        resource = Cluster, list_type = ClusterList, tag = "clusters", noun = "cluster",
        collection = "/v2/clusters",
        item = "/v2/clusters/{cluster}",
        params = [], item_params = [("cluster", "Cluster name")],
        ops = (cluster_list, cluster_create, cluster_get, cluster_replace, cluster_delete)
    }
}

pub mod projects {
    use super::*;
    crud_endpoints! {
        resource = Project, list_type = ProjectList, tag = "projects", noun = "project",
        collection = "/v2/projects",
        item = "/v2/projects/{project}",
        params = [], item_params = [("project", "Project name")],
        ops = (project_list, project_create, project_get, project_replace, project_delete)
    }
}

pub mod composite_apps {
    use super::*;
    crud_endpoints! {
        resource = CompositeApp, list_type = CompositeAppList, tag = "composite-apps", noun = "composite app",
        collection = "/v2/projects/{project}/composite-apps",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}",
        params = [("project", "Project name")], item_params = [("compositeApp", "Composite app name"), ("version", "Composite app version")],
        ops = (composite_app_list, composite_app_create, composite_app_get, composite_app_replace, composite_app_delete)
    }
}

pub mod apps {
    use super::*;
    crud_endpoints! {
        resource = App, list_type = AppList, tag = "apps", noun = "app",
        collection = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/apps",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/apps/{app}",
        params = [("project", "Project name"), ("compositeApp", "Composite app name"), ("version", "Composite app version")], item_params = [("app", "App name")],
        ops = (app_list, app_create, app_get, app_replace, app_delete)
    }
}

pub mod traffic_intent_sets {
    use super::*;
    crud_endpoints! {
        resource = TrafficIntentSet, list_type = TrafficIntentSetList, tag = "traffic-intent-sets", noun = "traffic intent set",
        collection = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}",
        params = [("project", "Project name"), ("compositeApp", "Composite app name"), ("version", "Composite app version")], item_params = [("set", "Traffic intent set name")],
        ops = (traffic_intent_set_list, traffic_intent_set_create, traffic_intent_set_get, traffic_intent_set_replace, traffic_intent_set_delete), get = custom
    }
}

pub mod inbound_intents {
    use super::*;
    crud_endpoints! {
        resource = InboundIntent, list_type = InboundIntentList, tag = "inbound-intents", noun = "inbound intent",
        collection = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}",
        params = [("project", "Project name"), ("compositeApp", "Composite app name"), ("version", "Composite app version"), ("set", "Traffic intent set name")], item_params = [("intent", "Inbound intent name")],
        ops = (inbound_intent_list, inbound_intent_create, inbound_intent_get, inbound_intent_replace, inbound_intent_delete)
    }
}

pub mod clients {
    use super::*;
    crud_endpoints! {
        resource = Client, list_type = ClientList, tag = "clients", noun = "client",
        collection = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}/clients",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}/clients/{client}",
        params = [("project", "Project name"), ("compositeApp", "Composite app name"), ("version", "Composite app version"), ("set", "Traffic intent set name"), ("intent", "Inbound intent name")], item_params = [("client", "Client name")],
        ops = (client_list, client_create, client_get, client_replace, client_delete)
    }
}

pub mod security_intents {
    use super::*;
    crud_endpoints! {
        resource = SecurityIntent, list_type = SecurityIntentList, tag = "security-intents", noun = "security intent",
        collection = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}/clients/{client}/security-intents",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/inbound-intents/{intent}/clients/{client}/security-intents/{rule}",
        params = [("project", "Project name"), ("compositeApp", "Composite app name"), ("version", "Composite app version"), ("set", "Traffic intent set name"), ("intent", "Inbound intent name"), ("client", "Client name")], item_params = [("rule", "Security intent name")],
        ops = (security_intent_list, security_intent_create, security_intent_get, security_intent_replace, security_intent_delete)
    }
}

pub mod outbound_intents {
    use super::*;
    crud_endpoints! {
        resource = OutboundIntent, list_type = OutboundIntentList, tag = "outbound-intents", noun = "outbound intent",
        collection = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/outbound-intents",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/outbound-intents/{intent}",
        params = [("project", "Project name"), ("compositeApp", "Composite app name"), ("version", "Composite app version"), ("set", "Traffic intent set name")], item_params = [("intent", "Outbound intent name")],
        ops = (outbound_intent_list, outbound_intent_create, outbound_intent_get, outbound_intent_replace, outbound_intent_delete)
    }
}

pub mod route_intents {
    use super::*;
    crud_endpoints! {
        resource = RouteIntent, list_type = RouteIntentList, tag = "route-intents", noun = "route intent",
        collection = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/route-intents",
        item = "/v2/projects/{project}/composite-apps/{compositeApp}/{version}/traffic-intent-sets/{set}/route-intents/{intent}",
        params = [("project", "Project name"), ("compositeApp", "Composite app name"), ("version", "Composite app version"), ("set", "Traffic intent set name")], item_params = [("intent", "Route intent name")],
        ops = (route_intent_list, route_intent_create, route_intent_get, route_intent_replace, route_intent_delete)
    }
}

pub mod global_role_bindings {
    use super::*;
    crud_endpoints! {
        resource = GlobalRoleBinding, list_type = GlobalRoleBindingList, tag = "access", noun = "global role binding",
        collection = "/v2/role-bindings",
        item = "/v2/role-bindings/{binding}",
        params = [], item_params = [("binding", "Role binding name")],
        ops = (global_role_binding_list, global_role_binding_create, global_role_binding_get, global_role_binding_replace, global_role_binding_delete)
    }
}

pub mod project_role_bindings {
    use super::*;
    crud_endpoints! {
        resource = ProjectRoleBinding, list_type = ProjectRoleBindingList, tag = "access", noun = "project role binding",
        collection = "/v2/projects/{project}/role-bindings",
        item = "/v2/projects/{project}/role-bindings/{binding}",
        params = [("project", "Project name")], item_params = [("binding", "Role binding name")],
        ops = (project_role_binding_list, project_role_binding_create, project_role_binding_get, project_role_binding_replace, project_role_binding_delete)
    }
}

pub mod global_tokens {
    use super::*;
    crud_endpoints! {
        resource = GlobalToken, list_type = GlobalTokenList, tag = "access", noun = "global API token",
        collection = "/v2/tokens",
        item = "/v2/tokens/{token}",
        params = [], item_params = [("token", "Token name")],
        ops = (global_token_list, global_token_create, global_token_get, global_token_delete), replace = none
    }
}

pub mod project_tokens {
    use super::*;
    crud_endpoints! {
        resource = ProjectToken, list_type = ProjectTokenList, tag = "access", noun = "project API token",
        collection = "/v2/projects/{project}/tokens",
        item = "/v2/projects/{project}/tokens/{token}",
        params = [("project", "Project name")], item_params = [("token", "Token name")],
        ops = (project_token_list, project_token_create, project_token_get, project_token_delete), replace = none
    }
}

/// Registers every CRUD endpoint.
pub fn register(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    clusters::register(cfg);
    projects::register(cfg);
    composite_apps::register(cfg);
    apps::register(cfg);
    traffic_intent_sets::register(cfg);
    inbound_intents::register(cfg);
    clients::register(cfg);
    security_intents::register(cfg);
    outbound_intents::register(cfg);
    route_intents::register(cfg);
    global_role_bindings::register(cfg);
    project_role_bindings::register(cfg);
    global_tokens::register(cfg);
    project_tokens::register(cfg);
}
