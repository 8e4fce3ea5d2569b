// Inspector inputs that commit on Enter or when they lose focus (one op per change, not one per
// keystroke), with `{{…}}` completion from the Document's refs where templates are allowed.
import { useEffect, useRef, useState } from "react";
import type { KeyboardEvent } from "react";
import { applyCompletion, templateCompletion } from "./completion";
import type { TemplateCompletion } from "./completion";

export interface CommitFieldProps {
  value: string;
  onCommit: (text: string) => void;
  testid?: string;
  placeholder?: string;
  multiline?: boolean;
  /** Template references to complete after `{{`; no completion without them. */
  refs?: string[];
  /** A datalist id for suggestions. */
  list?: string;
  rows?: number;
  label?: string;
}

export function CommitField({ value, onCommit, testid, placeholder, multiline, refs, list, rows, label }: CommitFieldProps) {
  const [text, setText] = useState(value);
  const [completion, setCompletion] = useState<TemplateCompletion | null>(null);
  const [active, setActive] = useState(0);
  const element = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  useEffect(() => { setText(value); }, [value]);

  const commit = () => {
    setCompletion(null);
    if (text !== value) onCommit(text);
  };
  const update = (next: string, caret: number) => {
    setText(next);
    const found = refs?.length ? templateCompletion(next, caret, refs) : null;
    setCompletion(found);
    setActive(0);
  };
  const choose = (item: string) => {
    if (!completion) return;
    const applied = applyCompletion(text, completion, item);
    setText(applied.text);
    setCompletion(null);
    requestAnimationFrame(() => {
      element.current?.focus();
      element.current?.setSelectionRange(applied.caret, applied.caret);
    });
  };
  const onKeyDown = (event: KeyboardEvent) => {
    if (completion) {
      if (event.key === "ArrowDown") { event.preventDefault(); setActive((a) => (a + 1) % completion.items.length); return; }
      if (event.key === "ArrowUp") { event.preventDefault(); setActive((a) => (a - 1 + completion.items.length) % completion.items.length); return; }
      if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); choose(completion.items[active]); return; }
      if (event.key === "Escape") { event.preventDefault(); setCompletion(null); return; }
    }
    if (event.key === "Enter" && !multiline) { event.preventDefault(); commit(); }
    if (event.key === "Escape") { setText(value); }
  };
  const common = {
    ref: element, value: text, placeholder, "data-testid": testid, "aria-label": label ?? testid,
    onKeyDown,
    onBlur: () => { setTimeout(commit, 0); },
  };
  return (
    <span className="ed-field">
      {multiline
        ? <textarea {...common} rows={rows ?? 6} spellCheck={false}
            onChange={(e) => update(e.target.value, e.target.selectionStart ?? e.target.value.length)} />
        : <input {...common} list={list} spellCheck={false}
            onChange={(e) => update(e.target.value, e.target.selectionStart ?? e.target.value.length)} />}
      {completion ? (
        <ul className="ed-completion" data-testid="completion" role="listbox">
          {completion.items.map((item, i) => (
            <li key={item} role="option" aria-selected={i === active} className={i === active ? "active" : ""}
                onMouseDown={(e) => { e.preventDefault(); choose(item); }}>{item}</li>
          ))}
        </ul>
      ) : null}
    </span>
  );
}
