// A second guard for the Markdown the server renders (markdown-it with raw HTML off, api/rest_console.py):
// before it reaches the page, every element outside the tags Markdown produces is dropped with its
// content, and every attribute except a safe link target or a code block's language is removed. So
// even a server bug cannot put a script, an event handler or a javascript: link into the console.

const ALLOWED = new Set([
  "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code", "em", "strong", "a",
  "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "del", "s",
]);

function safeHref(value: string): boolean {
  const trimmed = value.trim().toLowerCase();
  return trimmed.startsWith("http://") || trimmed.startsWith("https://") || trimmed.startsWith("mailto:")
    || trimmed.startsWith("#") || trimmed.startsWith("/") && !trimmed.startsWith("//");
}

function clean(node: Element) {
  for (const child of Array.from(node.children)) {
    const tag = child.tagName.toLowerCase();
    if (!ALLOWED.has(tag)) {
      child.remove();
      continue;
    }
    for (const attr of Array.from(child.attributes)) {
      const keep = (tag === "a" && attr.name === "href" && safeHref(attr.value))
        || (tag === "code" && attr.name === "class" && /^language-[\w-]+$/.test(attr.value))
        || ((tag === "th" || tag === "td") && attr.name === "class" && /^align-(left|right|center)$/.test(attr.value));
      if (!keep) child.removeAttribute(attr.name);
    }
    if (tag === "a") {
      child.setAttribute("rel", "noopener noreferrer");
      child.setAttribute("target", "_blank");
    }
    clean(child);
  }
}

/** The HTML with only Markdown's own tags and safe attributes left. */
export function sanitizeHtml(html: string): string {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  clean(doc.body);
  return doc.body.innerHTML;
}
