// Undo/redo as a stack of whole source texts: every step (a canvas edit, an inspector change, a
// pause in typing) pushes the server's resulting source; undo and redo move along it and the page
// re-analyses the text. Whole texts keep it simple and exact — the files are small.

export class SourceHistory {
  private steps: string[];
  private at: number;

  constructor(initial: string, private readonly limit = 200) {
    this.steps = [initial];
    this.at = 0;
  }

  /** The text at the current step. */
  get current(): string { return this.steps[this.at]; }
  get canUndo(): boolean { return this.at > 0; }
  get canRedo(): boolean { return this.at < this.steps.length - 1; }
  get size(): number { return this.steps.length; }

  /** Record a new text; drops the redo branch. Pushing the current text again is a no-op. */
  push(text: string): void {
    if (text === this.current) return;
    this.steps = this.steps.slice(0, this.at + 1);
    this.steps.push(text);
    if (this.steps.length > this.limit) this.steps.shift();
    this.at = this.steps.length - 1;
  }

  /** Step back; returns the text to show, or null when there is nothing to undo. */
  undo(): string | null {
    if (!this.canUndo) return null;
    this.at -= 1;
    return this.current;
  }

  redo(): string | null {
    if (!this.canRedo) return null;
    this.at += 1;
    return this.current;
  }

  /** Start over from a text (a file opened or reloaded from disk). */
  reset(text: string): void {
    this.steps = [text];
    this.at = 0;
  }
}
