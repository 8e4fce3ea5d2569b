// The graph component both pages draw with: the editor (editable: drop nodes, connect handles,
// delete) and the run console (read-only, coloured by node state, the path taken highlighted).
// Positions come from ELK (layout.ts); a node the user dragged or dropped keeps its position for
// the session (positions are never stored in the .iter file), until "auto-layout" clears them.
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import type { CSSProperties, DragEvent } from "react";
import {
  BaseEdge, Controls, EdgeLabelRenderer, Handle, MarkerType, MiniMap, Position, ReactFlow, ReactFlowProvider,
  getSmoothStepPath, getViewportForBounds, useReactFlow,
} from "@xyflow/react";
import type { Edge, EdgeProps, Node, NodeChange, NodeProps, OnConnect } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import "./graph.css";
import type { GraphEdge, GraphNode } from "./types";
import { edgeLabelText, layoutGraphWithRoutes } from "./layout";
import type { Box, Direction, EdgeRoute, Point } from "./layout";
import { STATE_COLORS, nodeLook } from "./nodeLooks";

/** The drag-and-drop payload type the node library sets (the kind's name). */
export const NODE_KIND_MIME = "application/x-iterloop-node-kind";

export type Selection = { type: "node" | "edge"; id: string };

export interface GraphCanvasProps {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Console colouring: pending / running / done / failed / waiting / skipped, by node id. */
  states?: Record<string, string>;
  /** Edge ids of the path taken (drawn thick and green). */
  highlightEdges?: Set<string>;
  /** A short text in the node's corner (visit counts), by node id. */
  badges?: Record<string, string>;
  /** Diagnostic markers, by node id or edge id. */
  markers?: Record<string, "error" | "warning">;
  /** The selected element: a node id, or {type, id} to select an edge. */
  selected?: string | Selection | null;
  onSelectNode?: (id: string | null) => void;
  onSelectEdge?: (id: string | null) => void;
  /** Allow connecting, dropping and deleting (the editor); the console leaves it off. */
  editable?: boolean;
  onConnect?: (from: string, to: string) => void;
  /** A node kind dropped from the node library; may return the new node's name so it stays where dropped. */
  onDropNode?: (kind: string, position: { x: number; y: number }) => void | string | null | Promise<string | null | void>;
  onDeleteNodes?: (ids: string[]) => void;
  onDeleteEdges?: (ids: string[]) => void;
  /** Top-down (default) or left-to-right. */
  direction?: Direction;
  /** Change it to re-run the layout from scratch (forget dragged positions) and fit the view. */
  layoutKey?: number;
  /** Centre the view on this node (search); change focusKey to centre again on the same one. */
  focusNode?: string | null;
  focusKey?: number;
  minimap?: boolean;
  className?: string;
  style?: CSSProperties;
}

interface NodeData extends Record<string, unknown> {
  node: GraphNode;
  state?: string;
  badge?: string;
  marker?: "error" | "warning";
  selected: boolean;
  direction: Direction;
  editable: boolean;
}

interface EdgeData extends Record<string, unknown> {
  edge: GraphEdge;
  route?: EdgeRoute;
  highlighted: boolean;
  marker?: "error" | "warning";
  selected: boolean;
  onSelect?: (id: string) => void;
}

function asSelection(selected: string | Selection | null | undefined): Selection | null {
  if (!selected) return null;
  return typeof selected === "string" ? { type: "node", id: selected } : selected;
}

const IterNode = memo(function IterNode({ id, data }: NodeProps<Node<NodeData>>) {
  const look = nodeLook(data.node.kind);
  const stateColors = data.state ? STATE_COLORS[data.state] : undefined;
  const style = {
    "--ig-color": look.color, "--ig-bg": look.background,
    ...(stateColors ? { "--ig-state-fill": stateColors.fill, "--ig-state-border": stateColors.border } : {}),
  } as CSSProperties;
  const down = data.direction === "DOWN";
  const terminal = data.node.kind === "done" || data.node.kind === "fail";
  return (
    <div className="ig-node" style={style} data-testid={`node-${id}`} data-kind={data.node.kind} data-shape={look.shape}
         data-state={data.state} data-selected={data.selected ? "true" : "false"} title={`${data.node.kind} ${id}`}>
      <Handle type="target" position={down ? Position.Top : Position.Left} isConnectable={data.editable} />
      <span className="ig-icon" aria-hidden="true">{look.icon}</span>
      <span className="ig-text">
        <span className="ig-name">{id}</span>
        <span className="ig-kind">{data.node.kind}</span>
      </span>
      {data.badge ? <span className="ig-badge" data-testid={`badge-${id}`}>{data.badge}</span> : null}
      {data.marker ? <span className="ig-marker" data-severity={data.marker} data-testid={`marker-${id}`}>!</span> : null}
      {terminal ? null : (
        <Handle type="source" position={down ? Position.Bottom : Position.Right} isConnectable={data.editable} />
      )}
    </div>
  );
});

/** An SVG path through ELK's points (orthogonal segments). */
function polylinePath(points: Point[]): string {
  return points.map((p, i) => `${i === 0 ? "M" : "L"} ${p.x} ${p.y}`).join(" ");
}

function IterEdge(props: EdgeProps<Edge<EdgeData>>) {
  const { id, data, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, markerEnd } = props;
  let path: string;
  let labelX: number;
  let labelY: number;
  if (data?.route) {
    path = polylinePath(data.route.points);
    const box = data.route.label;
    if (box) {
      labelX = box.x + box.width / 2;
      labelY = box.y + box.height / 2;
    } else {
      const mid = data.route.points[Math.floor(data.route.points.length / 2)];
      const prev = data.route.points[Math.max(0, Math.floor(data.route.points.length / 2) - 1)];
      labelX = (mid.x + prev.x) / 2;
      labelY = (mid.y + prev.y) / 2;
    }
  } else {
    [path, labelX, labelY] = getSmoothStepPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition,
      borderRadius: 8, offset: 24 });
  }
  const edge = data?.edge;
  const text = edge ? edgeLabelText(edge) : "";
  const color = data?.highlighted ? "#16a34a" : data?.marker === "error" ? "#dc2626" : data?.selected ? "#f59e0b" : "#6b7280";
  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd} interactionWidth={16}
                style={{ stroke: color, strokeWidth: data?.highlighted || data?.selected ? 3 : 1.6,
                  strokeDasharray: edge?.loop ? "6 4" : undefined }} />
      <EdgeLabelRenderer>
        <div className={`ig-edge-label nodrag nopan${text ? "" : " ig-empty"}`} data-testid={`edge-${id}`}
             data-from={edge?.from} data-to={edge?.to} data-selected={data?.selected ? "true" : "false"}
             data-marker={data?.marker} data-highlighted={data?.highlighted ? "true" : "false"}
             title={text || `${edge?.from} → ${edge?.to}`}
             style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
             onClick={(event) => { event.stopPropagation(); data?.onSelect?.(id); }}>
          {text}
        </div>
      </EdgeLabelRenderer>
    </>
  );
}

const NODE_TYPES = { iter: IterNode };
const EDGE_TYPES = { iter: IterEdge };

/** What forces a new layout: the nodes, the edges and their labels (not states or selection). */
function structureKey(nodes: GraphNode[], edges: GraphEdge[], direction: Direction): string {
  return JSON.stringify([direction, nodes.map((n) => [n.id, n.kind]),
    edges.map((e) => [e.id, e.from, e.to, edgeLabelText(e)])]);
}

function CanvasInner(props: GraphCanvasProps) {
  const { nodes, edges, states, highlightEdges, badges, markers, editable = false, direction = "DOWN" } = props;
  const flow = useReactFlow();
  const [layout, setLayout] = useState<{ nodes: Map<string, Box>; edges: Map<string, EdgeRoute> } | null>(null);
  const pinned = useRef(new Map<string, { x: number; y: number }>());
  // Sizes the flow measured, handed back on every node object: a controlled node without
  // `measured` loses its handle positions, and its edges vanish until it is measured again.
  const measured = useRef(new Map<string, { width: number; height: number }>());
  const [pinVersion, setPinVersion] = useState(0);
  const [innerSelection, setInnerSelection] = useState<Selection | null>(null);
  const selection = props.selected !== undefined ? asSelection(props.selected) : innerSelection;
  const fitPending = useRef(true);
  const lastLayoutKey = useRef(props.layoutKey);
  const key = structureKey(nodes, edges, direction);

  useEffect(() => {
    if (props.layoutKey !== lastLayoutKey.current) {
      lastLayoutKey.current = props.layoutKey;
      pinned.current.clear();
      fitPending.current = true;
    }
    let cancelled = false;
    layoutGraphWithRoutes(nodes, edges, direction).then((result) => {
      if (!cancelled) setLayout(result);
    }).catch((error: unknown) => {
      console.warn("graph layout failed", error);
    });
    return () => { cancelled = true; };
    // The key captures everything the layout depends on.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, props.layoutKey]);

  // Fit a fresh layout into the pane, computing the viewport from our own boxes (fitView is queued
  // behind a node update of the controlled flow and may never resolve here).
  // A layout effect, so the new viewport is in place before the browser paints the new layout
  // (nobody ever sees, or clicks, the graph at its old zoom).
  const wrapper = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    if (!layout || layout.nodes.size === 0) return;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const [id, box] of layout.nodes) {
      const at = pinned.current.get(id) ?? box;
      minX = Math.min(minX, at.x); minY = Math.min(minY, at.y);
      maxX = Math.max(maxX, at.x + box.width); maxY = Math.max(maxY, at.y + box.height);
    }
    for (const route of layout.edges.values()) {
      const label = route.label;
      if (!label) continue;
      minX = Math.min(minX, label.x); minY = Math.min(minY, label.y);
      maxX = Math.max(maxX, label.x + label.width); maxY = Math.max(maxY, label.y + label.height);
    }
    // Besides a requested fit, refit when the new layout no longer fits the view (a graph that
    // grew); a layout that still fits keeps the user's zoom and pan.
    const pane = wrapper.current;
    if (!pane || pane.clientWidth === 0 || pane.clientHeight === 0) return;
    if (!fitPending.current) {
      const { x, y, zoom } = flow.getViewport();
      const inside = minX * zoom + x >= 0 && minY * zoom + y >= 0
        && maxX * zoom + x <= pane.clientWidth && maxY * zoom + y <= pane.clientHeight;
      if (inside) return;
    }
    fitPending.current = false;
    // At most 120 %: a two-node graph should not fill the screen.
    void flow.setViewport(getViewportForBounds({ x: minX, y: minY, width: maxX - minX, height: maxY - minY },
      pane.clientWidth, pane.clientHeight, 0.1, 1.2, 0.15));
  }, [layout, flow]);

  useEffect(() => {
    if (!props.focusNode || !layout) return;
    const box = pinned.current.get(props.focusNode) ?? layout.nodes.get(props.focusNode);
    if (!box) return;
    const size = layout.nodes.get(props.focusNode) ?? { width: 170, height: 52 };
    void flow.setCenter(box.x + size.width / 2, box.y + size.height / 2, { zoom: 1.2, duration: 200 });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.focusNode, props.focusKey]);

  const selectNode = props.onSelectNode;
  const selectEdge = props.onSelectEdge;
  const onSelectEdge = useCallback((id: string) => {
    setInnerSelection({ type: "edge", id });
    selectEdge?.(id);
  }, [selectEdge]);

  const rfNodes = useMemo<Node<NodeData>[]>(() => {
    if (!layout) return [];
    return nodes.map((node, index) => {
      const look = nodeLook(node.kind);
      const box = layout.nodes.get(node.id);
      const position = pinned.current.get(node.id) ?? (box ? { x: box.x, y: box.y } : { x: 40 + index * 30, y: 40 + index * 30 });
      return {
        id: node.id, type: "iter", position, width: look.width, height: look.height, measured: measured.current.get(node.id),
        selected: selection?.type === "node" && selection.id === node.id,
        draggable: true, connectable: editable, deletable: editable,
        data: { node, state: states?.[node.id], badge: badges?.[node.id], marker: markers?.[node.id],
          selected: selection?.type === "node" && selection.id === node.id, direction, editable },
      };
    });
    // pinVersion: a drag moved a pinned position, or the flow measured a node.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout, nodes, states, badges, markers, selection?.type, selection?.id, direction, editable, pinVersion]);

  const rfEdges = useMemo<Edge<EdgeData>[]>(() => {
    if (!layout) return [];
    const ids = new Set(nodes.map((n) => n.id));
    return edges.filter((e) => ids.has(e.from) && ids.has(e.to)).map((edge) => {
      const highlighted = highlightEdges?.has(edge.id) ?? false;
      const isSelected = selection?.type === "edge" && selection.id === edge.id;
      // ELK's route holds only while both ends sit where ELK put them.
      const routed = !pinned.current.has(edge.from) && !pinned.current.has(edge.to);
      return {
        id: edge.id, source: edge.from, target: edge.to, type: "iter", selected: isSelected, deletable: editable,
        markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18,
          color: highlighted ? "#16a34a" : markers?.[edge.id] === "error" ? "#dc2626" : "#6b7280" },
        data: { edge, route: routed ? layout.edges.get(edge.id) : undefined, highlighted,
          marker: markers?.[edge.id], selected: isSelected, onSelect: onSelectEdge },
      };
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout, nodes, edges, highlightEdges, markers, selection?.type, selection?.id, editable, onSelectEdge, pinVersion]);

  const onNodesChange = useCallback((changes: NodeChange<Node<NodeData>>[]) => {
    let changed = false;
    for (const change of changes) {
      if (change.type === "position" && change.position) {
        pinned.current.set(change.id, { ...change.position });
        changed = true;
      } else if (change.type === "dimensions" && change.dimensions) {
        const known = measured.current.get(change.id);
        if (!known || known.width !== change.dimensions.width || known.height !== change.dimensions.height) {
          measured.current.set(change.id, { ...change.dimensions });
          changed = true;
        }
      }
    }
    if (changed) setPinVersion((v) => v + 1);
  }, []);

  const connect = props.onConnect;
  const onConnect: OnConnect = useCallback((c) => {
    if (c.source && c.target) connect?.(c.source, c.target);
  }, [connect]);

  const dropNode = props.onDropNode;
  const onDragOver = useCallback((event: DragEvent) => {
    if (!editable) return;
    if (event.dataTransfer.types.includes(NODE_KIND_MIME) || event.dataTransfer.types.includes("text/plain")) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    }
  }, [editable]);
  const onDrop = useCallback((event: DragEvent) => {
    if (!editable || !dropNode) return;
    const kind = event.dataTransfer.getData(NODE_KIND_MIME) || event.dataTransfer.getData("text/plain");
    if (!kind) return;
    event.preventDefault();
    const position = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    const look = nodeLook(kind);
    const topLeft = { x: position.x - look.width / 2, y: position.y - look.height / 2 };
    void Promise.resolve(dropNode(kind, topLeft)).then((name) => {
      if (typeof name === "string" && name) {
        pinned.current.set(name, topLeft);
        setPinVersion((v) => v + 1);
      }
    });
  }, [editable, dropNode, flow]);

  const deleteNodes = props.onDeleteNodes;
  const deleteEdges = props.onDeleteEdges;
  const onDelete = useCallback(({ nodes: gone, edges: goneEdges }: { nodes: Node[]; edges: Edge[] }) => {
    const names = gone.map((n) => n.id);
    if (names.length) deleteNodes?.(names);
    // Edges of a removed node go with it (remove_node removes them); only lone edges are sent.
    const lone = goneEdges.filter((e) => !names.includes(e.source) && !names.includes(e.target)).map((e) => e.id);
    if (lone.length) deleteEdges?.(lone);
  }, [deleteNodes, deleteEdges]);

  return (
    <div ref={wrapper} className={`ig-canvas ${props.className ?? ""}`} style={props.style} onDragOver={onDragOver} onDrop={onDrop}
         data-testid="graph-canvas" data-laid-out={layout ? "true" : "false"}>
      <ReactFlow<Node<NodeData>, Edge<EdgeData>>
        nodes={rfNodes} edges={rfEdges} nodeTypes={NODE_TYPES} edgeTypes={EDGE_TYPES}
        onNodesChange={onNodesChange}
        onConnect={editable ? onConnect : undefined}
        onDelete={editable ? onDelete : undefined}
        deleteKeyCode={editable ? ["Delete", "Backspace"] : null}
        nodesConnectable={editable}
        elementsSelectable
        onNodeClick={(_, node) => { setInnerSelection({ type: "node", id: node.id }); selectNode?.(node.id); }}
        onEdgeClick={(_, edge) => onSelectEdge(edge.id)}
        onPaneClick={() => { setInnerSelection(null); selectNode?.(null); }}
        minZoom={0.1} maxZoom={2.5} proOptions={{ hideAttribution: true }}>
        <Controls showInteractive={false} />
        {props.minimap ? <MiniMap pannable zoomable style={{ width: 150, height: 100 }} nodeColor={(n) => nodeLook((n.data as NodeData).node.kind).color} /> : null}
      </ReactFlow>
    </div>
  );
}

/** The canvas; wraps its own ReactFlowProvider so pages can drop it anywhere. */
export function GraphCanvas(props: GraphCanvasProps) {
  return (
    <ReactFlowProvider>
      <CanvasInner {...props} />
    </ReactFlowProvider>
  );
}

export default GraphCanvas;
