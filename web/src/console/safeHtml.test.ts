import { describe, expect, it } from "vitest";
import { sanitizeHtml } from "./safeHtml";

describe("the Markdown HTML guard", () => {
  it("keeps what Markdown makes", () => {
    const html = '<h1>Title</h1><p><strong>a</strong> <a href="https://example.com/x">link</a></p>'
      + '<table><tr><td class="align-right">1</td></tr></table><pre><code class="language-sh">ls</code></pre>';
    const out = sanitizeHtml(html);
    expect(out).toContain("<h1>Title</h1>");
    expect(out).toContain('href="https://example.com/x"');
    expect(out).toContain('class="align-right"');
    expect(out).toContain('class="language-sh"');
  });

  it("drops scripts, images, handlers, inline styles and javascript: links", () => {
    const out = sanitizeHtml('<p onclick="x()" style="color:red">t<script>alert(1)</script>'
      + '<img src=x onerror="alert(2)"><a href="javascript:alert(3)">j</a><iframe src="/"></iframe></p>');
    expect(out).toBe('<p>t<a rel="noopener noreferrer" target="_blank">j</a></p>');
  });

  it("leaves escaped tags as text", () => {
    const out = sanitizeHtml("<p>&lt;script&gt;window.pwned=1&lt;/script&gt;</p>");
    expect(out).toBe("<p>&lt;script&gt;window.pwned=1&lt;/script&gt;</p>");
  });
});
