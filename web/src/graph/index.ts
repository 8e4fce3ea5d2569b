// The graph component's public surface, shared by the editor and the run console.
export { GraphCanvas, NODE_KIND_MIME } from "./GraphCanvas";
export type { GraphCanvasProps, Selection } from "./GraphCanvas";
export { edgeLabelText, layoutGraph, layoutGraphWithRoutes } from "./layout";
export type { Box, Direction, EdgeRoute, LayoutResult, Point } from "./layout";
export { LIBRARY_KINDS, STATE_COLORS, nodeLook } from "./nodeLooks";
export type { NodeLook, NodeShape } from "./nodeLooks";
export type { Diagnostic, GraphEdge, GraphNode, NodeKind, Span } from "./types";
