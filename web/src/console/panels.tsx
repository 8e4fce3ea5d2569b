// The console's side panels: a node's details (per visit), the open gate's form, the rendered report.
// Values from the run are data: React escapes them; only the server's Markdown rendering is inserted
// as HTML, and only after sanitizeHtml.
import { useEffect, useState } from "react";
import type { FormEvent } from "react";
import { answerGate, fetchNode, fetchNodeCalls, fetchRendered } from "./api";
import type { NodeVisits, OpenGate, Rendered, SchemaField, Visit } from "./api";
import { visitStory } from "./calls";
import type { NodeCalls, VisitCalls } from "./calls";
import { sanitizeHtml } from "./safeHtml";

const money = (usd: number) => `$${usd.toFixed(4)}`;
const json = (value: unknown) => JSON.stringify(value, null, 2);

/** What the visit was actually given and said, from the run's history: prompts and values as text
 * (never HTML), each model turn with the tool calls it made. Collapsed: it can be long. */
function VisitCallsView({ calls, computedInWorkflow }: { calls: VisitCalls | undefined; computedInWorkflow: boolean }) {
  if (!calls || !calls.calls.length) {
    return computedInWorkflow
      ? <p className="muted small" data-testid="visit-inline">Computed in the workflow (no activity): its output is below.</p>
      : null;
  }
  const story = visitStory(calls);
  return (
    <>
      {story.given ? (
        <details className="rc-given" data-testid="visit-given">
          <summary>Given</summary>
          {story.given.prompts.map(([name, body]) => (<div key={name}><h4>{name}</h4><pre>{body}</pre></div>))}
          {story.given.values !== null && story.given.values !== undefined ? (
            <><h4>{story.given.valuesLabel}</h4><pre>{json(story.given.values)}</pre></>) : null}
        </details>
      ) : null}
      {story.conversation.length ? (
        <details className="rc-conversation" data-testid="visit-conversation">
          <summary>Conversation ({story.conversation.length} {story.conversation.length === 1 ? "turn" : "turns"})</summary>
          {story.conversation.map((t, i) => (
            <div key={i} className="rc-turn" data-turn={t.turn}>
              <h4>Turn {t.turn}{t.status ? ` · ${t.status}` : ""}</h4>
              {t.sent ? (<><h5>Sent</h5><pre>{t.sent}</pre></>) : null}
              {t.answered ? (<><h5>Answered</h5><pre>{t.answered}</pre></>) : null}
              {t.tools.map((tool, k) => (
                <div key={k} className="rc-tool">
                  <h5>Tool <code>{tool.name}</code>{tool.local ? " (local)" : ""}</h5>
                  {tool.arguments !== null ? <pre>{json(tool.arguments)}</pre> : null}
                  {tool.failure ? <p className="error">{tool.failure}</p> : <pre>{json(tool.result)}</pre>}
                </div>
              ))}
            </div>
          ))}
        </details>
      ) : null}
      {story.others.length ? (
        <details className="rc-calls" data-testid="visit-calls">
          <summary>Calls ({story.others.length})</summary>
          {story.others.map((c, i) => (
            <div key={i}>
              <h4><code>{c.activity}</code>{c.local ? " (local activity: its request is not recorded)" : ""}
                {c.attempts > 1 ? ` · attempt ${c.attempts}` : ""}</h4>
              {c.request ? <pre>{json(c.request)}</pre> : null}
              {c.failure ? <p className="error">{c.failure}</p> : c.result ? <pre>{json(c.result)}</pre> : null}
            </div>
          ))}
        </details>
      ) : null}
      {story.truncated ? <p className="muted small">Some texts were cut at 20,000 characters.</p> : null}
      {calls.calls_dropped ? <p className="muted small">{calls.calls_dropped} more calls are not listed.</p> : null}
    </>
  );
}

function VisitView({ visit, calls, computedInWorkflow }: {
  visit: Visit; calls: VisitCalls | undefined; computedInWorkflow: boolean;
}) {
  return (
    <details className="rc-visit" open data-testid={`visit-${visit.visit}`}>
      <summary>
        Visit {visit.visit}{visit.branch ? ` [${visit.branch}]` : ""} · <span className={`badge status-${visit.status}`}>{visit.status}</span>
        {visit.turns.length ? ` · ${(visit.input_tokens + visit.output_tokens).toLocaleString()} tokens · ${money(visit.cost_usd)}` : ""}
      </summary>
      {visit.questions && Object.keys(visit.questions).length ? (<><h4>Questions</h4><pre>{json(visit.questions)}</pre></>) : null}
      {visit.answered_by ? <p>Answered by <strong>{visit.answered_by}</strong></p> : null}
      <VisitCallsView calls={calls} computedInWorkflow={computedInWorkflow} />
      {visit.turns.length ? (
        <>
          <h4>Conversation turns</h4>
          <table className="rc-turns">
            <thead><tr><th>Turn</th><th>Status</th><th className="num">In</th><th className="num">Out</th><th className="num">Cost</th><th>Tool calls</th></tr></thead>
            <tbody>
              {visit.turns.map((t) => (
                <tr key={t.turn}><td>{t.turn}</td><td>{t.status}</td><td className="num">{t.input_tokens}</td>
                  <td className="num">{t.output_tokens}</td><td className="num">{money(t.cost_usd)}</td><td>{t.tool_calls.join(", ")}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {visit.tool_calls.length ? (
        <>
          <h4>Tool calls</h4>
          <ul>{visit.tool_calls.map((c, i) => <li key={i}><code>{c.tool}</code> {c.outcome}{c.detail ? `: ${c.detail}` : ""}</li>)}</ul>
        </>
      ) : null}
      {visit.error ? <p className="error">{visit.error}</p> : null}
      {visit.output ? (<><h4>Output</h4><pre data-testid="visit-output">{json(visit.output)}</pre></>) : null}
    </details>
  );
}

export function NodePanel({ run, node, state, upToSeq, refreshKey, onClose }: {
  run: string; node: string; state: string; upToSeq: number | null; refreshKey: number; onClose: () => void;
}) {
  const [detail, setDetail] = useState<NodeVisits | null>(null);
  const [problem, setProblem] = useState("");
  useEffect(() => {
    let cancelled = false;
    fetchNode(run, node).then((d) => { if (!cancelled) { setDetail(d); setProblem(""); } })
      .catch((error: unknown) => { if (!cancelled) setProblem(error instanceof Error ? error.message : String(error)); });
    return () => { cancelled = true; };
  }, [run, node, refreshKey]);
  // What each visit was given and said comes from the history; without it the panel still shows the events' view.
  const [calls, setCalls] = useState<NodeCalls | null>(null);
  useEffect(() => {
    let cancelled = false;
    fetchNodeCalls(run, node).then((c) => { if (!cancelled) setCalls(c); })
      .catch(() => { if (!cancelled) setCalls(null); });
    return () => { cancelled = true; };
  }, [run, node, refreshKey]);
  const callsOf = (visit: number) => (calls?.node === node ? calls.visits.find((v) => v.visit === visit) : undefined);
  const visits = (detail?.node === node ? detail.visits : []).filter((v) => upToSeq === null || v.first_seq <= upToSeq);
  const prompts = detail?.node === node ? Object.entries(detail.inputs.prompts) : [];
  return (
    <section className="rc-node" data-testid="node-panel" data-node={node}>
      <header>
        <h3>{node} <span className="muted">{detail?.kind ?? ""}</span></h3>
        <span className={`badge status-${state}`} data-testid="node-panel-state">{state}</span>
        <button type="button" className="link" onClick={onClose} aria-label="close">×</button>
      </header>
      {problem ? <p className="error">{problem}</p> : null}
      {detail && detail.node === node ? (
        <>
          {prompts.length || detail.inputs.input_schema.length || detail.inputs.incoming.length ? (
            <details className="rc-inputs">
              <summary>Inputs</summary>
              {prompts.map(([name, text]) => (<div key={name}><h4>{name.replace(/_/g, " ")}</h4><pre>{text}</pre></div>))}
              {detail.inputs.input_schema.length ? (<><h4>Input schema</h4><pre>{json(detail.inputs.input_schema)}</pre></>) : null}
              {detail.inputs.incoming.length ? (<><h4>From incoming edges</h4><pre>{json(detail.inputs.incoming)}</pre></>) : null}
            </details>
          ) : null}
          <details className="rc-props"><summary>Properties</summary><pre>{json(detail.props)}</pre></details>
          {visits.length ? visits.map((v) => <VisitView key={`${v.branch}-${v.visit}-${v.first_seq}`} visit={v} calls={callsOf(v.visit)}
                                                    computedInWorkflow={calls?.node === node && calls.computed_in_workflow} />)
            : <p className="muted">Not visited{upToSeq === null ? "" : " at this point of the run"}.</p>}
          {detail.events_trimmed ? <p className="muted small">The run's oldest events were dropped (2,000 are kept).</p> : null}
        </>
      ) : problem ? null : <p className="muted">Loading…</p>}
    </section>
  );
}

function FieldInput({ field, value, onChange }: {
  field: SchemaField; value: string | string[]; onChange: (v: string | string[]) => void;
}) {
  const id = `rc-field-${field.name}`;
  const enumValues = field.enum_values ?? [];
  if (field.type === "string[]" && enumValues.length) {
    const chosen = Array.isArray(value) ? value : [];
    return (
      <fieldset>
        <legend>{field.name}</legend>
        {enumValues.map((v) => (
          <label key={v} className="check"><input type="checkbox" checked={chosen.includes(v)} data-field={field.name}
            onChange={(e) => onChange(e.target.checked ? [...chosen, v] : chosen.filter((c) => c !== v))} /> {v}</label>
        ))}
      </fieldset>
    );
  }
  const text = Array.isArray(value) ? value.join("\n") : value;
  let input;
  if (field.type === "bool") {
    input = (<select id={id} value={text} data-field={field.name} onChange={(e) => onChange(e.target.value)}>
      <option value="">— choose —</option><option value="true">yes</option><option value="false">no</option></select>);
  } else if (enumValues.length) {
    input = (<select id={id} value={text} data-field={field.name} onChange={(e) => onChange(e.target.value)}>
      <option value="">— choose —</option>{enumValues.map((v) => <option key={v} value={v}>{v}</option>)}</select>);
  } else if (field.type === "int" || field.type === "float") {
    input = <input id={id} type="number" step={field.type === "int" ? "1" : "any"} value={text} data-field={field.name}
                   onChange={(e) => onChange(e.target.value)} />;
  } else if (field.type === "json" || field.type.endsWith("[]")) {
    input = <textarea id={id} rows={4} value={text} data-field={field.name} className="mono"
                      onChange={(e) => onChange(e.target.value)} />;
  } else {
    input = <input id={id} type="text" value={text} data-field={field.name} onChange={(e) => onChange(e.target.value)} />;
  }
  return (<><label htmlFor={id}>{field.name} <span className="muted">({field.type})</span></label>{input}</>);
}

export function GatePanel({ run, gate, csrf, canWrite, answerer, onAnswered }: {
  run: string; gate: OpenGate; csrf: string; canWrite: boolean; answerer: string; onAnswered: () => void;
}) {
  // Every field is sent, empty ones too (as the server-rendered form does): the run names what is missing.
  const [values, setValues] = useState<Record<string, string | string[]>>(() => Object.fromEntries(
    gate.fields.map((f) => [f.name, f.type === "string[]" && f.enum_values?.length ? [] : ""])));
  const [by, setBy] = useState(answerer);
  const [error, setError] = useState("");
  const [sending, setSending] = useState(false);
  const [sent, setSent] = useState(false);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setSending(true);
    answerGate(run, gate, csrf, by, values).then((reason) => {
      setError(reason);
      if (!reason) {
        setSent(true);
        onAnswered();
      }
    }).catch((e: unknown) => setError(e instanceof Error ? e.message : String(e))).finally(() => setSending(false));
  };
  const questions = Object.entries(gate.questions).filter(([k]) => !k.startsWith("_"));
  return (
    <section className="rc-gate" data-testid="console-gate" data-gate={gate.gate}>
      <h3>Gate <code>{gate.gate}</code> waits for an answer</h3>
      {gate.instructions ? <div className="instructions">{gate.instructions}</div> : null}
      {questions.length ? (
        <dl className="questions">{questions.map(([k, v]) => (
          <div key={k}><dt>{k}</dt><dd>{typeof v === "string" ? v : <pre>{json(v)}</pre>}</dd></div>))}</dl>
      ) : null}
      {sent ? <p className="notice" role="status" data-testid="console-gate-sent">Answer recorded; the run goes on.</p> : (
        <form className="answer" onSubmit={submit}>
          {gate.fields.map((f) => (
            <div className="field" key={f.name}>
              <FieldInput field={f} value={values[f.name] ?? (f.type === "string[]" && f.enum_values?.length ? [] : "")}
                          onChange={(v) => setValues((old) => ({ ...old, [f.name]: v }))} />
            </div>
          ))}
          <div className="field">
            <label htmlFor="rc-answered-by">answered by</label>
            <input id="rc-answered-by" type="text" value={by} maxLength={200} onChange={(e) => setBy(e.target.value)} />
          </div>
          {error ? <p className="error" role="alert" data-testid="console-gate-error">{error}</p> : null}
          <button type="submit" disabled={!canWrite || sending} title={canWrite ? undefined : "read-only token"}>
            {sending ? "Sending…" : "Send answer"}
          </button>
        </form>
      )}
    </section>
  );
}

export function ReportPanel({ run, finished, refreshKey }: { run: string; finished: boolean; refreshKey: number }) {
  const [rendered, setRendered] = useState<Rendered | null>(null);
  const [open, setOpen] = useState(false);
  const [problem, setProblem] = useState("");
  const wanted = open || finished;
  useEffect(() => {
    if (!wanted) return;
    let cancelled = false;
    fetchRendered(run).then((r) => { if (!cancelled) setRendered(r); })
      .catch((e: unknown) => { if (!cancelled) setProblem(e instanceof Error ? e.message : String(e)); });
    return () => { cancelled = true; };
  }, [run, wanted, refreshKey]);
  if (!wanted) {
    return <p><button type="button" onClick={() => setOpen(true)} data-testid="show-report">Show the report so far</button></p>;
  }
  const artifacts = rendered ? Object.entries(rendered.artifacts).filter(([, fields]) => Object.keys(fields).length) : [];
  return (
    <section className="rc-report" data-testid="console-report">
      {problem ? <p className="error">{problem}</p> : null}
      {artifacts.length ? (
        <>
          <h2>Artifacts</h2>
          {artifacts.map(([name, fields]) => (
            <details key={name} className="rc-artifact" open data-artifact={name}>
              <summary>{name}</summary>
              {Object.entries(fields).map(([key, html]) => (
                <div key={key} className="rc-md" data-field={key}>
                  <h4>{key}</h4>
                  <div dangerouslySetInnerHTML={{ __html: sanitizeHtml(html) }} />
                </div>
              ))}
            </details>
          ))}
        </>
      ) : null}
      <h2>Report</h2>
      {rendered ? <div className="rc-md" data-testid="report-html" dangerouslySetInnerHTML={{ __html: sanitizeHtml(rendered.report_html) }} />
        : <p className="muted">Loading…</p>}
    </section>
  );
}
