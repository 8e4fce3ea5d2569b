// The right panel: the selected node or edge, and the file-level tabs (workflow, schemas, prompts,
// vars, MCP servers). Every change becomes ops sent to /editor/api/edit.
import { useState } from "react";
import type { GraphEdge, GraphNode } from "../graph/types";
import { nodeLook } from "../graph/nodeLooks";
import { CommitField } from "./fields";
import {
  budgetFromInputs, displayValue, edgeUpdateOp, fieldsFor, isTerminal, isValidName, loopFromInputs, nodePropertyOp,
  parseFieldValue, renameOp, whenSuggestions,
} from "./mapping";
import type { EditorDocument, Op, SchemaField } from "./types";
import type { Selection } from "../graph/GraphCanvas";

type Tab = "selection" | "workflow" | "schemas" | "prompts" | "vars" | "mcp";

interface InspectorProps {
  doc: EditorDocument | null;
  selection: Selection | null;
  onOps: (ops: Op[]) => Promise<unknown>;
  onSelect: (selection: Selection | null) => void;
  onError: (message: string) => void;
}

const TABS: [Tab, string][] = [["selection", "Selection"], ["workflow", "Workflow"], ["schemas", "Schemas"],
  ["prompts", "Prompts"], ["vars", "Vars"], ["mcp", "MCP"]];

export function Inspector(props: InspectorProps) {
  const [tab, setTab] = useState<Tab>("selection");
  const { doc } = props;
  return (
    <aside className="ed-inspector" data-testid="inspector">
      <nav className="ed-tabs">
        {TABS.map(([id, label]) => (
          <button key={id} type="button" className={tab === id ? "active" : ""} data-testid={`tab-${id}`}
                  onClick={() => setTab(id)}>{label}</button>
        ))}
      </nav>
      <div className="ed-tab-body">
        {!doc ? <p className="ed-muted">Open or create a file to edit it.</p>
          : tab === "selection" ? <SelectionPanel {...props} doc={doc} />
          : tab === "workflow" ? <WorkflowPanel {...props} doc={doc} />
          : tab === "schemas" ? <SchemasPanel {...props} doc={doc} />
          : tab === "prompts" ? <PromptsPanel {...props} doc={doc} />
          : tab === "vars" ? <VarsPanel {...props} doc={doc} />
          : <McpPanel doc={doc} />}
      </div>
      <datalist id="ed-schemas">{doc?.schemas.map((s) => <option key={s.name} value={s.name} />)}</datalist>
      <datalist id="ed-prompts">{doc?.prompts.map((p) => <option key={p.name} value={p.name} />)}</datalist>
    </aside>
  );
}

type PanelProps = InspectorProps & { doc: EditorDocument };

/** Run a change that may be refused in the browser (a bad number, a bad name) before any op. */
function guarded(onError: (m: string) => void, make: () => Op[] | Op | null, send: (ops: Op[]) => Promise<unknown>) {
  try {
    const made = make();
    if (!made) return;
    void send(Array.isArray(made) ? made : [made]);
  } catch (error) {
    onError(error instanceof Error ? error.message : String(error));
  }
}

function SelectionPanel(props: PanelProps) {
  const { doc, selection } = props;
  if (selection?.type === "node") {
    const node = doc.nodes.find((n) => n.id === selection.id);
    if (node) return <NodePanel {...props} node={node} />;
  }
  if (selection?.type === "edge") {
    const edge = doc.edges.find((e) => e.id === selection.id);
    if (edge) return <EdgePanel {...props} edge={edge} />;
  }
  return <p className="ed-muted">Select a node or an edge on the canvas. Drag a kind from the node library to add a node;
    drag from a node's bottom handle to another node to connect them.</p>;
}

function NodePanel({ doc, node, onOps, onSelect, onError }: PanelProps & { node: GraphNode }) {
  const props = node.props ?? {};
  const known = fieldsFor(node.kind);
  const knownKeys = new Set(known.map((f) => f.key));
  const others = Object.keys(props).filter((k) => !knownKeys.has(k));
  const [newKey, setNewKey] = useState("");
  const [newValue, setNewValue] = useState("");
  const look = nodeLook(node.kind);
  const diagnostics = doc.diagnostics.filter((d) => d.node === node.id);
  const send = (ops: Op[]) => onOps(ops);
  if (isTerminal(node.id)) {
    return (
      <section data-testid="node-inspector" data-node={node.id}>
        <h3><span style={{ color: look.color }}>{look.icon}</span> {node.id}</h3>
        <p className="ed-muted">A built-in terminal: the run {node.id === "done" ? "finishes" : "fails"} when it gets here.
          Connect edges to it; it has no properties.</p>
      </section>
    );
  }
  return (
    <section data-testid="node-inspector" data-node={node.id}>
      <h3><span style={{ color: look.color }}>{look.icon}</span> {node.kind}</h3>
      <label className="ed-row"><span>name</span>
        <CommitField value={node.id} testid="node-name" onCommit={(text) => guarded(onError, () => renameOp(node.id, text),
          async (ops) => { const next = await onOps(ops); if (next) onSelect({ type: "node", id: text.trim() }); })} />
      </label>
      {known.map((field) => (
        <label className="ed-row" key={field.key}><span>{field.key}</span>
          {field.type === "choice" || field.type === "bool" ? (
            <select data-testid={`field-${field.key}`} value={displayValue(props[field.key], field.type)}
                    onChange={(e) => guarded(onError, () => nodePropertyOp(node.id, field.key, e.target.value,
                      field.type === "bool" ? "bool" : "text"), send)}>
              <option value="">(unset)</option>
              {(field.type === "bool" ? ["true", "false"] : field.choices ?? []).map((c) => <option key={c} value={c}>{c}</option>)}
              {props[field.key] !== undefined && !(field.type === "bool" ? ["true", "false"] : field.choices ?? [])
                .includes(displayValue(props[field.key])) ? <option value={displayValue(props[field.key])}>{displayValue(props[field.key])}</option> : null}
            </select>
          ) : (
            <CommitField value={displayValue(props[field.key], field.type)} testid={`field-${field.key}`} placeholder={field.hint}
                         multiline={field.type === "longtext"} refs={field.type === "longtext" || field.type === "text" ? doc.refs : undefined}
                         list={field.type === "schema" ? "ed-schemas" : field.type === "prompt" ? "ed-prompts" : undefined}
                         onCommit={(text) => guarded(onError, () => nodePropertyOp(node.id, field.key, text, field.type), send)} />
          )}
        </label>
      ))}
      {others.length ? <h4>other properties</h4> : null}
      {others.map((key) => (
        <label className="ed-row" key={key}><span>{key}</span>
          <CommitField value={displayValue(props[key])} testid={`field-${key}`} refs={doc.refs}
                       onCommit={(text) => guarded(onError, () => nodePropertyOp(node.id, key, text, "json"), send)} />
        </label>
      ))}
      <form className="ed-add" onSubmit={(e) => {
        e.preventDefault();
        guarded(onError, () => {
          if (!isValidName(newKey.trim())) throw new Error(`'${newKey}' is not a property name`);
          return { op: "set_node_property", name: node.id, key: newKey.trim(), value: parseFieldValue(newValue, "json") };
        }, async (ops) => { await onOps(ops); setNewKey(""); setNewValue(""); });
      }}>
        <input placeholder="property" value={newKey} onChange={(e) => setNewKey(e.target.value)} data-testid="new-property-key" />
        <input placeholder="value (JSON or text)" value={newValue} onChange={(e) => setNewValue(e.target.value)}
               data-testid="new-property-value" />
        <button type="submit">Set</button>
      </form>
      {diagnostics.length ? <ul className="ed-node-diags">{diagnostics.map((d, i) =>
        <li key={i} className={d.severity}>[{d.code}] {d.message}</li>)}</ul> : null}
      <button type="button" className="ed-danger" data-testid="delete-node"
              onClick={() => void onOps([{ op: "remove_node", name: node.id }]).then(() => onSelect(null))}>Delete node</button>
    </section>
  );
}

function EdgePanel({ doc, edge, onOps, onSelect, onError }: PanelProps & { edge: GraphEdge }) {
  const send = (ops: Op[]) => onOps(ops);
  const suggestions = whenSuggestions(doc, edge.from);
  const mapping = edge.with ?? {};
  const [loopName, setLoopName] = useState(edge.loop?.name ?? "");
  const [loopMax, setLoopMax] = useState(edge.loop ? String(edge.loop.max) : "");
  const [newKey, setNewKey] = useState("");
  const [newValue, setNewValue] = useState("");
  const loopKey = `${edge.id}:${edge.loop?.name ?? ""}:${edge.loop?.max ?? ""}`;
  const [seenLoop, setSeenLoop] = useState(loopKey);
  if (seenLoop !== loopKey) { setSeenLoop(loopKey); setLoopName(edge.loop?.name ?? ""); setLoopMax(edge.loop ? String(edge.loop.max) : ""); }
  const nodeIds = doc.nodes.map((n) => n.id);
  const commitLoop = () => guarded(onError, () => {
    const loop = loopFromInputs(loopName, loopMax);
    if (JSON.stringify(loop) === JSON.stringify(edge.loop ?? null)) return null;
    return edgeUpdateOp(edge, { loop });
  }, send);
  return (
    <section data-testid="edge-inspector" data-edge={edge.id}>
      <h3>edge {edge.from} → {edge.to}</h3>
      <label className="ed-row"><span>from</span>
        <select data-testid="edge-from" value={edge.from}
                onChange={(e) => void send([edgeUpdateOp(edge, { from: e.target.value })])}>
          {nodeIds.filter((id) => !isTerminal(id)).map((id) => <option key={id}>{id}</option>)}
        </select>
      </label>
      <label className="ed-row"><span>to</span>
        <select data-testid="edge-to" value={edge.to} onChange={(e) => void send([edgeUpdateOp(edge, { to: e.target.value })])}>
          {nodeIds.map((id) => <option key={id}>{id}</option>)}
        </select>
      </label>
      <label className="ed-row"><span>when</span>
        <CommitField value={edge.when ?? ""} testid="edge-when" list={`ed-when-${edge.id}`}
                     placeholder='approved / not approved / "expr" / else'
                     onCommit={(text) => guarded(onError, () => edgeUpdateOp(edge, { when: text }), send)} />
        <datalist id={`ed-when-${edge.id}`}>{suggestions.map((s) => <option key={s} value={s} />)}</datalist>
      </label>
      <div className="ed-row"><span>loop</span>
        <span className="ed-loop">
          <input data-testid="loop-name" placeholder="name" value={loopName} onChange={(e) => setLoopName(e.target.value)}
                 onKeyDown={(e) => { if (e.key === "Enter") commitLoop(); }} onBlur={commitLoop} />
          (<input data-testid="loop-max" placeholder="max" value={loopMax} size={4} onChange={(e) => setLoopMax(e.target.value)}
                  onKeyDown={(e) => { if (e.key === "Enter") commitLoop(); }} onBlur={commitLoop} />)
        </span>
      </div>
      <h4>with</h4>
      {Object.entries(mapping).map(([key, template]) => (
        <div className="ed-row" key={key}><span>{key}</span>
          <CommitField value={template} testid={`with-${key}`} refs={doc.refs}
                       onCommit={(text) => guarded(onError, () => {
                         const next = { ...mapping };
                         if (text.trim() === "") delete next[key]; else next[key] = text;
                         return edgeUpdateOp(edge, { with: next });
                       }, send)} />
        </div>
      ))}
      <form className="ed-add" onSubmit={(e) => {
        e.preventDefault();
        guarded(onError, () => {
          if (!isValidName(newKey.trim())) throw new Error(`'${newKey}' is not a valid key for a with mapping`);
          return edgeUpdateOp(edge, { with: { ...mapping, [newKey.trim()]: newValue } });
        }, async (ops) => { await onOps(ops); setNewKey(""); setNewValue(""); });
      }}>
        <input placeholder="key" value={newKey} onChange={(e) => setNewKey(e.target.value)} data-testid="with-new-key" />
        <CommitField value={newValue} onCommit={setNewValue} refs={doc.refs} testid="with-new-value" placeholder="{{outputs.…}}" />
        <button type="submit">Add</button>
      </form>
      <button type="button" className="ed-danger" data-testid="delete-edge"
              onClick={() => void onOps([{ op: "remove_edge", index: edge.index }]).then(() => onSelect(null))}>Delete edge</button>
    </section>
  );
}

const BUDGET_KEYS = ["max_cost_usd", "max_iterations", "max_duration", "max_parallel_branches", "max_tokens"];

function WorkflowPanel({ doc, onOps, onError }: PanelProps) {
  const send = (ops: Op[]) => onOps(ops);
  const wf = doc.workflow;
  const budget = wf?.budget ?? {};
  const keys = [...BUDGET_KEYS, ...Object.keys(budget).filter((k) => !BUDGET_KEYS.includes(k))];
  const budgetText = (key: string) => displayValue(budget[key]);
  if (!wf) {
    return (
      <section>
        <p className="ed-muted">This file has no workflow yet. Drop a node on the canvas, or name one:</p>
        <CommitField value="" testid="workflow-create" placeholder="workflow name"
                     onCommit={(text) => guarded(onError, () => {
                       if (!isValidName(text.trim())) throw new Error(`'${text}' is not a valid workflow name`);
                       return { op: "ensure_workflow", name: text.trim() };
                     }, send)} />
      </section>
    );
  }
  return (
    <section data-testid="workflow-inspector">
      <label className="ed-row"><span>name</span>
        <CommitField value={wf.name} testid="workflow-name" onCommit={(text) => guarded(onError, () => {
          if (!isValidName(text.trim())) throw new Error(`'${text}' is not a valid workflow name`);
          return { op: "set_workflow", name: text.trim() };
        }, send)} />
      </label>
      <label className="ed-row"><span>entry</span>
        <select data-testid="workflow-entry" value={wf.entry ?? ""}
                onChange={(e) => void send([{ op: "set_workflow", entry: e.target.value }])}>
          <option value="" disabled>(none)</option>
          {doc.nodes.filter((n) => !isTerminal(n.id)).map((n) => <option key={n.id}>{n.id}</option>)}
        </select>
      </label>
      <h4>budget</h4>
      {keys.map((key) => (
        <label className="ed-row" key={key}><span>{key}</span>
          <CommitField value={budgetText(key)} testid={`budget-${key}`}
                       onCommit={(text) => guarded(onError, () => {
                         const values: Record<string, string> = {};
                         for (const k of keys) values[k] = k === key ? text : budgetText(k);
                         return { op: "set_workflow", budget: budgetFromInputs(values) };
                       }, send)} />
        </label>
      ))}
    </section>
  );
}

const FIELD_TYPES = ["string", "int", "float", "bool", "json", "string[]", "int[]", "float[]", "json[]"];

function SchemasPanel({ doc, onOps, onError }: PanelProps) {
  const send = (ops: Op[]) => onOps(ops);
  const [name, setName] = useState("");
  const [fieldName, setFieldName] = useState("");
  const [fieldType, setFieldType] = useState("string");
  const setFields = (schema: string, fields: SchemaField[]) => send([{ op: "set_schema", name: schema, fields }]);
  return (
    <section data-testid="schemas-inspector">
      <datalist id="ed-field-types">{FIELD_TYPES.map((t) => <option key={t} value={t} />)}</datalist>
      {doc.schemas.map((schema) => (
        <details key={schema.name} open data-testid={`schema-${schema.name}`}>
          <summary>{schema.name} <button type="button" className="ed-link" data-testid={`remove-schema-${schema.name}`}
            onClick={() => void send([{ op: "remove_schema", name: schema.name }])}>remove</button></summary>
          <table className="ed-table">
            <thead><tr><th>field</th><th>type</th><th>enum</th><th /></tr></thead>
            <tbody>
              {schema.fields.map((field, i) => {
                const change = (patch: Partial<SchemaField>) => {
                  const fields = schema.fields.map((f, j) => (j === i ? { ...f, ...patch } : f));
                  void setFields(schema.name, fields);
                };
                return (
                  <tr key={`${field.name}-${i}`}>
                    <td><CommitField value={field.name} testid={`schema-${schema.name}-field-${i}-name`}
                                     onCommit={(text) => guarded(onError, () => {
                                       if (!isValidName(text.trim())) throw new Error(`'${text}' is not a valid field name`);
                                       change({ name: text.trim() });
                                       return null;
                                     }, send)} /></td>
                    <td><CommitField value={field.type} list="ed-field-types" testid={`schema-${schema.name}-field-${i}-type`}
                                     onCommit={(text) => change({ type: text.trim() })} /></td>
                    <td><CommitField value={(field.enum ?? []).join(", ")} placeholder="a, b" testid={`schema-${schema.name}-field-${i}-enum`}
                                     onCommit={(text) => { const values = text.split(",").map((v) => v.trim()).filter(Boolean);
                                       change({ enum: values.length ? values : null }); }} /></td>
                    <td><button type="button" className="ed-link" title="remove field"
                                onClick={() => void setFields(schema.name, schema.fields.filter((_, j) => j !== i))}>✕</button></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <AddField onAdd={(f) => void setFields(schema.name, [...schema.fields, f])} onError={onError} testid={`schema-${schema.name}-add`} />
        </details>
      ))}
      <h4>new schema</h4>
      <form className="ed-add" onSubmit={(e) => {
        e.preventDefault();
        guarded(onError, () => {
          if (!isValidName(name.trim())) throw new Error(`'${name}' is not a valid schema name`);
          if (!isValidName(fieldName.trim())) throw new Error("a schema needs at least one field: name its first field");
          return { op: "set_schema", name: name.trim(), fields: [{ name: fieldName.trim(), type: fieldType.trim() || "string" }] };
        }, async (ops) => { await onOps(ops); setName(""); setFieldName(""); setFieldType("string"); });
      }}>
        <input placeholder="schema name" value={name} onChange={(e) => setName(e.target.value)} data-testid="new-schema-name" />
        <input placeholder="first field" value={fieldName} onChange={(e) => setFieldName(e.target.value)} data-testid="new-schema-field" />
        <input placeholder="type" list="ed-field-types" value={fieldType} onChange={(e) => setFieldType(e.target.value)}
               data-testid="new-schema-type" />
        <button type="submit" data-testid="new-schema-add">Add schema</button>
      </form>
    </section>
  );
}

function AddField({ onAdd, onError, testid }: { onAdd: (f: SchemaField) => void; onError: (m: string) => void; testid: string }) {
  const [name, setName] = useState("");
  const [type, setType] = useState("string");
  return (
    <form className="ed-add" onSubmit={(e) => {
      e.preventDefault();
      if (!isValidName(name.trim())) { onError(`'${name}' is not a valid field name`); return; }
      onAdd({ name: name.trim(), type: type.trim() || "string" });
      setName("");
    }}>
      <input placeholder="field" value={name} onChange={(e) => setName(e.target.value)} data-testid={`${testid}-name`} />
      <input placeholder="type" list="ed-field-types" value={type} onChange={(e) => setType(e.target.value)} data-testid={`${testid}-type`} />
      <button type="submit" data-testid={`${testid}-button`}>Add field</button>
    </form>
  );
}

function PromptsPanel({ doc, onOps, onError }: PanelProps) {
  const send = (ops: Op[]) => onOps(ops);
  const [name, setName] = useState("");
  return (
    <section data-testid="prompts-inspector">
      {doc.prompts.map((prompt) => (
        <details key={prompt.name} open data-testid={`prompt-${prompt.name}`}>
          <summary>{prompt.name} <button type="button" className="ed-link"
            onClick={() => void send([{ op: "remove_prompt", name: prompt.name }])}>remove</button></summary>
          <CommitField value={prompt.text} multiline rows={8} refs={doc.refs} testid={`prompt-${prompt.name}-text`}
                       onCommit={(text) => void send([{ op: "set_prompt", name: prompt.name, text }])} />
        </details>
      ))}
      <form className="ed-add" onSubmit={(e) => {
        e.preventDefault();
        guarded(onError, () => {
          if (!isValidName(name.trim())) throw new Error(`'${name}' is not a valid prompt name`);
          return { op: "set_prompt", name: name.trim(), text: "Write the prompt here; type {{ for references." };
        }, async (ops) => { await onOps(ops); setName(""); });
      }}>
        <input placeholder="new prompt name" value={name} onChange={(e) => setName(e.target.value)} data-testid="new-prompt-name" />
        <button type="submit" data-testid="new-prompt-add">Add prompt</button>
      </form>
      <p className="ed-muted">Type <code>{"{{"}</code> in a prompt for the references this file offers.</p>
    </section>
  );
}

function VarsPanel({ doc, onOps, onError }: PanelProps) {
  const send = (ops: Op[]) => onOps(ops);
  const [name, setName] = useState("");
  const [type, setType] = useState("string");
  const [value, setValue] = useState("");
  return (
    <section data-testid="vars-inspector">
      <table className="ed-table">
        <thead><tr><th>var</th><th>type</th><th>default</th><th /></tr></thead>
        <tbody>
          {doc.vars.map((v) => (
            <tr key={v.name}>
              <td>{v.name}</td>
              <td><CommitField value={v.type} list="ed-field-types" testid={`var-${v.name}-type`}
                               onCommit={(text) => void send([{ op: "set_var", name: v.name, type: text.trim(), default: v.default ?? null }])} /></td>
              <td><CommitField value={displayValue(v.default)} testid={`var-${v.name}-default`}
                               onCommit={(text) => guarded(onError, () => ({ op: "set_var", name: v.name, type: v.type,
                                 default: parseFieldValue(text, "json") }), send)} /></td>
              <td><button type="button" className="ed-link" onClick={() => void send([{ op: "remove_var", name: v.name }])}>✕</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="ed-add" onSubmit={(e) => {
        e.preventDefault();
        guarded(onError, () => {
          if (!isValidName(name.trim())) throw new Error(`'${name}' is not a valid var name`);
          const op: Op = { op: "set_var", name: name.trim(), type: type.trim() || "string" };
          if (value.trim()) op.default = parseFieldValue(value, "json");
          return op;
        }, async (ops) => { await onOps(ops); setName(""); setValue(""); });
      }}>
        <input placeholder="name" value={name} onChange={(e) => setName(e.target.value)} data-testid="new-var-name" />
        <input placeholder="type" list="ed-field-types" value={type} onChange={(e) => setType(e.target.value)} />
        <input placeholder="default" value={value} onChange={(e) => setValue(e.target.value)} />
        <button type="submit">Add var</button>
      </form>
    </section>
  );
}

function McpPanel({ doc }: { doc: EditorDocument }) {
  if (!doc.mcp_servers.length) return <p className="ed-muted">No MCP servers are declared in this file.</p>;
  return (
    <section data-testid="mcp-inspector">
      {doc.mcp_servers.map((server) => (
        <details key={server.name} open><summary>{server.name}</summary>
          <pre>{JSON.stringify(server, null, 2)}</pre>
        </details>
      ))}
      <p className="ed-muted">Edit MCP servers in the source view.</p>
    </section>
  );
}
