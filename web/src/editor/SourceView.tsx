// The source side of the split view: a plain textarea (no editor library to pin and keep up to
// date); the server formats and analyses, so this only needs to show text, take typing and jump to
// a line a diagnostic names.
import { forwardRef, useImperativeHandle, useRef } from "react";

export interface SourceViewHandle { revealLine: (line: number, column?: number | null) => void }

interface SourceViewProps {
  source: string;
  onChange: (text: string) => void;
  errorLines: Set<number>;
}

const LINE_HEIGHT = 18;

export const SourceView = forwardRef<SourceViewHandle, SourceViewProps>(function SourceView({ source, onChange, errorLines }, ref) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  useImperativeHandle(ref, () => ({
    revealLine(line: number, column?: number | null) {
      const element = area.current;
      if (!element) return;
      const lines = element.value.split("\n");
      let offset = 0;
      for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
      offset += Math.max(0, (column ?? 1) - 1);
      element.focus({ preventScroll: true });
      element.setSelectionRange(offset, offset);
      element.scrollTop = Math.max(0, (line - 4) * LINE_HEIGHT);
    },
  }));
  const count = source.split("\n").length;
  return (
    <div className="ed-source" data-testid="source-view">
      <div className="ed-gutter" ref={gutter} aria-hidden="true">
        {Array.from({ length: count }, (_, i) => (
          <div key={i} className={errorLines.has(i + 1) ? "error" : ""}>{i + 1}</div>
        ))}
      </div>
      <textarea ref={area} value={source} spellCheck={false} data-testid="source" aria-label="source"
                onChange={(e) => onChange(e.target.value)}
                onScroll={(e) => { if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop; }} />
    </div>
  );
});
