// `{{…}}` completion in prompts, `with` values and other templates: the candidates are the server's
// `refs` for this file (vars.x, outputs.NODE.FIELD, loop.NAME.iteration, run.id, …).

export interface TemplateCompletion {
  /** Where the typed reference starts (just after `{{` and any spaces) and ends (the caret). */
  from: number;
  to: number;
  prefix: string;
  items: string[];
}

const OPEN_REF = /\{\{\s*([A-Za-z0-9_.\-]*)$/;

/** The completion at the caret, when it sits inside an unclosed `{{`; null elsewhere. */
export function templateCompletion(text: string, caret: number, refs: string[], limit = 12): TemplateCompletion | null {
  const before = text.slice(0, caret);
  const match = OPEN_REF.exec(before);
  if (!match) return null;
  const prefix = match[1];
  const lower = prefix.toLowerCase();
  const starts = refs.filter((r) => r.toLowerCase().startsWith(lower));
  const contains = refs.filter((r) => !r.toLowerCase().startsWith(lower) && r.toLowerCase().includes(lower));
  const items = [...starts, ...contains].slice(0, limit);
  if (items.length === 0 || (items.length === 1 && items[0] === prefix && text.slice(caret).startsWith("}}"))) return null;
  return { from: caret - prefix.length, to: caret, prefix, items };
}

/** The text with the completion applied: the reference written out and the braces closed once. */
export function applyCompletion(text: string, completion: TemplateCompletion, item: string): { text: string; caret: number } {
  // The rest of a word the caret sat in is replaced too; existing closing braces are kept, not doubled.
  const after = text.slice(completion.to).replace(/^[A-Za-z0-9_.\-]*/, "");
  const closed = /^\s*\}\}/.test(after);
  const inserted = item + (closed ? "" : "}}");
  const caret = completion.from + item.length + (closed ? (/^\s*\}\}/.exec(after)![0].length) : 2);
  return { text: text.slice(0, completion.from) + inserted + after, caret };
}
