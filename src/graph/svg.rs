//! The graph as SVG: `layout-rs` places the nodes (layered, left to right: clients, gateways,
//! services, external services) and routes the edges; a small `RenderBackend` of our own writes
//! the SVG, because ours is deterministic (layout-rs's own writer emits its font styles from a
//! hash map) and styles by CSS class: one fill per cluster, DENY edges dashed and red, egress
//! edges blue, gateway legs grey. Coordinates are printed with one decimal.

use std::collections::BTreeMap;
use std::fmt::Write;

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{Graph, GraphEdgeKind, GraphNodeKind};

const FONT: usize = 13;
/// Cluster fills, taken in cluster name order (repeating after eight clusters).
const CLUSTER_FILLS: [&str; 8] = [
    "#e3f2fd", "#e8f5e9", "#fff3e0", "#f3e5f5", "#e0f7fa", "#fce4ec", "#f1f8e9", "#ede7f6",
];

const STYLE: &str = "<style>\n\
text { font-family: sans-serif; font-size: 13px; fill: #212121; paint-order: stroke; stroke: #ffffff; stroke-width: 3px; stroke-linejoin: round; }\n\
.node rect { stroke: #455a64; stroke-width: 1.5; }\n\
.node.externalService rect, .node.outside rect { fill: #fafafa; stroke-dasharray: 2,2; }\n\
.node.ingressGateway rect, .node.egressGateway rect { fill: #cfd8dc; }\n\
.node.namespace rect { fill: #fffde7; }\n\
.edge path { fill: none; stroke-width: 1.5; }\n\
.edge.allow path { stroke: #2e7d32; }\n\
.edge.deny path { stroke: #c62828; stroke-dasharray: 6,4; }\n\
.edge.egress path { stroke: #1565c0; }\n\
.edge.leg path { stroke: #90a4ae; }\n\
text.deny { fill: #c62828; }\n\
</style>\n";

/// What the backend knows of each element, by the `properties` handed to layout-rs.
enum Tag {
    GraphNode {
        id: String,
        kind: GraphNodeKind,
        fill: Option<&'static str>,
    },
    GraphEdge {
        id: String,
        class: &'static str,
    },
}

struct Canvas<'t> {
    tags: &'t [Tag],
    body: String,
    width: f64,
    height: f64,
}

fn num(x: f64) -> String {
    let rounded = (x * 10.0).round() / 10.0;
    // -0.0 prints as 0.0.
    format!("{:.1}", if rounded == 0.0 { 0.0 } else { rounded })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl Canvas<'_> {
    fn tag(&self, properties: &Option<String>) -> Option<&Tag> {
        properties
            .as_deref()
            .and_then(|p| p.parse::<usize>().ok())
            .and_then(|i| self.tags.get(i))
    }

    fn grow(&mut self, p: Point) {
        self.width = self.width.max(p.x + 10.0);
        self.height = self.height.max(p.y + 10.0);
    }
}

impl RenderBackend for Canvas<'_> {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        _look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        self.grow(Point::new(xy.x + size.x, xy.y + size.y));
        let (class, id, fill) = match self.tag(&properties) {
            Some(Tag::GraphNode { id, kind, fill }) => {
                let kind = serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (format!("node {kind}"), id.clone(), *fill)
            }
            _ => ("node".to_owned(), String::new(), None),
        };
        let fill = fill.map(|f| format!(" fill=\"{f}\"")).unwrap_or_default();
        let _ = writeln!(
            self.body,
            "<g class=\"{class}\" data-id=\"{}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\"{fill}/></g>",
            escape(&id),
            escape(&id),
            num(xy.x),
            num(xy.y),
            num(size.x),
            num(size.y),
        );
    }

    fn draw_line(
        &mut self,
        start: Point,
        stop: Point,
        _look: &StyleAttr,
        _properties: Option<String>,
    ) {
        self.grow(start);
        self.grow(stop);
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#90a4ae\"/>",
            num(start.x),
            num(start.y),
            num(stop.x),
            num(stop.y)
        );
    }

    fn draw_circle(
        &mut self,
        xy: Point,
        size: Point,
        _look: &StyleAttr,
        _properties: Option<String>,
    ) {
        self.grow(Point::new(xy.x + size.x / 2.0, xy.y + size.y / 2.0));
        let _ = writeln!(
            self.body,
            "<ellipse cx=\"{}\" cy=\"{}\" rx=\"{}\" ry=\"{}\" fill=\"none\" stroke=\"#455a64\"/>",
            num(xy.x),
            num(xy.y),
            num(size.x / 2.0),
            num(size.y / 2.0)
        );
    }

    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        if text.is_empty() {
            return;
        }
        let lines: Vec<&str> = text.lines().collect();
        let class = if look.line_color.to_web_color() == Color::fast("red").to_web_color() {
            " class=\"deny\""
        } else {
            ""
        };
        let line_height = FONT as f64 * 1.2;
        let top = xy.y - line_height * (lines.len() as f64 - 1.0) / 2.0;
        let _ = write!(
            self.body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"middle\"{class}>",
            num(xy.x),
            num(top)
        );
        for (i, line) in lines.iter().enumerate() {
            let _ = write!(
                self.body,
                "<tspan x=\"{}\" dy=\"{}\">{}</tspan>",
                num(xy.x),
                if i == 0 {
                    "0".to_owned()
                } else {
                    num(line_height)
                },
                escape(line)
            );
        }
        self.body.push_str("</text>\n");
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        _look: &StyleAttr,
        properties: Option<String>,
        _text: &str,
    ) {
        if path.len() < 2 {
            return;
        }
        for (a, b) in path {
            self.grow(*a);
            self.grow(*b);
        }
        let (class, id) = match self.tag(&properties) {
            Some(Tag::GraphEdge { id, class }) => (*class, id.clone()),
            _ => (if dashed { "deny" } else { "allow" }, String::new()),
        };
        let mut d = format!(
            "M {} {} C {} {}, {} {}, {} {}",
            num(path[0].0.x),
            num(path[0].0.y),
            num(path[0].1.x),
            num(path[0].1.y),
            num(path[1].0.x),
            num(path[1].0.y),
            num(path[1].1.x),
            num(path[1].1.y)
        );
        for (a, b) in &path[2..] {
            let _ = write!(d, " S {} {}, {} {}", num(a.x), num(a.y), num(b.x), num(b.y));
        }
        let marker = if head.1 {
            " marker-end=\"url(#arrow)\""
        } else {
            ""
        };
        let _ = writeln!(
            self.body,
            "<g class=\"edge {class}\" data-id=\"{}\"><title>{}</title><path d=\"{d}\"{marker}/></g>",
            escape(&id),
            escape(&id)
        );
    }

    fn create_clip(&mut self, _xy: Point, _size: Point, _rounded_px: usize) -> ClipHandle {
        0
    }
}

fn look(color: &str) -> StyleAttr {
    StyleAttr::new(Color::fast(color), 1, None, 6, FONT)
}

/// The graph drawn as SVG (a complete document with a final newline).
pub fn render(graph: &Graph) -> String {
    let cluster_index: BTreeMap<&str, usize> = graph
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (c.cluster.as_str(), i))
        .collect();
    let mut tags = Vec::new();
    let mut vg = VisualGraph::new(Orientation::LeftToRight);
    let mut handles = BTreeMap::new();
    for node in &graph.nodes {
        let fill = match node.kind {
            GraphNodeKind::App => node
                .cluster
                .as_deref()
                .and_then(|c| cluster_index.get(c))
                .map(|i| CLUSTER_FILLS[i % CLUSTER_FILLS.len()]),
            _ => None,
        };
        let shape = ShapeKind::new_box(&node.label);
        let size = get_shape_size(Orientation::LeftToRight, &shape, FONT, false);
        let element = Element::create_with_properties(
            shape,
            look("black"),
            Orientation::LeftToRight,
            size,
            tags.len().to_string(),
        );
        tags.push(Tag::GraphNode {
            id: node.id.clone(),
            kind: node.kind,
            fill,
        });
        handles.insert(node.id.as_str(), vg.add_node(element));
    }
    if graph.nodes.is_empty() {
        return document(
            200.0,
            40.0,
            "<text x=\"10\" y=\"25\">no apps in this set</text>\n",
        );
    }
    // Gateway legs shared by several edges are drawn once; the last leg carries the label.
    let mut legs: BTreeMap<(&str, &str), ()> = BTreeMap::new();
    for edge in &graph.edges {
        let chain: Vec<&str> = std::iter::once(edge.from.as_str())
            .chain(edge.via.iter().map(String::as_str))
            .chain(std::iter::once(edge.to.as_str()))
            .collect();
        for pair in chain.windows(2).take(chain.len() - 2) {
            if legs.insert((pair[0], pair[1]), ()).is_none() {
                let arrow = Arrow::with_properties(
                    LineEndKind::None,
                    LineEndKind::Arrow,
                    LineStyleKind::Normal,
                    "",
                    &look("gray"),
                    tags.len().to_string(),
                    &None,
                    &None,
                );
                tags.push(Tag::GraphEdge {
                    id: format!("leg:{}->{}", pair[0], pair[1]),
                    class: "leg",
                });
                vg.add_edge(arrow, handles[pair[0]], handles[pair[1]]);
            }
        }
        let last = &chain[chain.len() - 2..];
        let (class, style, color) = match edge.kind {
            GraphEdgeKind::Allow => ("allow", LineStyleKind::Normal, "green"),
            GraphEdgeKind::Deny => ("deny", LineStyleKind::Dashed, "red"),
            GraphEdgeKind::Egress => ("egress", LineStyleKind::Normal, "blue"),
        };
        let text = match (&edge.client, edge.kind) {
            (Some(client), GraphEdgeKind::Deny) => format!("{client}: DENY {}", edge.label),
            (Some(client), _) => format!("{client}: {}", edge.label),
            (None, _) => edge.label.clone(),
        };
        let arrow = Arrow::with_properties(
            LineEndKind::None,
            LineEndKind::Arrow,
            style,
            &text,
            &look(color),
            tags.len().to_string(),
            &None,
            &None,
        );
        tags.push(Tag::GraphEdge {
            id: edge.id.clone(),
            class,
        });
        vg.add_edge(arrow, handles[last[0]], handles[last[1]]);
    }
    let mut canvas = Canvas {
        tags: &tags,
        body: String::new(),
        width: 0.0,
        height: 0.0,
    };
    vg.do_it(false, false, false, &mut canvas);
    document(canvas.width, canvas.height, &canvas.body)
}

fn document(width: f64, height: f64, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"who may call whom\">\n\
<defs><marker id=\"arrow\" markerWidth=\"10\" markerHeight=\"7\" refX=\"10\" refY=\"3.5\" orient=\"auto\"><polygon points=\"0 0, 10 3.5, 0 7\" fill=\"context-stroke\"/></marker></defs>\n\
{STYLE}{body}</svg>\n",
        w = num(width),
        h = num(height),
    )
}
