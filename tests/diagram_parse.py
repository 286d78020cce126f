"""Reading a diagram back through Graphviz itself: ``dot -Tjson0`` parses the DOT we emit, so the
tests check what Graphviz understood (clusters, nodes, edges, attributes), not our own text."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

import graphviz


def plain(label: str) -> str:
    """The visible text of an HTML-like label, whitespace collapsed."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", label)).replace("\u00a0", " ")
    return " ".join(text.split())


@dataclass
class Node:
    name: str
    attrs: dict[str, str]

    @property
    def text(self) -> str:
        return plain(self.attrs.get("label", ""))

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()


@dataclass
class Edge:
    tail: str
    head: str
    attrs: dict[str, str]

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    @property
    def text(self) -> str:
        return plain(self.attrs.get("label", "") or self.attrs.get("xlabel", ""))


@dataclass
class Parsed:
    attrs: dict[str, str]
    nodes: dict[str, Node]
    edges: list[Edge]
    clusters: dict[str, list[str]] = field(default_factory=dict)  # cluster name -> node names
    cluster_attrs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return plain(self.attrs.get("label", ""))

    def cluster_text(self, name: str) -> str:
        return plain(self.cluster_attrs[name].get("label", ""))

    def with_class(self, name: str) -> list[Node]:
        return [node for node in self.nodes.values() if name in node.classes]

    def edges_with_class(self, *names: str) -> list[Edge]:
        return [edge for edge in self.edges if all(name in edge.classes for name in names)]

    def path(self, start: str, end: str) -> list[str]:
        """The main line from ``start`` to ``end``: follow the heavy (weight 20) edges."""
        heavy = {edge.tail: edge.head for edge in self.edges if edge.attrs.get("weight") == "20"}
        out = [start]
        while out[-1] != end:
            out.append(heavy[out[-1]])
        return out


def parse(graph: graphviz.Digraph | graphviz.Source) -> Parsed:
    """``graph`` as Graphviz laid it out (a ``Source`` reads a written ``.dot`` file back)."""
    data = json.loads(graph.pipe(format="json0", engine="dot"))
    objects = data.get("objects", [])
    # Subgraphs come first in ``objects``, then the nodes; edges and clusters refer to ``_gvid``s.
    subgraphs, node_objects = objects[: data["_subgraph_cnt"]], objects[data["_subgraph_cnt"] :]
    names = {obj["_gvid"]: obj["name"] for obj in node_objects}
    nodes = {
        obj["name"]: Node(obj["name"], {k: v for k, v in obj.items() if k not in ("_gvid", "name")})
        for obj in node_objects
    }
    clusters = {
        obj["name"]: [names[index] for index in obj.get("nodes", [])]
        for obj in subgraphs
        if obj["name"].startswith("cluster")
    }
    cluster_attrs = {
        obj["name"]: {k: v for k, v in obj.items() if k not in ("_gvid", "name", "nodes", "edges")}
        for obj in subgraphs
        if obj["name"].startswith("cluster")
    }
    edges = [
        Edge(names[edge["tail"]], names[edge["head"]], {k: v for k, v in edge.items() if k not in ("tail", "head")})
        for edge in data.get("edges", [])
    ]
    return Parsed(
        {k: v for k, v in data.items() if k not in ("objects", "edges")}, nodes, edges, clusters, cluster_attrs
    )
